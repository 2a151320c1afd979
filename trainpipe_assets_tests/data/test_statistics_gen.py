from dagster import AssetKey, AssetRecordsFilter, FloatMetadataValue, MarkdownMetadataValue
from tensorflow_metadata.proto.v0 import statistics_pb2

from trainpipe_assets_tests.helpers import DAYS, PNG_MAGIC, inline_pngs


def test_statistics_per_split_in_tfx_layout(pipeline):
    out = pipeline["home"] / "artifacts" / "statistics" / DAYS[0]
    records = pipeline["instance"].fetch_materializations(AssetKey("examples"), limit=10).records
    counts = {r.partition_key: r.asset_materialization.metadata for r in records}[DAYS[0]]
    for split in ("train", "eval"):
        stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(
            (out / f"Split-{split}" / "FeatureStats.pb").read_bytes()
        )
        [dataset] = stats.datasets
        assert dataset.name == split
        assert dataset.num_examples == counts[f"rows_{split}"].value
        names = {f.path.step[0] for f in dataset.features}
        assert names == {
            "trip_start_hour",
            "pickup_area",
            "trip_miles",
            "trip_seconds",
            "fare",
            "payment_type",
            "company",
            "big_tipper",
        }
        fare = next(f for f in dataset.features if f.path.step[0] == "fare")
        assert 3.25 <= fare.num_stats.min < fare.num_stats.mean < fare.num_stats.max
        company = next(f for f in dataset.features if f.path.step[0] == "company")
        assert company.string_stats.common_stats.num_missing > 0 and company.string_stats.top_values
        [histogram] = fare.num_stats.histograms
        assert histogram.type == statistics_pb2.Histogram.STANDARD and len(histogram.buckets) == 10
        assert sum(b.sample_count for b in histogram.buckets) == fare.num_stats.common_stats.num_non_missing


def statistics_metadata(instance, day: str) -> dict:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey("statistics"), asset_partitions=[day]), limit=1
    ).records
    return records[0].asset_materialization.metadata


def test_statistics_metadata_puts_the_splits_side_by_side_with_their_skew(pipeline):
    metadata = statistics_metadata(pipeline["instance"], DAYS[-1])
    table = metadata["statistics"].value
    assert table.startswith("| feature | type | train missing | eval missing | train | eval | missing Δ (eval − train)")
    assert "| L∞ skew (eval vs train) |" in table.splitlines()[0]
    assert "| payment_type | STRING |" in table and "| fare | FLOAT |" in table
    assert isinstance(metadata["max_skew_linf"], FloatMetadataValue) and 0 <= metadata["max_skew_linf"].value <= 1
    assert isinstance(metadata["histograms"], MarkdownMetadataValue)
    pngs = inline_pngs(metadata["histograms"].value)
    train = statistics_pb2.DatasetFeatureStatisticsList.FromString(
        (pipeline["home"] / "artifacts" / "statistics" / DAYS[-1] / "Split-train" / "FeatureStats.pb").read_bytes()
    )
    numeric = [f for f in train.datasets[0].features if f.HasField("num_stats")]
    [png] = pngs  # one image, a panel per numeric column
    assert png.startswith(PNG_MAGIC) and len(png) < 60_000
    assert f"{len(numeric)} numeric features: " in metadata["histograms"].value and len(numeric) >= 5


def test_the_first_day_has_no_previous_day_and_the_next_reports_its_drift(pipeline):
    first = statistics_metadata(pipeline["instance"], DAYS[0])
    assert first["drift"].value.startswith("no previous day") and first["previous_day"].value == "none"
    assert "max_drift_linf" not in first
    second = statistics_metadata(pipeline["instance"], DAYS[1])
    assert second["previous_day"].value == DAYS[0]
    drift = second["drift"].value
    assert drift.startswith(f"Against {DAYS[0]}.") and "| payment_type | STRING |" in drift
    assert isinstance(second["max_drift_linf"], FloatMetadataValue) and 0 <= second["max_drift_linf"].value <= 1
    assert "dashed: train of " + DAYS[0] in second["histograms"].value
