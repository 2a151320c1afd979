"""`schema` (TFX SchemaGen / ImportSchemaGen): inferred from the window's train statistics, or the user's file."""


from dagster import AssetExecutionContext, Failure, MetadataValue, Output, asset
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from ..artifacts import Schema, Statistics
from ..atomic import write_text
from ..cache import fingerprint, reusable
from ..config import TrainpipeConfig
from ..partitions import daily_partitions, window_input
from ..schema_inference import infer_schema

CODE_VERSION = "schema-v1"


def read_schema_file(path) -> schema_pb2.Schema:
    try:
        return text_format.Parse(path.read_text(), schema_pb2.Schema())
    except (OSError, text_format.ParseError) as e:
        raise Failure(description=f"schema_file {path} is not a readable Schema text proto: {e}") from e


def schema_markdown(schema: schema_pb2.Schema) -> str:
    domains = {d.name: d.value for d in schema.string_domain}
    rows = ["| feature | type | presence | shape | domain |", "|---|---|---|---|---|"]
    for f in schema.feature:
        shape = "[" + ",".join(str(d.size) for d in f.shape.dim) + "]" if f.HasField("shape") else "var-len"
        domain = ", ".join(list(domains.get(f.domain, []))[:6]) if f.HasField("domain") else ""
        rows.append(f"| {f.name} | {schema_pb2.FeatureType.Name(f.type)} | {f.presence.min_fraction:g} | {shape} | {domain} |")
    return "\n".join(rows)


@asset(
    partitions_def=daily_partitions,
    ins={"statistics": window_input("statistics")},
    io_manager_key="artifact_io_manager",
    kinds={"tensorflow"},
    group_name="training",
    code_version=CODE_VERSION,
)
def schema(context: AssetExecutionContext, trainpipe: TrainpipeConfig, statistics: dict[str, Statistics]) -> Output[Schema]:
    """TFX SchemaGen: types, presence, shapes and string domains from the statistics of every day in the window."""
    window = context.asset_partition_keys_for_input("statistics")
    missing = [d for d in window if d not in statistics]
    user_file = trainpipe.schema_file
    user_text = read_schema_file(user_file) if user_file is not None else None
    key = fingerprint(CODE_VERSION, {d: s.cache_key for d, s in statistics.items()}, str(user_text))
    hit = reusable(context, key)
    if hit:
        return Output(hit[0], metadata=hit[1])
    staging = trainpipe.staging_dir("schema", context.partition_key, context.run.run_id)
    if user_file is not None:
        result = user_text
        imported_from = str(user_file)
    else:
        # Every split, not only train: a column empty in train but typed in eval must not be declared BYTES.
        result = infer_schema([stats.load(split).datasets[0] for stats in statistics.values() for split in stats.splits])
        imported_from = None
    artifact = Schema(uri=str(staging), partition=context.partition_key, inferred_from=list(statistics), imported_from=imported_from, cache_key=key)
    write_text(artifact.path, text_format.MessageToString(result))
    return Output(
        artifact,
        metadata={
            "schema": MetadataValue.md(schema_markdown(result)),
            "features": len(result.feature),
            "source": imported_from or f"inferred from {len(statistics)} day(s) of statistics",
            "window": MetadataValue.json({"days_used": list(statistics), "days_without_data": missing}),
            "cache_key": key,
            "cached": False,
        },
    )
