from trainpipe_assets.core.records import decode_examples
from trainpipe_assets.data.example_validator import (
    MISSING_FEATURE,
    MISSING_VALUES,
    OUT_OF_DOMAIN,
    TYPE_CHANGE,
    UNEXPECTED_FEATURE,
    anomalies_markdown,
    find_anomalies,
)
from trainpipe_assets.data.schema_gen import infer_schema
from trainpipe_assets.data.statistics_gen import feature_statistics
from trainpipe_assets_tests.helpers import example

BASE = [example(n=i, s="a" if i % 2 else "b", opt=i) for i in range(10)] + [example(n=10, s="a")]


def stats(rows, name="eval"):
    return feature_statistics(decode_examples(rows), name)


SCHEMA = infer_schema([stats(BASE)])


def kinds(rows, tolerance=0.0):
    return {(a.feature, a.kind) for a in find_anomalies(stats(rows), SCHEMA, tolerance)}


def test_data_like_the_schema_has_no_anomalies():
    assert kinds(BASE) == set()


def test_each_anomaly_kind():
    assert kinds([example(s="a", opt=1)]) == {("n", MISSING_FEATURE)}
    assert kinds([example(n=1, s="a", opt=1, extra=1.0)]) == {("extra", UNEXPECTED_FEATURE)}
    assert kinds([example(n="one", s="a", opt=1)]) == {("n", TYPE_CHANGE)}
    assert kinds([example(n=1, s="zzz", opt=1)]) == {("s", OUT_OF_DOMAIN)}
    assert kinds([example(n=1, s="a", opt=1), example(s="b", n=None)]) == {("n", MISSING_VALUES)}


def test_out_of_domain_tolerance_is_a_fraction_of_values():
    rows = [example(n=1, s="a", opt=1)] * 99 + [example(n=1, s="new", opt=1)]
    assert kinds(rows, tolerance=0.02) == set()
    assert kinds(rows, tolerance=0.005) == {("s", OUT_OF_DOMAIN)}


def test_ints_are_accepted_where_floats_are_expected_and_the_report_reads_well():
    schema = infer_schema([stats([example(x=1.5)])])
    assert find_anomalies(stats([example(x=2)]), schema, 0.0) == []
    found = find_anomalies(stats([example(n=1, s="zzz", opt=1)]), SCHEMA, 0.0)
    table = anomalies_markdown(found)
    assert "| eval | s | OUT_OF_DOMAIN |" in table and "'zzz'" in table
    assert anomalies_markdown([]) == "No anomalies."
