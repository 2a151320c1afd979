"""`schema` (TFX SchemaGen / ImportSchemaGen): types, presence, shapes and string domains inferred from the
statistics of a window, or the user's schema file."""

from dataclasses import dataclass, field

from dagster import AssetExecutionContext, MetadataValue, Output
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from trainpipe_assets.core.artifacts import Schema, Statistics
from trainpipe_assets.core.partitions import pipeline_asset
from trainpipe_assets.core.settings import TrainpipeConfig
from trainpipe_assets.core.step import Step, fail
from trainpipe_assets.core.storage import write_text
from trainpipe_assets.data.statistics_gen.compare import Stats, common_stats_of
from trainpipe_assets.module.loader import require_functions

CODE_VERSION = "schema-v1"
MAX_STRING_DOMAIN_SIZE = 100  # more distinct values than this is free text or an id, not a category

_TYPES = {
    Stats.INT: schema_pb2.INT,
    Stats.FLOAT: schema_pb2.FLOAT,
    Stats.STRING: schema_pb2.BYTES,
    Stats.BYTES: schema_pb2.BYTES,
}


@dataclass
class _FeatureFacts:
    types: set = field(default_factory=set)
    examples: int = 0
    non_missing: int = 0
    min_values: int | None = None
    max_values: int = 0
    unique_bound: int = 0
    values: set = field(default_factory=set)
    values_complete: bool = True


def _merge_type(types: set) -> int:
    if schema_pb2.BYTES in types:
        return schema_pb2.BYTES
    if schema_pb2.FLOAT in types:
        return schema_pb2.FLOAT
    return schema_pb2.INT


def infer_schema(datasets: list[statistics_pb2.DatasetFeatureStatistics]) -> schema_pb2.Schema:
    """One schema for every dataset given (e.g. the train split of each day in the window)."""
    facts: dict[str, _FeatureFacts] = {}
    for dataset in datasets:
        seen = set()
        for f in dataset.features:
            name = f.path.step[0]
            seen.add(name)
            fact = facts.setdefault(name, _FeatureFacts())
            common = common_stats_of(f)
            if common.num_non_missing:
                fact.types.add(_TYPES[f.type])
                fact.min_values = min(common.min_num_values, fact.min_values or common.min_num_values)
                fact.max_values = max(fact.max_values, common.max_num_values)
            fact.examples += dataset.num_examples
            fact.non_missing += common.num_non_missing
            if f.HasField("string_stats"):
                fact.values.update(v.value for v in f.string_stats.top_values)
                fact.values_complete &= len(f.string_stats.top_values) == f.string_stats.unique
        for name, fact in facts.items():
            if name not in seen:
                fact.examples += dataset.num_examples

    schema = schema_pb2.Schema()
    for name in sorted(facts):
        fact = facts[name]
        feature = schema.feature.add(name=name, type=_merge_type(fact.types) if fact.types else schema_pb2.BYTES)
        always_present = fact.examples > 0 and fact.non_missing == fact.examples
        feature.presence.min_count = 1
        if always_present:
            feature.presence.min_fraction = 1.0
        if always_present and fact.min_values == 1 and fact.max_values == 1:
            feature.shape.dim.add(size=1)
        elif fact.max_values == 1:
            feature.value_count.min = 1
            feature.value_count.max = 1
        elif fact.min_values:
            feature.value_count.min = 1
        if feature.type == schema_pb2.BYTES and fact.values_complete and 0 < len(fact.values) <= MAX_STRING_DOMAIN_SIZE:
            schema.string_domain.add(name=name, value=sorted(fact.values))
            feature.domain = name
    return schema


def read_schema_file(path) -> schema_pb2.Schema:
    try:
        return text_format.Parse(path.read_text(), schema_pb2.Schema())
    except (OSError, text_format.ParseError) as e:
        raise fail(f"schema_file {path} is not a readable Schema text proto: {e}") from e


def schema_markdown(schema: schema_pb2.Schema) -> str:
    domains = {d.name: d.value for d in schema.string_domain}
    rows = ["| feature | type | presence | shape | domain |", "|---|---|---|---|---|"]
    for f in schema.feature:
        shape = "[" + ",".join(str(d.size) for d in f.shape.dim) + "]" if f.HasField("shape") else "var-len"
        domain = ", ".join(list(domains.get(f.domain, []))[:6]) if f.HasField("domain") else ""
        rows.append(
            f"| {f.name} | {schema_pb2.FeatureType.Name(f.type)} | {f.presence.min_fraction:g} | {shape} | {domain} |"
        )
    return "\n".join(rows)


@pipeline_asset(
    windowed=("statistics",),
    gated_by=("example_anomalies",),  # the window's verdicts (core/validation.py)
    io_manager_key="artifact_io_manager",
    kinds={"tensorflow"},
    group_name="training",
    code_version=CODE_VERSION,
)
def schema(
    context: AssetExecutionContext, trainpipe: TrainpipeConfig, statistics: dict[str, Statistics]
) -> Output[Schema]:
    """TFX SchemaGen: types, presence, shapes and string domains from the statistics of every day in the window."""
    # The first step of training_job: a module that lacks a function the run needs fails here, before any work.
    needed = ["preprocessing_fn", "run_fn"] + (["tuner_fn"] if trainpipe.settings.tuning.enabled else [])
    require_functions(trainpipe, needed)
    window = context.asset_partition_keys_for_input("statistics")
    missing = [d for d in window if d not in statistics]
    user_file = trainpipe.schema_file
    user_text = read_schema_file(user_file) if user_file is not None else None
    step = Step(context, trainpipe, CODE_VERSION)
    statistics = step.validated(statistics)  # schema inference never learns from a day that failed validation
    if reused := step.reuse({d: s.cache_key for d, s in statistics.items()}, str(user_text)):
        return reused
    if user_file is not None:
        result = user_text
        imported_from = str(user_file)
    else:
        # Every split, not only train: a column empty in train but typed in eval must not be declared BYTES.
        result = infer_schema(
            [stats.load(split).datasets[0] for stats in statistics.values() for split in stats.splits]
        )
        imported_from = None
    artifact = Schema(**step.fields(), inferred_from=list(statistics), imported_from=imported_from)
    write_text(artifact.path, text_format.MessageToString(result))
    return step.output(
        artifact,
        {
            "schema": MetadataValue.md(schema_markdown(result)),
            "features": len(result.feature),
            "source": imported_from or f"inferred from {len(statistics)} day(s) of statistics",
            "window": MetadataValue.json({"days_used": list(statistics), "days_without_data": missing}),
        },
    )
