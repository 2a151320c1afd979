"""`model_evaluation` (TFX Evaluator): candidate and baseline scored through serving_default on the window's raw
eval examples; TFMA-like thresholds decide the blessing, and every rule that decided is recorded."""

import json
from pathlib import Path

import numpy as np
from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetExecutionContext, MetadataValue, Output

from trainpipe_assets.core import metadata as md
from trainpipe_assets.core.artifacts import Examples, Model, ModelEvaluation, TransformGraph
from trainpipe_assets.core.event_log import current_baseline
from trainpipe_assets.core.example_reader import decode_examples, read_records
from trainpipe_assets.core.partitions import pipeline_asset, pipeline_check
from trainpipe_assets.core.retry import TRANSIENT_RETRY
from trainpipe_assets.core.settings import TrainpipeConfig
from trainpipe_assets.core.step import Step, fail
from trainpipe_assets.core.storage import write_text
from trainpipe_assets.model.evaluator.blessing import decide_blessing
from trainpipe_assets.model.evaluator.labels import eval_labels, eval_set_warnings
from trainpipe_assets.model.evaluator.metrics import as_probabilities, compute_metrics, curves, sliced_metrics
from trainpipe_assets.model.evaluator.plots import evaluation_metadata

CODE_VERSION = "evaluation-v2"  # v2: curves in evaluation.json, plots and tables in the metadata
FORCE_BLESS_TAG = "trainpipe/force_bless"
SCORING_BATCH = 1024


