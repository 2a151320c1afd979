from dagster import AssetKey
from tensorflow_metadata.proto.v0 import statistics_pb2

from trainpipe_assets_tests.helpers import DAYS


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


def test_statistics_metadata_has_a_table_per_split(pipeline):
    [record] = pipeline["instance"].fetch_materializations(AssetKey("statistics"), limit=1).records
    metadata = record.asset_materialization.metadata
    assert metadata["statistics_train"].value.startswith("| feature | type | missing |")
    assert "| payment_type | STRING |" in metadata["statistics_eval"].value
