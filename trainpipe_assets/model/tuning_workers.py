"""Tuning trials in parallel worker processes with KerasTuner's own distributed mode: this process is the chief
(it holds the oracle), each worker runs tuner_fn and asks the chief for trials. TFX raises ValueError for this
outside Google Cloud.

A worker is `python -m trainpipe_assets.model.tuning_workers <job.json>`: it runs the module's tuner_fn with the same
FnArgs as the chief, as `KERASTUNER_TUNER_ID=tuner<i>`, so its tuner asks the chief's oracle (at
KERASTUNER_ORACLE_IP/PORT) for trials until the search is over."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from trainpipe_assets.core.net import free_port
from trainpipe_assets.module.api import FnArgs

ENV_KEYS = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


@contextmanager
def _environ(values: dict[str, str]):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class ParallelTuningError(RuntimeError):
    """A worker process failed; the message carries the end of its output."""


def search_in_parallel(tuner_fn, module_file: Path, fn_args: FnArgs, workers: int, log_dir: Path):
    """Run the search with `workers` worker processes; returns the chief's tuner (holding the oracle and results)."""
    port = free_port()
    oracle = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port)}
    fields = {f.name: getattr(fn_args, f.name) for f in dataclasses.fields(fn_args) if f.name != "data_accessor"}
    log_dir.mkdir(parents=True, exist_ok=True)
    job = log_dir / "tuning_job.json"
    job.write_text(json.dumps({"module_file": str(module_file), "fn_args": fields}))
    procs = []
    with _environ({**oracle, "KERASTUNER_TUNER_ID": "chief"}):
        result = tuner_fn(fn_args)  # the chief builds its tuner (and oracle) before any worker asks for a trial
        for i in range(workers):
            log = open(log_dir / f"worker-{i}.log", "w")
            env = {**os.environ, **oracle, "KERASTUNER_TUNER_ID": f"tuner{i}"}
            procs.append(
                (
                    subprocess.Popen(
                        [sys.executable, "-m", "trainpipe_assets.model.tuning_workers", str(job)],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    ),
                    log,
                )
            )
        try:
            result.tuner.search(**result.fit_kwargs)  # serves the oracle until every trial is done
        finally:
            codes = []
            for proc, log in procs:
                codes.append(proc.wait(timeout=600) if proc.poll() is None else proc.returncode)
                log.close()
    failed = [i for i, code in enumerate(codes) if code != 0]
    if failed:
        tail = (log_dir / f"worker-{failed[0]}.log").read_text()[-2000:]
        raise ParallelTuningError(f"tuning worker {failed[0]} exited with {codes[failed[0]]}; its log ends:\n{tail}")
    return result.tuner


def worker_main(job_path: str) -> None:
    from trainpipe_assets.module.keras2_compat import keras2_saving
    from trainpipe_assets.module.loader import user_function

    job = json.loads(Path(job_path).read_text())
    tuner_fn = user_function(job["module_file"], "tuner_fn")
    with keras2_saving():
        result = tuner_fn(FnArgs(**job["fn_args"]))
        result.tuner.search(**result.fit_kwargs)


if __name__ == "__main__":
    worker_main(sys.argv[1])
