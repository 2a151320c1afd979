from tensorflow_metadata.proto.v0 import schema_pb2

from trainpipe_assets.core.example_reader import decode_examples
from trainpipe_assets.data.schema_gen import MAX_STRING_DOMAIN_SIZE, infer_schema
from trainpipe_assets.data.statistics_gen.component import feature_statistics
from trainpipe_assets_tests.helpers import example


def stats(rows):
    return feature_statistics(decode_examples(rows), "train")


def features(schema):
    return {f.name: f for f in schema.feature}


def test_types_presence_shapes_and_domains():
    day1 = stats([example(n=1, x=1.0, s="a", opt=1), example(n=2, x=2.0, s="b")])
    day2 = stats([example(n=3, x=3.0, s="c", opt=2)])
    schema = infer_schema([day1, day2])
    f = features(schema)
    assert (f["n"].type, f["x"].type, f["s"].type) == (schema_pb2.INT, schema_pb2.FLOAT, schema_pb2.BYTES)
    assert f["n"].presence.min_fraction == 1.0 and [d.size for d in f["n"].shape.dim] == [1]
    assert f["opt"].presence.min_fraction == 0.0 and f["opt"].presence.min_count == 1
    assert not f["opt"].HasField("shape") and (f["opt"].value_count.min, f["opt"].value_count.max) == (1, 1)
    domains = {d.name: list(d.value) for d in schema.string_domain}
    assert f["s"].domain == "s" and domains["s"] == ["a", "b", "c"]


def test_a_feature_absent_on_one_day_is_not_always_present():
    schema = infer_schema([stats([example(n=1, late=1)]), stats([example(n=2)])])
    assert features(schema)["late"].presence.min_fraction == 0.0


def test_mixed_int_and_float_days_give_float_and_big_vocabularies_get_no_domain():
    schema = infer_schema([stats([example(v=1)]), stats([example(v=1.5)])])
    assert features(schema)["v"].type == schema_pb2.FLOAT
    many = stats([example(id=f"user-{i}") for i in range(MAX_STRING_DOMAIN_SIZE + 1)])
    schema = infer_schema([many])
    assert not features(schema)["id"].HasField("domain") and not schema.string_domain
