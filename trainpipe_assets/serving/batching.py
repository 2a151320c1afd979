"""Micro-batching as TF Serving's batching options name it (max_batch_size, batch_timeout_micros, num_batch_threads),
with one rule of its own so that batching never costs a lone client: a request that finds no model call running goes
at once, as a call of its own, rather than wait batch_timeout_micros for company.

While a call runs, requests with the same key (a LoadedVersion + signature) queue on the event loop, and a queue runs
as ONE call on a worker thread when
* a call finishes: the freed thread takes the oldest waiting queue as it is;
* batch_timeout_micros have passed since its first request and a thread is free (0: at the next turn of the loop);
* it is full and a thread is free: it holds max_batch_size rows, or the next request's rows would not fit (a full
  queue takes no more; later requests open a new one).
So at most num_batch_threads calls run at a time, a request waits at most for a running call to end or the timeout,
and under load (every thread busy) requests pile up into batches with no timer involved. All queue state lives on the
event loop thread, so it needs no lock."""

from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence


@dataclass(eq=False)
class _Queue:
    key: Hashable
    items: list = field(default_factory=list)
    futures: list = field(default_factory=list)
    rows: int = 0
    timer: Any = None


class Batcher:
    def __init__(
        self,
        run_batch: Callable[[Sequence[Any]], list],
        executor: Executor,
        max_batch_size: int,
        timeout_seconds: float,
        num_threads: int,
    ):
        """run_batch(items) runs on a worker thread and returns one outcome per item: a result or an Exception."""
        self.run_batch, self.executor = run_batch, executor
        self.max_batch_size, self.timeout, self.num_threads = max_batch_size, timeout_seconds, num_threads
        self.open: dict[Hashable, _Queue] = {}  # per key, the queue still taking requests
        self.waiting: deque[_Queue] = deque()  # every queue not running yet (open or full), oldest first
        self.busy = 0  # calls running
        self.calls = 0  # calls started, ever
        self.alone = 0  # of which started at once, with no call running

    async def submit(self, key: Hashable, item: Any, rows: int) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self.busy == 0 and not self.waiting:  # nothing running: nobody to wait for, no company to wait for
            self.alone += 1
            self._start(_Queue(key, [item], [future], rows))
            return await future
        queue = self.open.get(key)
        if queue is not None and queue.rows + rows > self.max_batch_size:  # no room: it takes no more
            del self.open[key]
            self._go(queue)
            queue = None
        if queue is None:
            queue = self.open[key] = _Queue(key)
            self.waiting.append(queue)
            if self.busy < self.num_threads:  # else a thread freeing up starts it, timer or not
                queue.timer = loop.call_later(self.timeout, self._go, queue)
        queue.items.append(item)
        queue.futures.append(future)
        queue.rows += rows
        if queue.rows >= self.max_batch_size:
            if self.open.get(key) is queue:
                del self.open[key]
            self._go(queue)
        return await future

    def _go(self, queue: _Queue) -> None:
        """A queue that is full or timed out starts if a thread is free; else it waits for one."""
        queue.timer = None
        if self.busy < self.num_threads and queue in self.waiting:
            self.waiting.remove(queue)
            self._start(queue)

    def _start(self, queue: _Queue) -> None:
        if self.open.get(queue.key) is queue:
            del self.open[queue.key]
        if queue.timer is not None:
            queue.timer.cancel()
        self.busy += 1
        self.calls += 1
        running = asyncio.get_running_loop().run_in_executor(self.executor, self.run_batch, queue.items)
        running.add_done_callback(lambda done: self._finished(done, queue.futures))

    def _finished(self, done: asyncio.Future, futures: list) -> None:
        self.busy -= 1
        try:
            outcomes = done.result()
        except Exception as e:  # run_batch itself broke: every request of the batch gets the error
            outcomes = [e] * len(futures)
        for future, outcome in zip(futures, outcomes):
            if future.done():
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        while self.waiting and self.busy < self.num_threads:  # the freed thread takes the oldest queue as it is
            self._start(self.waiting.popleft())
