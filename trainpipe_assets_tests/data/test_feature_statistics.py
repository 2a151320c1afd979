import pytest
import tensorflow as tf
from tensorflow_metadata.proto.v0 import statistics_pb2

from trainpipe_assets.core.example_reader import decode_examples
from trainpipe_assets.data.statistics_gen.compare import Stats, compare, drift_max, l_infinity, skew_max
from trainpipe_assets.data.statistics_gen.component import feature_statistics, markdown_table
from trainpipe_assets.data.statistics_gen.plots import histograms_markdown
from trainpipe_assets.data.statistics_gen.tables import drift_markdown, side_by_side_markdown
from trainpipe_assets_tests.helpers import PNG_MAGIC, example, inline_pngs


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


def test_numeric_features_get_an_equal_width_histogram_like_tfdv(dataset):
    [histogram] = by_name(dataset)["n"].num_stats.histograms
    assert histogram.type == statistics_pb2.Histogram.STANDARD and len(histogram.buckets) == 10
    assert (histogram.buckets[0].low_value, histogram.buckets[-1].high_value) == (0, 3)
    assert sum(b.sample_count for b in histogram.buckets) == 4 and histogram.buckets[-1].sample_count == 1
    [constant] = feature_statistics(decode_examples([example(c=2.5)] * 3), "train").features[0].num_stats.histograms
    assert [(b.low_value, b.high_value, b.sample_count) for b in constant.buckets] == [(2.5, 2.5, 3)]


def handmade_pair():
    train = [example(s="a", x=1.0), example(s="a", x=2.0), example(s="b", x=2.0), example(x=3.0)]
    eval_ = [example(s="a", x=1.0), example(s="b", x=1.0), example(s="b"), example(s="b", x=4.0)]
    return feature_statistics(decode_examples(train), "train"), feature_statistics(decode_examples(eval_), "eval")


def test_skew_is_the_l_infinity_distance_of_value_shares_and_the_missing_rate_difference():
    train, eval_ = handmade_pair()
    found = {c.feature: c for c in compare(train, eval_)}
    # s: train a 2/3, b 1/3 (one row missing); eval a 1/4, b 3/4 -> the largest gap is 3/4 - 1/3 = 5/12
    assert found["s"].linf == pytest.approx(5 / 12) and found["s"].linf_value in {"a", "b"}
    assert found["s"].missing_diff == pytest.approx(-0.25) and found["x"].missing_diff == pytest.approx(0.25)
    assert found["x"].linf is None  # numeric: no categorical distance
    assert skew_max({"train": train, "eval": eval_}) == pytest.approx(5 / 12)
    table = side_by_side_markdown({"train": train, "eval": eval_})
    assert table.splitlines()[0] == (
        "| feature | type | train missing | eval missing | train | eval | missing Δ (eval − train) "
        "| L∞ skew (eval vs train) |"
    )
    assert "| s | STRING | 25.0% | 0.0% | 2 unique: a (2), b (1) | 2 unique: b (3), a (1) | -25.0% | 0.4167 (" in table


def test_a_feature_absent_from_one_side_is_all_missing_there():
    train = feature_statistics(decode_examples([example(s="a", t="x"), example(s="b", t="y")]), "train")
    eval_ = feature_statistics(decode_examples([example(s="a"), example(s="a")]), "eval")
    found = {c.feature: c for c in compare(train, eval_)}
    assert found["t"].missing_diff == 1.0 and found["t"].linf is None
    assert found["s"].linf == pytest.approx(0.5)
    assert l_infinity(None, None) == (None, None)


def test_drift_against_the_previous_day_and_histogram_images():
    train, eval_ = handmade_pair()
    today = {"train": eval_, "eval": eval_}
    previous = {"train": train}
    assert drift_max(today, previous) == pytest.approx(5 / 12)
    drift = drift_markdown(today, previous, "2024-02-29")
    assert drift.startswith("Against 2024-02-29.") and "| s | STRING | 0.4167 (" in drift and "eval L∞" not in drift
    images = histograms_markdown({"train": train, "eval": eval_}, previous, "2024-02-29")
    [png] = inline_pngs(images)  # x is the one numeric feature
    assert png.startswith(PNG_MAGIC) and len(png) < 20_000 and "dashed: train of 2024-02-29" in images
    only_strings = feature_statistics(decode_examples([example(s="a")]), "train")
    assert histograms_markdown({"train": only_strings}) is None
