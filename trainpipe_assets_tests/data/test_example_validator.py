import pyarrow as pa

from trainpipe_assets.core.example_reader import decode_examples
from trainpipe_assets.data.anomalies import (
    MISSING_FEATURE,
    MISSING_VALUES,
    OUT_OF_DOMAIN,
    TYPE_CHANGE,
    UNEXPECTED_FEATURE,
    Anomaly,
    anomalies_markdown,
    anomalies_text,
    find_anomalies,
)
from trainpipe_assets.data.schema_gen import infer_schema
from trainpipe_assets.data.statistics_gen.component import feature_statistics
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


def test_an_empty_split_has_no_anomalies():
    empty = feature_statistics(pa.RecordBatch.from_pydict({}), "eval")  # what statistics_for_split makes of no rows
    assert find_anomalies(empty, SCHEMA, 0.0) == []


def test_anomalies_text_is_a_plain_table():
    found = [
        Anomaly("eval", "s", OUT_OF_DOMAIN, "100.0% of values outside the domain (limit 0.0%): 'zzz' (1)"),
        Anomaly("train", "n", MISSING_FEATURE, "column is in the schema\nbut not in the data"),
    ]
    assert anomalies_text(found).splitlines() == [
        "split  feature  kind             description",
        "-----  -------  ---------------  -----------",
        "eval   s        OUT_OF_DOMAIN    100.0% of values outside the domain (limit 0.0%): 'zzz' (1)",
        "train  n        MISSING_FEATURE  column is in the schema but not in the data",
    ]
    assert anomalies_text([]) == "No anomalies."


def test_values_and_names_from_the_data_are_previewed():
    huge = "v" * 1_000_000
    found = find_anomalies(stats([example(n=1, s=huge, opt=1, **{"x" * 1_000_000: 1})]), SCHEMA, 0.0)
    assert {a.kind for a in found} == {OUT_OF_DOMAIN, UNEXPECTED_FEATURE}
    assert all(len(a.feature) < 300 and len(a.description) < 2000 for a in found)
    assert "'" + "v" * 200 + "…'" in anomalies_markdown(found)
