"""Micro-batching as TF Serving's batching options name it (max_batch_size, batch_timeout_micros, num_batch_threads).

Requests with the same key (a LoadedVersion + signature) queue on the event loop; a queue closes when it holds
max_batch_size rows or batch_timeout_micros after its first request, and runs as ONE call on a worker thread.
A queue whose timeout passes while every worker is busy stays open (it could not start sooner anyway) and keeps
filling until a worker frees up. All queue state lives on the event loop thread, so it needs no lock."""

from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence


@dataclass
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
        self.open: dict[Hashable, _Queue] = {}
        self.expired: deque[_Queue] = deque()  # timed out while every worker was busy
        self.busy = 0

    async def submit(self, key: Hashable, item: Any, rows: int) -> Any:
        loop = asyncio.get_running_loop()
        queue = self.open.get(key)
        if queue is not None and queue.rows + rows > self.max_batch_size:
            self._close(queue)
            queue = None
        if queue is None:
            queue = self.open[key] = _Queue(key)
            queue.timer = loop.call_later(self.timeout, self._timed_out, queue)
        future = loop.create_future()
        queue.items.append(item)
        queue.futures.append(future)
        queue.rows += rows
        if queue.rows >= self.max_batch_size:
            self._close(queue)
        return await future

    def _timed_out(self, queue: _Queue) -> None:
        if self.busy < self.num_threads:
            self._close(queue)
        else:
            self.expired.append(queue)

    def _close(self, queue: _Queue) -> None:
        if self.open.get(queue.key) is not queue:
            return  # already closed
        del self.open[queue.key]
        queue.timer.cancel()
        self.busy += 1
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
        while self.expired and self.busy < self.num_threads:
            self._close(self.expired.popleft())
