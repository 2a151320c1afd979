import datetime as dt

import pandas as pd
import pytest

from trainpipe_assets.data.sample_data import generate_day, tip_probability, write_days

DAY = dt.date(2024, 5, 1)


def test_same_seed_and_day_give_the_same_rows():
    pd.testing.assert_frame_equal(generate_day(DAY, 300, seed=3), generate_day(DAY, 300, seed=3))
    assert not generate_day(DAY, 300, seed=3).equals(generate_day(DAY, 300, seed=4))


def test_columns_kinds_and_missing_values():
    frame = generate_day(DAY, 5000)
    assert pd.api.types.is_float_dtype(frame["fare"])
    assert set(frame["trip_start_hour"]) <= set(range(24))
    assert frame["payment_type"].map(type).eq(str).all()
    for column in ("trip_miles", "company", "pickup_area"):
        assert 0.01 < frame[column].isna().mean() < 0.2, column
    assert set(frame["big_tipper"]) == {0, 1}


def test_label_is_learnable_but_not_perfectly():
    frame = generate_day(DAY, 20000)
    label = frame["big_tipper"].to_numpy()
    majority = max(label.mean(), 1 - label.mean())
    bayes = ((tip_probability(frame.assign(trip_miles=frame["trip_miles"].astype(float))) > 0.5) == label).mean()
    assert bayes > majority + 0.2
    assert bayes < 0.95


def test_drift_changes_the_distribution():
    normal, drifted = generate_day(DAY, 5000), generate_day(DAY, 5000, drift=True)
    assert drifted["fare"].mean() > normal["fare"].mean() * 1.2
    assert "Drift Cab Co" in set(drifted["company"]) and "Drift Cab Co" not in set(normal["company"])


def test_write_days_names_files_by_day_and_drifts_from_a_day(tmp_path):
    paths = write_days(tmp_path, 3, 50, end=DAY, seed=1, drift_from=DAY)
    assert [p.name for p in paths] == ["trips_2024-04-29.csv", "trips_2024-04-30.csv", "trips_2024-05-01.csv"]
    assert "Drift Cab Co" in set(pd.read_csv(paths[-1])["company"])
    assert "Drift Cab Co" not in set(pd.read_csv(paths[0])["company"])
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(ValueError, match="--days"):
        write_days(tmp_path, 0, 10)
