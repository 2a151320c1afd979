"""Wall time of 6 tuning trials with 1 and with 2 parallel workers (KerasTuner's distributed mode), same process.

    .venv/bin/python benchmarks/tuning.py [--trials 6] [--train-steps 1500]

Sample data is generated; the transform graph is built once, then `best_hyperparameters` is materialized with
`tuning.num_parallel_trials: 1` and `2` (forced, so neither reuses the other). Aim: ratio <= 0.6.
"""

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import yaml


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--train-steps", type=int, default=1500)
    args = parser.parse_args()
    from dagster import instance_for_test, materialize

    from trainpipe_assets.core.settings import DEFAULT_CONFIG_PATH, TrainpipeConfig
    from trainpipe_assets.data.example_gen import examples
    from trainpipe_assets.data.sample_data import write_days
    from trainpipe_assets.data.schema_gen import schema
    from trainpipe_assets.data.statistics_gen.component import statistics
    from trainpipe_assets.definitions import build_definitions
    from trainpipe_assets.model.transform import transform_graph
    from trainpipe_assets.model.tuner import best_hyperparameters

    with tempfile.TemporaryDirectory() as tmp, instance_for_test() as instance:
        home = Path(tmp)
        settings = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
        settings.update(train_steps=args.train_steps)
        settings["custom_config"]["max_trials"] = args.trials
        configs = {}
        for workers in (1, 2):
            settings["tuning"]["num_parallel_trials"] = workers
            configs[workers] = home / f"w{workers}.yaml"
            configs[workers].write_text(yaml.safe_dump(settings, sort_keys=False))
        trainpipe = TrainpipeConfig(home=str(home), config_path=str(configs[1]))
        write_days(trainpipe.landing_dir, 3, 1000, end=dt.date(2024, 3, 3))
        defs = build_definitions(trainpipe)
        quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        for day in ("2024-03-01", "2024-03-02", "2024-03-03"):
            defs.resolve_job_def("ingest_job").execute_in_process(
                partition_key=day, instance=instance, run_config=quiet
            )
        materialize(
            [examples, statistics, schema, transform_graph],
            selection=[schema, transform_graph],
            partition_key="2024-03-03",
            resources=defs.resources,
            instance=instance,
            tags={},
        )
        seconds = {}
        for workers, config in configs.items():
            resources = build_definitions(TrainpipeConfig(home=str(home), config_path=str(config))).resources
            start = time.perf_counter()
            result = materialize(
                [examples, statistics, schema, transform_graph, best_hyperparameters],
                selection=[best_hyperparameters],
                partition_key="2024-03-03",
                resources=resources,
                instance=instance,
                tags={"trainpipe/force": "true"},
            )
            seconds[workers] = time.perf_counter() - start
            md = result.asset_materializations_for_node("best_hyperparameters")[0].metadata
            print(
                f"{workers} worker(s): {seconds[workers]:6.1f} s  trials={md['num_trials'].value} "
                f"best score={md['best_score'].value:.4f}"
            )
    print(
        f"ratio 2 workers / 1: {seconds[2] / seconds[1]:.2f}  "
        f"(aim <= 0.6; {args.trials} trials of {round(args.train_steps * 0.2)} steps, {os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    sys.exit(main())
