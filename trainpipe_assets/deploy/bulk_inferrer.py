"""`batch_predictions` (TFX BulkInferrer): a day's examples scored on Beam by the model serving now (the pipeline
and why it is Beam's own RunInference: deploy/beam_inference.py)."""

import time
from pathlib import Path

from dagster import AssetExecutionContext, Failure, MetadataValue, Output

from trainpipe_assets.core import metadata as md
from trainpipe_assets.core.artifacts import BatchPredictions, Examples
from trainpipe_assets.core.event_log import current_baseline
from trainpipe_assets.core.partitions import pipeline_asset
from trainpipe_assets.core.retry import TRANSIENT_RETRY
from trainpipe_assets.core.settings import TrainpipeConfig
from trainpipe_assets.core.step import Step, fail
from trainpipe_assets.deploy.beam_inference import SignatureError, preview_markdown, run_batch_inference

CODE_VERSION = "batch-inference-v1"


@pipeline_asset(
    io_manager_key="artifact_io_manager",
    kinds={"tensorflow", "beam"},
    group_name="deployment",
    pool="beam",
    retry_policy=TRANSIENT_RETRY,
    code_version=CODE_VERSION,
)
def batch_predictions(
    context: AssetExecutionContext, trainpipe: TrainpipeConfig, examples: Examples
) -> Output[BatchPredictions]:
    """TFX BulkInferrer: the day's examples (every split, or batch_inference.split) scored by the model serving now."""
    settings = trainpipe.settings
    bi = settings.batch_inference
    serving = current_baseline(context.instance, trainpipe.serving_dir)
    if serving is None:
        raise fail(f"no model pushed yet under {trainpipe.serving_dir}: run training_job first")
    model_dir = Path(serving.serving_path)
    if not (model_dir / "saved_model.pb").is_file():
        raise fail(f"version {serving.version}, the one serving, is gone from {model_dir}")
    if bi.split is not None and bi.split not in examples.splits:
        raise fail(
            f"batch_inference.split {bi.split!r} is not a split of {context.partition_key} (splits: {examples.splits})"
        )
    splits = [bi.split] if bi.split else examples.splits
    model_fingerprint = (
        (model_dir / "fingerprint.pb").read_bytes().hex() if (model_dir / "fingerprint.pb").is_file() else None
    )
    step = Step(context, trainpipe, CODE_VERSION)
    if reused := step.reuse(
        bi.model_dump(), serving.version, str(model_dir), model_fingerprint, examples.fingerprints, splits
    ):
        return reused
    staging = step.staging
    started = time.perf_counter()
    try:
        counts, output_keys = run_batch_inference(
            model_dir,
            {s: examples.file_patterns[s] for s in splits},
            staging,
            settings.beam_pipeline_args,
            bi.prediction_key,
        )
    except SignatureError as e:
        raise fail(str(e)) from e
    seconds = time.perf_counter() - started
    expected = {s: examples.row_counts[s] for s in splits}
    if counts != expected:
        raise Failure(
            description=f"predicted {counts} rows, but the examples of {context.partition_key} have {expected}"
        )
    artifact = BatchPredictions(
        **step.fields(),
        model_version=serving.version,
        serving_path=str(model_dir),
        row_counts=counts,
        output_keys=output_keys,
    )
    rows = sum(counts.values())
    return step.output(
        artifact,
        {
            md.MODEL_VERSION: serving.version,
            "serving_path": MetadataValue.path(str(model_dir)),
            md.ROWS: rows,
            **{md.rows_key(s): n for s, n in counts.items()},
            "seconds": round(seconds, 2),  # wall time, with the model load and the pipeline's start
            "rows_per_second": round(rows / seconds, 1),
            "output_keys": MetadataValue.json(output_keys),
            "preview": MetadataValue.md(preview_markdown(artifact.load())),
            "beam_pipeline_args": MetadataValue.json(settings.beam_pipeline_args),
        },
    )