def score_serialized(saved_model_dir: Path, serialized: list[bytes], prediction_key: str | None) -> np.ndarray:
    """Scores of serving_default on serialized raw tf.Examples, as a client of the served model would get them."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(saved_model_dir))
    if "serving_default" not in loaded.signatures:
        raise fail(f"{saved_model_dir} has no serving_default signature (has {list(loaded.signatures)})")
    signature = loaded.signatures["serving_default"]
    [input_name] = signature.structured_input_signature[1].keys()
    outputs = []
    for start in range(0, len(serialized), SCORING_BATCH):
        result = signature(**{input_name: tf.constant(serialized[start : start + SCORING_BATCH])})
        key = prediction_key or sorted(result)[0]
        if key not in result:
            raise fail(f"serving_default of {saved_model_dir} has no output {key!r} (has {sorted(result)})")
        outputs.append(result[key].numpy())
    return np.concatenate(outputs) if outputs else np.zeros(0)


@pipeline_asset(
    windowed=("examples",),
    io_manager_key="artifact_io_manager",
    kinds={"tensorflow"},
    group_name="training",
    pool="training",
    retry_policy=TRANSIENT_RETRY,
    code_version=CODE_VERSION,
)
def model_evaluation(
    context: AssetExecutionContext,
    trainpipe: TrainpipeConfig,
    examples: Examples,
    trained_model: Model,
    transform_graph: TransformGraph,
) -> Output[ModelEvaluation]:
    """TFX Evaluator: metrics overall and per slice for candidate and baseline (the model serving now)."""
    settings = trainpipe.settings
    ev = settings.evaluation
    baseline_ref = current_baseline(context.instance, trainpipe.serving_dir)
    force = None
    if context.run.tags.get(FORCE_BLESS_TAG, "").lower() == "true":
        force = f"run tag {FORCE_BLESS_TAG}=true"
    elif ev.force_bless:
        force = "config evaluation.force_bless: true"
    step = Step(context, trainpipe, CODE_VERSION)
    examples = step.validated(examples)
    if reused := step.reuse(
        ev.model_dump(),
        settings.label_key,
        trained_model.cache_key or trained_model.uri,
        baseline_ref and (baseline_ref.version, baseline_ref.serving_path),
        examples.fingerprints,
        force,
        transform_graph.cache_key if ev.label_key else None,
    ):
        return reused
    serialized = read_records(examples.file_patterns["eval"])
    if not serialized:
        raise fail(f"no eval examples in the window {examples.partitions}")
    decoded = decode_examples(serialized)
    labels, label_source = eval_labels(serialized, decoded, settings, transform_graph.uri)
    slice_values = {}
    for feature in ev.slices:
        if feature not in decoded.schema.names:
            raise fail(f"evaluation.slices names {feature!r}, which is not a feature of the examples")
        slice_values[feature] = [
            v[0].decode() if v and isinstance(v[0], bytes) else (v[0] if v else None)
            for v in decoded.column(feature).to_pylist()
        ]

    def evaluate(model_dir: Path) -> dict:
        scores, semantics = as_probabilities(score_serialized(model_dir, serialized, ev.prediction_key), ev.output)
        return {
            "overall": compute_metrics(labels, scores, ev.metrics),
            "slices": sliced_metrics(labels, scores, slice_values, ev.metrics),
            "plots": curves(labels, scores),
            "scores": semantics,
            "warnings": eval_set_warnings(labels, scores, ev.min_eval_rows),
        }

    candidate = evaluate(trained_model.serving_model_dir)
    baseline = None
    if baseline_ref is not None and (Path(baseline_ref.serving_path) / "saved_model.pb").is_file():
        baseline = evaluate(Path(baseline_ref.serving_path))
    blessing = decide_blessing(candidate["overall"], baseline and baseline["overall"], ev.thresholds, force)
    if baseline_ref is not None and baseline is None:
        blessing.reasons.append(
            f"baseline version {baseline_ref.version} is gone from {baseline_ref.serving_path}: compared without it"
        )

    staging = step.staging
    baseline_version = baseline_ref.version if baseline is not None else None
    report = {
        "candidate": {"model": trained_model.uri, **candidate},
        "baseline": None
        if baseline is None
        else {"version": baseline_version, "path": baseline_ref.serving_path, **baseline},
        "eval_partitions": examples.partitions,
        **blessing.to_json(),
    }
    write_text(staging / "evaluation.json", json.dumps(report, indent=2))
    write_text(staging / ("BLESSED" if blessing.blessed else "NOT_BLESSED"), "")
    artifact = ModelEvaluation(
        **step.fields(), blessed=blessing.blessed, candidate_uri=trained_model.uri, baseline_version=baseline_version
    )
    return step.output(
        artifact,
        {
            md.BLESSED: blessing.blessed,
            "reasons": MetadataValue.md("\n".join(f"- {r}" for r in blessing.reasons)),
            md.BLESSING_REASONS: MetadataValue.json(blessing.reasons),
            md.BASELINE_VERSION: baseline_version if baseline_version is not None else "none",
            md.CANDIDATE_METRICS: MetadataValue.json(candidate["overall"]),
            **evaluation_metadata(candidate, baseline, f"baseline v{baseline_version}", report["verdicts"], ev.metrics),
            "eval_examples": len(serialized),
            "label": label_source,
            "score_semantics": candidate["scores"],
            md.EVALUATION_WARNINGS: MetadataValue.json(candidate["warnings"]),
            **(
                {"warnings": MetadataValue.md("\n".join(f"- {w}" for w in candidate["warnings"]))}
                if candidate["warnings"]
                else {}
            ),
        },
    )


@pipeline_check(asset="model_evaluation", name="model_blessed")
def model_blessed(context: AssetCheckExecutionContext, model_evaluation: ModelEvaluation) -> AssetCheckResult:
    """Blocking: a model the Evaluator did not bless is never pushed."""
    report = model_evaluation.report()
    return AssetCheckResult(
        passed=model_evaluation.blessed,
        metadata={
            "reasons": MetadataValue.md("\n".join(f"- {r}" for r in report["reasons"])),
            "candidate": MetadataValue.path(model_evaluation.candidate_uri),
        },
        description="; ".join(report["reasons"]),
    )
