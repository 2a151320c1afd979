import datetime as dt

import pyarrow as pa
import pytest

from trainpipe_assets.data.sources.csv_source import files_for_day, parse_file_name, read_day
from trainpipe_assets.data.sources.rows import SourceError, check_rejected_fraction

COLUMNS = {"x": "INT", "y": "FLOAT", "s": "STRING"}


def write(path, text):
    path.write_text(text)
    return path


def test_file_names():
    assert parse_file_name("trips_2024-03-01.csv") == ("trips", dt.date(2024, 3, 1))
    assert parse_file_name("my_data_2024-03-01.csv") == ("my_data", dt.date(2024, 3, 1))
    assert parse_file_name("trips_2024-13-01.csv") is None
    assert parse_file_name("trips.csv") is None


def test_files_for_day_takes_every_file_of_that_day(tmp_path):
    for name in ("a_2024-03-01.csv", "b_2024-03-01.csv", "a_2024-03-02.csv", "a_2024-03-01.csv.tmp"):
        write(tmp_path / name, "x\n1\n")
    assert [p.name for p in files_for_day(tmp_path, dt.date(2024, 3, 1))] == ["a_2024-03-01.csv", "b_2024-03-01.csv"]


def test_types_and_missing_values(tmp_path):
    day = read_day([write(tmp_path / "d_2024-03-01.csv", "x,y,s\n1,2.5,a\n,3,\n4, 5e1 ,c\n")], COLUMNS, 0.5)
    assert day.table.schema.field("x").type == pa.int64()
    assert day.table.schema.field("y").type == pa.float32()
    assert day.table["x"].to_pylist() == [1, None, 4]
    assert day.table["y"].to_pylist() == [2.5, 3.0, 50.0]
    assert day.table["s"].to_pylist() == [b"a", None, b"c"]
    assert day.rejected == []


def test_rejects_bad_rows_with_file_line_and_reason(tmp_path):
    path = write(tmp_path / "d_2024-03-01.csv", "x,y,s\n1,2,a\n2,3\n3,oops,c\n4,5,d,extra\nfive,6,e\n7,8,f\n")
    day = read_day([path], COLUMNS, 0.9)
    assert day.table["x"].to_pylist() == [1, 7]
    got = sorted((r.line, r.reason) for r in day.rejected)
    assert got == [
        (3, "expected 3 fields, found 2"),
        (4, "y: cannot parse oops as FLOAT"),
        (5, "expected 3 fields, found 4"),
        (6, "x: cannot parse five as INT"),
    ]
    assert all(r.source_file == str(path) for r in day.rejected)
    assert day.total_rows == 6


def test_too_many_rejected_rows_fail_naming_file_and_lines(tmp_path):
    path = write(tmp_path / "d_2024-03-01.csv", "x,y,s\n1,2,a\nbad,3,b\n")
    day = read_day([path], COLUMNS, 0.05)
    with pytest.raises(
        SourceError, match=r"(?s)1 of 2 rows rejected .* limit 5.0%.*d_2024-03-01.csv:3: x: cannot parse bad"
    ):
        check_rejected_fraction(day, 0.05)
    check_rejected_fraction(day, 0.5)  # within the limit: no error


def test_header_without_expected_columns_names_path_and_columns(tmp_path):
    path = write(tmp_path / "d_2024-03-01.csv", "x,s\n1,a\n")
    with pytest.raises(SourceError, match=r"d_2024-03-01.csv: header lacks expected columns \['y'\]"):
        read_day([path], COLUMNS, 0.05)


def test_empty_file_and_header_only_file(tmp_path):
    with pytest.raises(SourceError, match="empty"):
        read_day([write(tmp_path / "e_2024-03-01.csv", "")], COLUMNS, 0.05)
    with pytest.raises(SourceError, match="header but no rows"):
        read_day([write(tmp_path / "h_2024-03-01.csv", "x,y,s\n")], COLUMNS, 0.05)
    with pytest.raises(SourceError, match="no input files"):
        read_day([], COLUMNS, 0.05)


def test_types_are_inferred_without_a_column_list(tmp_path):
    path = write(tmp_path / "d_2024-03-01.csv", "i,f,s,mostly\n1,1.5,a,1\n2,2,b,2\n3,,c,3\n4,4,d,x\n")
    day = read_day([path], {}, 0.3)
    assert day.column_types == {"i": "INT", "f": "FLOAT", "s": "STRING", "mostly": "INT"}
    assert [r.line for r in day.rejected] == [5]


def test_partition_feature_must_be_a_column(tmp_path):
    path = write(tmp_path / "d_2024-03-01.csv", "x,y,s\n1,2,a\n")
    with pytest.raises(SourceError, match="partition_feature 'user'"):
        read_day([path], COLUMNS, 0.05, partition_feature="user")
    assert read_day([path], COLUMNS, 0.05, partition_feature="s").raw_partition_values.to_pylist() == ["a"]
