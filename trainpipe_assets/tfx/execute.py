"""Running a mapped pipeline: the settings file under the home, the landing links and the serving folder, then
trainpipe's jobs through the code location as `trainpipe ingest` and `demo` run them (cli/runs.py): ONE ingest_job
run over the days, the training_job run for the latest day (only the assets of the pipeline's components), and
batch_inference_job when it has a BulkInferrer."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml

from trainpipe_assets.tfx.map_inputs import link_landing
from trainpipe_assets.tfx.mapping import INGEST, Mapped, map_pipeline

OUTCOMES: list[bool] = []  # one per run made, for the command's exit status
EXPORT_TO: list[str] = []  # --export-config: where to copy the settings file


def home() -> Path:
    from trainpipe_assets.core.settings import default_home

    return Path(default_home())


def prepare(pipeline, runner=None) -> Mapped:
    """Map the pipeline (errors raise before anything is written), print the mapping, write the settings file."""
    mapped = map_pipeline(pipeline, runner, home(), Path.cwd())
    print(f"\nTFX pipeline {pipeline.pipeline_name} -> trainpipe settings, component by component:")
    for line in mapped.lines:
        print(f"  {line}")
    for warning in mapped.warnings:
        print(f"  warning: {warning}")
    link_landing(mapped.landing, Path(mapped.settings["source"]["landing_dir"]))
    _link_serving(mapped)
    path = home() / f"{mapped.pipeline_name}.trainpipe.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = f"# Written by `trainpipe run-tfx` from the TFX pipeline {pipeline.pipeline_name}.\n" + yaml.safe_dump(
        mapped.settings, sort_keys=False)
    path.write_text(text)
    print(f"settings written to {path}:")
    print("\n".join(f"    {line}" for line in text.splitlines()[1:]))
    for target in EXPORT_TO:
        shutil.copyfile(path, target)
        print(f"settings exported to {target}")
    os.environ["TRAINPIPE_HOME"] = str(home())
    os.environ["TRAINPIPE_CONFIG"] = str(path)
    from trainpipe_assets.cli.common import use_instance_home

    use_instance_home()
    return mapped


def _link_serving(mapped: Mapped) -> None:
    if mapped.serving_base is None:
        return
    link = home() / "serving" / mapped.settings["model_name"]
    mapped.serving_base.mkdir(parents=True, exist_ok=True)
    if link.resolve() == mapped.serving_base:
        return
    if link.is_symlink():
        link.unlink()
    elif link.exists():
        raise ValueError(f"{link} already holds pushed models; cannot make it the push destination "
                         f"{mapped.serving_base} (use another --home)")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(mapped.serving_base, target_is_directory=True)


def run_pipeline(pipeline, runner=None) -> bool:
    mapped = prepare(pipeline, runner)
    from dagster import DagsterInstance

    from trainpipe_assets.cli.runs import code_location, ingest_days
    from trainpipe_assets.core.settings import TrainpipeConfig

    trainpipe = TrainpipeConfig.from_env()
    days = mapped.landing.days
    tags = {"trainpipe/force": "true"} if mapped.force else {}
    with DagsterInstance.get() as instance, code_location(instance) as location:
        print(f"\ningest_job for {len(days)} day(s) in one run ({' -> '.join(INGEST)}):")
        failed = ingest_days(location, trainpipe, days, instance)
        OUTCOMES.append(not failed)
        ok = not failed
        if mapped.training_assets and ok:
            ok = launch_assets(location, instance, "training_job", days[-1], mapped.training_assets, tags)
        if mapped.batch_inference and ok:
            ok = launch_assets(location, instance, "batch_inference_job", days[-1], ["batch_predictions"], {})
    return ok


def launch_assets(location, instance, job_name: str, day_or_days, assets: list[str], tags: dict) -> bool:
    """One run of `job_name` materializing `assets` (and their checks) for a day or a range of days; prints each
    step and each asset's facts."""
    from trainpipe_assets.cli.runs import failures_of, partition_tags
    from trainpipe_assets.tfx.launch import launch_subset
    from trainpipe_assets.tfx.show import facts_line

    days = day_or_days if isinstance(day_or_days, list) else [day_or_days]
    where = days[0] if len(days) == 1 else f"{days[0]}..{days[-1]}"
    print(f"\n{job_name} for {where}: {', '.join(assets)}")
    result = launch_subset(location, job_name, {**partition_tags(days), **tags}, instance, assets)
    for event in result.get_asset_materialization_events():
        print(f"  {facts_line(event.asset_key.to_user_string(), event.materialization.metadata)}")
    for check in result.get_asset_check_evaluations():
        print(f"  check {check.check_name}: {'passed' if check.passed else 'FAILED'} ({check.description})")
    for failure in failures_of(result, skip_checks=True):  # a failed check is printed above, once
        print(f"  FAILED: {failure}")
    OUTCOMES.append(result.success)
    return result.success
