"""`infra_validation` (TFX InfraValidator): the blessed candidate served by a sandboxed `trainpipe serve` process
and queried with raw eval examples before it may be pushed."""

import json
import statistics as stats

from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetExecutionContext, MetadataValue, Output

from trainpipe_assets.core.artifacts import Examples, InfraValidation, Model, ModelEvaluation
from trainpipe_assets.core.example_reader import read_records
from trainpipe_assets.core.faults import kill_point
from trainpipe_assets.core.partitions import pipeline_asset, pipeline_check
from trainpipe_assets.core.settings import TrainpipeConfig
from trainpipe_assets.core.step import Step, fail
from trainpipe_assets.core.storage import write_text
from trainpipe_assets.deploy.infra_sandbox import validate

CODE_VERSION = "infra-validation-v1"


@pipeline_asset(
    windowed=("examples",),
    io_manager_key="artifact_io_manager",
    kinds={"tensorflow"},
    group_name="deployment",
    code_version=CODE_VERSION,
)
def infra_validation(
    context: AssetExecutionContext,
    trainpipe: TrainpipeConfig,
    examples: Examples,
    trained_model: Model,
    model_evaluation: ModelEvaluation,
) -> Output[InfraValidation]:
    """TFX InfraValidator: load the candidate in a separate server process (memory limit, loading deadline, retries)
    and, in LOAD_AND_QUERY mode, send raw eval examples through :predict. Writes INFRA_BLESSED or INFRA_NOT_BLESSED;
    the blocking `infra_blessed` check keeps a model that fails here from being pushed."""
    settings = trainpipe.settings.infra_validation
    if model_evaluation.candidate_uri != trained_model.uri:
        raise fail(
            f"evaluation {model_evaluation.uri} judged {model_evaluation.candidate_uri}, not {trained_model.uri}"
        )
    step = Step(context, trainpipe, CODE_VERSION)
    examples = step.validated(examples)
    # A failed verdict is never reused: the next run tries again.
    if reused := step.reuse(
        settings.model_dump(),
        trained_model.cache_key or trained_model.uri,
        examples.fingerprints,
        accept=lambda verdict: verdict.blessed,
    ):
        return reused
    staging = step.staging
    query = settings.enabled and settings.mode == "LOAD_AND_QUERY"
    sample = read_records(examples.file_patterns["eval"], limit=settings.num_examples) if query else []
    if query and not sample:
        raise fail(f"no eval examples in the window {examples.partitions} to query the model with")
    if settings.enabled:
        verdict = validate(
            trained_model.serving_model_dir, trainpipe.settings.model_name, sample, settings, staging / "sandbox"
        )
        blessed, attempts = verdict.blessed, verdict.to_json()["attempts"]
        kill_point("infra_validation")
    else:
        blessed, attempts = (
            True,
            [
                {
                    "ok": True,
                    "reason": "infra_validation.enabled is false: not validated",
                    "latencies_ms": [],
                    "log_tail": "",
                }
            ],
        )
    last = attempts[-1]
    write_text(
        staging / "infra_validation.json",
        json.dumps({"blessed": blessed, "mode": settings.mode, "attempts": attempts}, indent=2),
    )
    write_text(staging / ("INFRA_BLESSED" if blessed else "INFRA_NOT_BLESSED"), "")
    latencies = last["latencies_ms"]
    metadata = {
        "infra_blessed": blessed,
        "mode": settings.mode,
        "reason": last["reason"],
        "attempts": len(attempts),
        "attempt_reasons": MetadataValue.md("\n".join(f"{i + 1}. {a['reason']}" for i, a in enumerate(attempts))),
        "server_log_tail": MetadataValue.md(f"```\n{last['log_tail'].strip()[-2000:] or '(empty)'}\n```"),
        "queried_examples": len(latencies),
    }
    if last.get("load_seconds") is not None:
        metadata["load_seconds"] = round(last["load_seconds"], 2)
    if latencies:
        metadata["latency_p50_ms"] = round(stats.median(latencies), 2)
        metadata["latency_max_ms"] = round(max(latencies), 2)
    return step.output(InfraValidation(**step.fields(), blessed=blessed, candidate_uri=trained_model.uri), metadata)


@pipeline_check(asset="infra_validation", name="infra_blessed")
def infra_blessed(context: AssetCheckExecutionContext, infra_validation: InfraValidation) -> AssetCheckResult:
    """Blocking: a model that did not load or answer in the sandboxed server is never pushed."""
    report = infra_validation.report()
    last = report["attempts"][-1]
    return AssetCheckResult(
        passed=infra_validation.blessed,
        metadata={
            "attempts": len(report["attempts"]),
            "reason": last["reason"],
            "candidate": MetadataValue.path(infra_validation.candidate_uri),
        },
        description=last["reason"],
    )
