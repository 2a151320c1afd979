import datetime as dt
import json

import pytest
import sqlalchemy as sa

from trainpipe_assets.data.example_gen import examples
from trainpipe_assets.data.sample_data import generate_day
from trainpipe_assets.data.sources.csv_source import SourceError
from trainpipe_assets.data.sources.sql_source import SqlSource, read_sql_day
from trainpipe_assets.orchestration.new_rows_sensor import new_rows_sensor, plan_sql_ingest
from trainpipe_assets_tests import helpers
from trainpipe_assets_tests.helpers import failure_message, make_config, materialize, resources_for, write_config

DAYS = [dt.date(2024, 3, 1), dt.date(2024, 3, 2)]


def create_trips(url: str, rows_per_day: int = 60) -> sa.Table:
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    trips = sa.Table(
        "trips",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ts", sa.DateTime, nullable=True),
        sa.Column("trip_start_hour", sa.Integer),
        sa.Column("pickup_area", sa.Integer),
        sa.Column("trip_miles", sa.Float),
        sa.Column("trip_seconds", sa.Integer),
        sa.Column("fare", sa.Float),
        sa.Column("payment_type", sa.String),
        sa.Column("company", sa.String),
        sa.Column("big_tipper", sa.Integer),
    )
    meta.drop_all(engine)
    meta.create_all(engine)
    with engine.begin() as connection:
        for day in DAYS:
            frame = generate_day(day, rows_per_day)
            records = frame.astype(object).where(frame.notna(), None).to_dict("records")
            for i, record in enumerate(records):
                record["ts"] = dt.datetime.combine(day, dt.time(record["trip_start_hour"], i % 60))
            connection.execute(trips.insert(), records)
        connection.execute(trips.insert(), [{"ts": None, "fare": 1.0, "payment_type": "Cash", "big_tipper": 0}])
    engine.dispose()
    return trips


def insert(url: str, table: sa.Table, **values):
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(table.insert(), [values])
    engine.dispose()


def sql_config(tmp_path, url, **source):
    return write_config(
        tmp_path / "sql.yaml",
        source={"kind": "sql", "url": url, "table": "trips", "timestamp_column": "ts", "primary_key": "id", **source},
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'trips.db'}"
    return request.getfixturevalue("postgres_url")


def tick(trainpipe, cursor=None):
    return helpers.tick(new_rows_sensor, cursor, trainpipe=trainpipe)


def test_examples_reads_a_day_of_rows_and_counts_rows_without_timestamp(database_url, home, instance, tmp_path):
    create_trips(database_url)
    trainpipe = make_config(home, sql_config(tmp_path, database_url))
    result = materialize([examples], partition_key="2024-03-02", resources=resources_for(trainpipe), instance=instance)
    metadata = result.asset_materializations_for_node("examples")[0].metadata
    assert metadata["rows"].value == 60 and metadata["rejected_rows"].value == 0
    assert metadata["rows_without_timestamp"].value == 1
    assert "ts" not in metadata["column_types"].value and metadata["column_types"].value["fare"] == "FLOAT"
    assert "secret" not in json.dumps(metadata["source_fingerprint"].value)


def test_new_rows_sensor_requests_days_and_re_requests_late_ones(database_url, home, tmp_path):
    trips = create_trips(database_url)
    trainpipe = make_config(home, sql_config(tmp_path, database_url))
    first = tick(trainpipe)
    assert sorted(r.partition_key for r in first.run_requests) == ["2024-03-01", "2024-03-02"]
    assert json.loads(first.cursor)["rows_without_timestamp"] == 1
    quiet = tick(trainpipe, first.cursor)
    assert quiet.run_requests == [] and "no new rows" in quiet.skip_reason.skip_message
    insert(database_url, trips, ts=dt.datetime(2024, 3, 1, 23, 59), fare=9.5, payment_type="Cash", big_tipper=0)
    late = tick(trainpipe, quiet.cursor)
    assert [r.partition_key for r in late.run_requests] == ["2024-03-01"]
    assert late.run_requests[0].run_key != first.run_requests[0].run_key


