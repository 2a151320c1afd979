import pytest
import tensorflow as tf

from trainpipe_assets.core.records import decode_examples
from trainpipe_assets.data.statistics_gen import Stats, feature_statistics, markdown_table
from trainpipe_assets_tests.helpers import example


@pytest.fixture
def dataset():
    rows = [
        example(n=1, x=1.0, s="a"),
        example(n=2, x=3.0, s="b"),
        example(n=3, x=None, s="a"),
        example(n=0, x=5.0, s=None),
    ]
    return feature_statistics(decode_examples(rows), "train")


def by_name(dataset):
    return {f.path.step[0]: f for f in dataset.features}


def test_numeric_statistics(dataset):
    assert dataset.name == "train" and dataset.num_examples == 4
    n, x = by_name(dataset)["n"], by_name(dataset)["x"]
    assert n.type == Stats.INT and x.type == Stats.FLOAT
    assert (n.num_stats.min, n.num_stats.max, n.num_stats.mean, n.num_stats.num_zeros) == (0, 3, 1.5, 1)
    assert n.num_stats.std_dev == pytest.approx(1.118, abs=1e-3)
    assert x.num_stats.common_stats.num_missing == 1 and x.num_stats.common_stats.num_non_missing == 3
    assert x.num_stats.mean == pytest.approx(3.0)
    assert x.num_stats.common_stats.max_num_values == 1


def test_string_statistics(dataset):
    s = by_name(dataset)["s"]
    assert s.type == Stats.STRING
    assert s.string_stats.unique == 2
    assert [(v.value, v.frequency) for v in s.string_stats.top_values] == [("a", 2), ("b", 1)]
    assert s.string_stats.common_stats.num_missing == 1


def test_markdown_table_lists_every_feature(dataset):
    table = markdown_table(dataset)
    assert table.splitlines()[0].startswith("| feature |")
    assert (
        "| n | INT | 0 (0.0%) | 0 | 3 | 1.5 |" in table and "| s | STRING | 1 (25.0%) |" in table and "a (2)" in table
    )


def test_a_feature_that_is_always_empty_is_all_missing():
    empty = tf.train.Feature()  # what the CSV reader writes for an empty cell
    rows = [tf.train.Example(features=tf.train.Features(feature={"tract": empty})).SerializeToString()] * 3
    dataset = feature_statistics(decode_examples(rows), "train")
    tract = by_name(dataset)["tract"]
    assert tract.type == Stats.STRING and tract.string_stats.common_stats.num_missing == 3
    assert "| tract | STRING | 3 (100.0%) |" in markdown_table(dataset)


def test_markdown_table_previews_values_and_names_from_the_data():
    huge = "v" * 1_000_000
    dataset = feature_statistics(decode_examples([example(s=huge + "|x", **{"n" * 1_000_000: 1})]), "train")
    table = markdown_table(dataset)
    assert len(table) < 2000 and "| " + "n" * 200 + "… | INT |" in table and "v" * 200 + "… (1)" in table
