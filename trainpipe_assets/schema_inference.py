"""TFX SchemaGen's inference: types, presence, shapes and string domains from the statistics of a window."""
from __future__ import annotations

from dataclasses import dataclass, field

from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from .feature_stats import Stats, common_stats_of

MAX_STRING_DOMAIN_SIZE = 100  # more distinct values than this is free text or an id, not a category

_TYPES = {Stats.INT: schema_pb2.INT, Stats.FLOAT: schema_pb2.FLOAT, Stats.STRING: schema_pb2.BYTES, Stats.BYTES: schema_pb2.BYTES}


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