def test_unreachable_database_and_missing_table_fail_with_masked_url(home, tmp_path):
    trainpipe = make_config(home, sql_config(tmp_path, "postgresql+pg8000://app:hunter2@127.0.0.1:1/db"))
    with pytest.raises(SourceError, match=r"postgresql\+pg8000://app:\*\*\*@127.0.0.1:1/db \(trips\)") as error:
        tick(trainpipe)
    assert "hunter2" not in str(error.value)
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    trainpipe = make_config(
        home,
        write_config(
            tmp_path / "sql2.yaml",
            source={"kind": "sql", "url": empty, "table": "nope", "timestamp_column": "ts", "primary_key": "id"},
        ),
    )
    with pytest.raises(SourceError, match="no such table: nope"):
        tick(trainpipe)


def test_a_day_without_rows_fails_naming_the_source(home, instance, tmp_path):
    url = f"sqlite:///{tmp_path / 'trips.db'}"
    create_trips(url)
    trainpipe = make_config(home, sql_config(tmp_path, url))
    result = materialize(
        [examples],
        partition_key="2024-03-05",
        resources=resources_for(trainpipe),
        instance=instance,
        raise_on_error=False,
    )
    assert "no rows for 2024-03-05 in sqlite:///" in failure_message(result)


def test_plan_keeps_days_without_a_partition_pending():
    rows = [{"ts": "2024-03-01 10:00:00", "pk": 1}, {"ts": dt.datetime(2099, 1, 1), "pk": 2}, {"ts": None, "pk": 3}]
    plan = plan_sql_ingest(rows, {}, {"2024-03-01"})
    assert [r.partition_key for r in plan.run_requests] == ["2024-03-01"]
    assert plan.cursor == {"pk": 3, "pending": ["2099-01-01"], "rows_without_timestamp": 1}
    later = plan_sql_ingest([], plan.cursor, {"2024-03-01", "2099-01-01"})
    assert [r.partition_key for r in later.run_requests] == ["2099-01-01"] and later.cursor["pending"] == []


def test_sql_settings_are_validated(tmp_path):
    from trainpipe_assets.core.settings import ConfigError, TrainpipeConfig

    path = write_config(tmp_path / "bad.yaml", source={"kind": "sql", "url": "sqlite://"})
    with pytest.raises(ConfigError, match="kind: sql needs timestamp_column, primary_key, table or query"):
        TrainpipeConfig(home=str(tmp_path), config_path=str(path)).settings


def test_non_finite_floats_from_the_database_reject_their_rows(database_url):
    engine = sa.create_engine(database_url)
    meta = sa.MetaData()
    readings = sa.Table(
        "readings",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ts", sa.DateTime),
        sa.Column("x", sa.Float),
        sa.Column("y", sa.String),
    )
    meta.drop_all(engine)
    meta.create_all(engine)
    values = [(1.5, "2.5"), (float("inf"), "1"), (2.0, "NaN"), (3.0, "-Infinity"), (4.0, "5"), (5.0, "INF")]
    if database_url.startswith("postgresql"):  # SQLite stores a NaN as NULL
        values.append((float("nan"), "6"))
    with engine.begin() as connection:
        connection.execute(
            readings.insert(),
            [{"id": i, "ts": dt.datetime(2024, 3, 1, 12), "x": x, "y": y} for i, (x, y) in enumerate(values, 1)],
        )
    engine.dispose()
    source = SqlSource(url=database_url, timestamp_column="ts", primary_key="id", table="readings")
    day, _ = read_sql_day(source, dt.date(2024, 3, 1), {"x": "FLOAT", "y": "FLOAT"}, 0.9)
    assert day.table["x"].to_pylist() == [1.5, 4.0] and day.table["y"].to_pylist() == [2.5, 5.0]
    expected = [
        ("2", "x: non-finite value 'inf' (FLOAT)"),
        ("3", "y: non-finite value 'NaN' (FLOAT)"),
        ("4", "y: non-finite value '-Infinity' (FLOAT)"),
        ("6", "y: non-finite value 'INF' (FLOAT)"),
    ]
    if database_url.startswith("postgresql"):
        expected.append(("7", "x: non-finite value 'nan' (FLOAT)"))
    assert [(r.line, r.reason) for r in day.rejected] == expected
    assert day.non_finite == {"x": len(expected) - 3, "y": 3}
