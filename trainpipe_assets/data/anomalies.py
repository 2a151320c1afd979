"""What ExampleValidator finds in a day's statistics against a schema: missing and unexpected features, type
changes, out-of-domain strings and missing values (an empty split has nothing to check), as plain records, as
tensorflow_metadata `Anomalies` protos (TFX's SchemaDiff.pb) and as tables for the UI and a terminal."""

from dataclasses import dataclass, replace

from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from trainpipe_assets.core.metadata import preview
from trainpipe_assets.data.statistics_gen.compare import Stats, common_stats_of

MISSING_FEATURE = "MISSING_FEATURE"
UNEXPECTED_FEATURE = "UNEXPECTED_FEATURE"
TYPE_CHANGE = "TYPE_CHANGE"
OUT_OF_DOMAIN = "OUT_OF_DOMAIN"
MISSING_VALUES = "MISSING_VALUES"

_STATS_TYPE = {schema_pb2.INT: Stats.INT, schema_pb2.FLOAT: Stats.FLOAT, schema_pb2.BYTES: Stats.STRING}


@dataclass(frozen=True)
class Anomaly:
    split: str
    feature: str
    kind: str
    description: str


def find_anomalies(
    dataset: statistics_pb2.DatasetFeatureStatistics, schema: schema_pb2.Schema, max_out_of_domain_fraction: float
) -> list[Anomaly]:
    split = dataset.name
    if dataset.num_examples == 0:  # an empty split (e.g. eval of a tiny day) has no features to compare
        return []
    observed = {f.path.step[0]: f for f in dataset.features}
    domains = {d.name: set(d.value) for d in schema.string_domain}
    found: list[Anomaly] = []
    for feature in schema.feature:
        stats = observed.get(feature.name)
        if stats is None:
            found.append(Anomaly(split, feature.name, MISSING_FEATURE, "column is in the schema but not in the data"))
            continue
        common = common_stats_of(stats)
        if common.num_non_missing and _STATS_TYPE.get(feature.type) != stats.type:
            if not (feature.type == schema_pb2.FLOAT and stats.type == Stats.INT):  # ints are valid floats
                expected = schema_pb2.FeatureType.Name(feature.type)
                found.append(
                    Anomaly(
                        split,
                        feature.name,
                        TYPE_CHANGE,
                        f"schema says {expected}, data has {Stats.Type.Name(stats.type)}",
                    )
                )
                continue
        total = common.num_non_missing + common.num_missing
        present = common.num_non_missing / total if total else 1.0
        if feature.presence.min_fraction and present < feature.presence.min_fraction:
            found.append(
                Anomaly(
                    split,
                    feature.name,
                    MISSING_VALUES,
                    f"{common.num_missing} of {total} rows missing ({1 - present:.1%}); schema requires presence "
                    f">= {feature.presence.min_fraction:.0%}",
                )
            )
        domain = domains.get(feature.domain) if feature.HasField("domain") else None
        if domain is not None and stats.HasField("string_stats"):
            values = stats.string_stats.top_values
            outside = [(v.value, v.frequency) for v in values if v.value not in domain]
            mass = sum(n for _, n in outside) / max(1, sum(v.frequency for v in values))
            if outside and mass > max_out_of_domain_fraction:
                shown = ", ".join(f"{preview(v)!r} ({n:.0f})" for v, n in outside[:5])
                found.append(
                    Anomaly(
                        split,
                        feature.name,
                        OUT_OF_DOMAIN,
                        f"{mass:.1%} of values outside the domain (limit {max_out_of_domain_fraction:.1%}): {shown}",
                    )
                )
    known = {f.name for f in schema.feature}
    for name in observed:
        if name not in known:
            found.append(Anomaly(split, name, UNEXPECTED_FEATURE, "column is in the data but not in the schema"))
    return [replace(a, feature=preview(a.feature)) for a in found]  # names come from the data too


def anomalies_markdown(anomalies: list[Anomaly]) -> str:
    if not anomalies:
        return "No anomalies."
    rows = ["| split | feature | anomaly | description |", "|---|---|---|---|"]
    rows += [
        "| " + " | ".join(cell.replace("|", "\\|") for cell in (a.split, a.feature, a.kind, a.description)) + " |"
        for a in anomalies
    ]
    return "\n".join(rows)


def anomalies_text(anomalies: list[Anomaly]) -> str:
    """A plain-text table (split, feature, kind, description) for a terminal, e.g. from the check's `anomalies_json`
    metadata: `anomalies_text([Anomaly(**a) for a in json])`."""
    if not anomalies:
        return "No anomalies."
    rows = [("split", "feature", "kind", "description")]
    rows += [(a.split, a.feature, a.kind, " ".join(a.description.split())) for a in anomalies]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join([*(cell.ljust(w) for cell, w in zip(row[:3], widths)), row[3]]) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in [*widths, len("description")]))
    return "\n".join(line.rstrip() for line in lines)


# tensorflow_metadata's AnomalyInfo types for ours (TFX writes these in SchemaDiff.pb)
_PROTO_TYPE = {
    MISSING_FEATURE: "SCHEMA_MISSING_COLUMN",
    UNEXPECTED_FEATURE: "SCHEMA_NEW_COLUMN",
    TYPE_CHANGE: "UNEXPECTED_DATA_TYPE",
    OUT_OF_DOMAIN: "ENUM_TYPE_UNEXPECTED_STRING_VALUES",
    MISSING_VALUES: "FEATURE_TYPE_LOW_FRACTION_PRESENT",
}


def anomalies_proto(anomalies: list[Anomaly], schema: schema_pb2.Schema | None):
    """One split's anomalies as TFX's `Anomalies` proto (anomaly_info keyed by feature name, severity ERROR)."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    proto = anomalies_pb2.Anomalies(anomaly_name_format=anomalies_pb2.Anomalies.SERIALIZED_PATH)
    if schema is not None:
        proto.baseline.CopyFrom(schema)
    for a in anomalies:
        info = proto.anomaly_info[a.feature]
        info.severity = anomalies_pb2.AnomalyInfo.ERROR
        info.path.step.append(a.feature)
        kind = anomalies_pb2.AnomalyInfo.Type.Value(_PROTO_TYPE.get(a.kind, "UNKNOWN_TYPE"))
        info.reason.add(type=kind, short_description=a.kind, description=a.description)
        info.short_description = info.reason[0].short_description if len(info.reason) == 1 else "Multiple errors"
        info.description = " ".join(r.description for r in info.reason)
    return proto

