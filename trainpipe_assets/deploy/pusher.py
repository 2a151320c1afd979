"""`pushed_model` (TFX Pusher): a blessed model copied into TF Serving's layout as the next integer version."""

import datetime as dt
from pathlib import Path

from dagster import AssetExecutionContext, Failure, MetadataValue, Output

from trainpipe_assets.core import metadata as md
from trainpipe_assets.core.artifacts import InfraValidation, Model, ModelEvaluation, PushedModel
from trainpipe_assets.core.faults import kill_point
from trainpipe_assets.core.partitions import pipeline_asset
from trainpipe_assets.core.run_records import PUSHED_AT, PUSHED_BY_RUN, record_unrecorded_pushes
from trainpipe_assets.core.serving_layout import (
    copy_saved_model,
    list_versions,
    prune_versions,
    read_pin,
    read_push_record,
    serving_version,
    version_of_model,
)
from trainpipe_assets.core.settings import TrainpipeConfig
from trainpipe_assets.core.step import Step
from trainpipe_assets.core.storage import write_text

CODE_VERSION = "push-v1"


@pipeline_asset(
    io_manager_key="artifact_io_manager",
    kinds={"tensorflow"},
    group_name="deployment",
    code_version=CODE_VERSION,
)
def pushed_model(
    context: AssetExecutionContext,
    trainpipe: TrainpipeConfig,
    trained_model: Model,
    model_evaluation: ModelEvaluation,
    infra_validation: InfraValidation,
) -> Output[PushedModel]:
    """TFX Pusher: `$TRAINPIPE_HOME/serving/<model_name>/<version>/`, written atomically; keeps the last K versions."""
    if not model_evaluation.blessed:  # the blocking model_blessed check stops this first; never push regardless
        raise Failure(description=f"model {trained_model.uri} is not blessed; not pushing")
    if model_evaluation.candidate_uri != trained_model.uri:
        raise Failure(
            description=f"evaluation {model_evaluation.uri} judged {model_evaluation.candidate_uri}, "
            f"not {trained_model.uri}"
        )
    if (
        not infra_validation.blessed or infra_validation.candidate_uri != trained_model.uri
    ):  # infra_blessed stops it first
        raise Failure(
            description=f"model {trained_model.uri} did not pass infra validation ({infra_validation.uri}); not pushing"
        )
    base = trainpipe.serving_dir
    step = Step(context, trainpipe, CODE_VERSION)
    key = step.cache_key(trained_model.cache_key or trained_model.uri, trainpipe.settings.model_name)
    record_unrecorded_pushes(context.instance, base)  # a version a killed run left unrecorded is recorded first
    facts = {
        md.MODEL_NAME: trainpipe.settings.model_name,
        "source_partition": trained_model.partition,
        "source_run_id": trained_model.run_id,
        "metrics": MetadataValue.json(model_evaluation.report()["candidate"]["overall"]),
    }
    # The same trained model already on disk (by its push record; older versions by the cache) is not pushed again;
    # a forced retrain is another model and gets a new version.
    existing, earlier = version_of_model(base, trained_model.uri), None
    if existing is None:
        earlier = step.reuse(
            trained_model.cache_key or trained_model.uri,
            trainpipe.settings.model_name,
            accept=lambda pushed: Path(pushed.serving_path, "saved_model.pb").is_file(),
        )
        existing = earlier.value.version if earlier else None
    if existing is not None:
        serving_path = base / str(existing)
        writer = read_push_record(base, existing) or {}
        by = writer.get("run_id") or (earlier.value.run_id if earlier else "?")
        write_text(step.staging / "PUSHED", f"{serving_path}\n")
        artifact = PushedModel(
            **step.fields(),
            model_name=trainpipe.settings.model_name,
            version=existing,
            serving_path=str(serving_path),
            source_model=trained_model.uri,
        )
        return step.output(
            artifact,
            {
                md.VERSION: existing,
                md.SERVING_PATH: MetadataValue.path(str(serving_path)),
                md.SERVING_VERSION: serving_version(base),
                md.EVENT: f"already pushed by run {by} as version {existing}",
                PUSHED_BY_RUN: by,
                PUSHED_AT: writer.get("pushed_at", ""),
                **facts,
            },
            cached=True,
        )
    version = max(list_versions(base), default=0) + 1
    record = {
        "run_id": context.run.run_id,
        "partition": context.partition_key,
        "source_model": trained_model.uri,
        "cache_key": key,
        "model_name": trainpipe.settings.model_name,
        PUSHED_AT: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    serving_path = copy_saved_model(trained_model.serving_model_dir, base, version, record)
    kill_point("push:after_rename")
    pin = read_pin(base)  # a rollback pin stays until `trainpipe rollback --clear`; the new version waits behind it
    removed = prune_versions(
        base, trainpipe.settings.push.keep_versions, protected={version} | ({pin} if pin else set())
    )
    serving = serving_version(base)
    write_text(step.staging / "PUSHED", f"{serving_path}\n")
    return step.output(
        PushedModel(
            **step.fields(),
            model_name=trainpipe.settings.model_name,
            version=version,
            serving_path=str(serving_path),
            source_model=trained_model.uri,
        ),
        {
            md.VERSION: version,
            md.SERVING_PATH: MetadataValue.path(str(serving_path)),
            md.SERVING_VERSION: serving,
            md.EVENT: "push" if serving == version else f"push (pinned: version {pin} keeps serving)",
            PUSHED_BY_RUN: context.run.run_id,
            PUSHED_AT: record[PUSHED_AT],
            "removed_versions": MetadataValue.json(removed),
            **facts,
        },
    )
