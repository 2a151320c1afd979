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


def reasons(day):
    return [(r.line, r.reason) for r in day.rejected]


def test_non_finite_floats_are_rejected_in_every_spelling(tmp_path):
    spellings = ["nan", "NaN", "inf", "-inf", "Inf", "NAN", "Infinity", "-Infinity", "INF", "+nan", " infinity "]
    rows = [f"{i},{v},s{i}" for i, v in enumerate(spellings)] + ["nan,1.5,int", "20,2.5,ok"]
    day = read_day([write(tmp_path / "d_2024-03-01.csv", "x,y,s\n" + "\n".join(rows) + "\n")], COLUMNS, 0.99)
    assert day.table["y"].to_pylist() == [2.5]
    assert reasons(day) == [
        *((i + 2, f"y: non-finite value '{v.strip()}' (FLOAT)") for i, v in enumerate(spellings)),
        (len(spellings) + 2, "x: cannot parse nan as INT"),  # ints are unaffected
    ]
    assert day.non_finite == {"y": len(spellings)}


def test_inference_takes_non_finite_values_for_floats_and_rejects_them(tmp_path):
    path = write(tmp_path / "d_2024-03-01.csv", "n\n" + "".join(f"{i}\n" for i in range(10)) + "NaN\nINFINITY\n")
    day = read_day([path], {}, 0.2)
    assert day.column_types == {"n": "FLOAT"}
    assert reasons(day) == [(12, "n: non-finite value 'NaN' (FLOAT)"), (13, "n: non-finite value 'INFINITY' (FLOAT)")]
    assert day.table["n"].to_pylist() == [float(i) for i in range(10)]


def test_a_utf8_bom_is_not_part_of_the_first_column_name(tmp_path):
    path = tmp_path / "d_2024-03-01.csv"
    path.write_bytes(b"\xef\xbb\xbfx,y,s\n1,2,a\n")
    assert read_day([path], COLUMNS, 0.05).table["x"].to_pylist() == [1]


def test_rows_that_are_not_utf8_are_rejected_naming_the_column(tmp_path):
    path = tmp_path / "d_2024-03-01.csv"
    good = "".join(f"{i},{i}.5,row{i}\n" for i in range(300)).encode()  # the bad bytes are far from the header
    path.write_bytes(b"x,y,s\n" + good + b"7,8,caf\xe9\n9,1\xe9,b\n10,11,\xe9,extra\n12,13,ok\n")
    day = read_day([path], COLUMNS, 0.05)
    assert reasons(day) == [(302, "s: invalid UTF-8"), (303, "y: invalid UTF-8"), (304, "invalid UTF-8")]
    assert day.rejected[0].text == "7,8,caf\\xe9"
    assert day.table.num_rows == 301 and day.table["s"].to_pylist()[-1] == b"ok"


def test_numbers_out_of_range_reject_their_row(tmp_path):
    text = "x,y,s\n99999999999999999999,1,a\n-9223372036854775808,2,b\n+3,3,c\n4,1e39,d\n"
    day = read_day([write(tmp_path / "d_2024-03-01.csv", text)], COLUMNS, 0.9)
    assert reasons(day) == [
        (2, "x: value '99999999999999999999' out of range (INT)"),
        (5, "y: value '1e39' out of range (FLOAT)"),  # finite as text, infinite as a float32
    ]
    assert day.table["x"].to_pylist() == [-(2**63), 3]


def test_a_duplicate_column_name_is_an_error_naming_file_and_column(tmp_path):
    path = write(tmp_path / "d_2024-03-01.csv", "x,y,s,y\n1,2,a,3\n")
    with pytest.raises(SourceError, match=r"d_2024-03-01.csv:1: column 'y' appears more than once in the header"):
        read_day([path], COLUMNS, 0.05)


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_rejected_rows_carry_the_physical_line_they_start_on(tmp_path, eol):
    rows = ['1,2,"two\nlines"', "bad,1,a", "", '3,4,"""quoted""\n\nand three lines"', "4,5", '5,oops,"x\ny"', "6,7,z"]
    day = read_day([write(tmp_path / "d_2024-03-01.csv", eol.join(["x,y,s", *rows]) + eol)], COLUMNS, 0.9)
    assert reasons(day) == [
        (4, "x: cannot parse bad as INT"),
        (9, "expected 3 fields, found 2"),
        (10, "y: cannot parse oops as FLOAT"),
    ]
    assert day.table["s"].to_pylist() == [b"two\nlines", b'"quoted"\n\nand three lines', b"z"]


def test_physical_lines_with_stray_quotes_in_unquoted_fields(tmp_path):
    text = 'x,y,s\n1,2,5\'11"\n2,3,"a\nb"\nbad,4,he said "hi"\n5,6,c\n7,no,d\n'
    day = read_day([write(tmp_path / "d_2024-03-01.csv", text)], COLUMNS, 0.9)
    assert reasons(day) == [(5, "x: cannot parse bad as INT"), (7, "y: cannot parse no as FLOAT")]


def test_text_from_the_data_is_previewed_in_errors_but_kept_in_rejected_rows(tmp_path):
    huge = "9" * 100 + "x" * 1_000_000
    path = write(tmp_path / "d_2024-03-01.csv", f"x,y,s\n1,{huge},a\n2,{huge},b\n3,3,c\n")
    day = read_day([path], COLUMNS, 0.9)
    assert all(len(r.reason) < 300 and r.reason.endswith(" as FLOAT") and "…" in r.reason for r in day.rejected)
    assert day.rejected[0].text == f"1,{huge},a"  # rejected.csv keeps the whole row
    with pytest.raises(SourceError) as error:
        check_rejected_fraction(day, 0.05)
    assert len(str(error.value)) < 2000 and "d_2024-03-01.csv:2: y: cannot parse 999" in str(error.value)
    wide = write(tmp_path / "w_2024-03-01.csv", f"x,{'h' * 1_000_000}\n1,2\n")
    with pytest.raises(SourceError, match="header lacks expected columns") as error:
        read_day([wide], COLUMNS, 0.05)
    assert len(str(error.value)) < 2000


def test_hostile_files_fail_in_linear_time_naming_file_line_and_limit(tmp_path):
    """A 10 MB single line (once 393 s of a quadratic duplicate check) fails at once naming the row limit; a header
    of 80k names fails naming the column limit; a duplicate at the end of a wide header is found by a set."""
    from trainpipe_assets.data.sources.csv_source import MAX_COLUMNS, MAX_RECORD_BYTES

    one_line = tmp_path / "wide_2024-03-01.csv"
    one_line.write_bytes(b",".join(b"c%d" % i for i in range(1_500_000))[: 10 * 1024 * 1024] + b"\n1\n")
    with pytest.raises(SourceError, match=rf"wide_2024-03-01.csv:1: a record of \d+ bytes .* {MAX_RECORD_BYTES}"):
        read_day([one_line], {}, 0.05)
    rows = tmp_path / "rows_2024-03-01.csv"
    rows.write_bytes(b"x,s\n1,a\n2," + b"b" * (MAX_RECORD_BYTES + 10) + b"\n")
    with pytest.raises(SourceError, match=r"rows_2024-03-01.csv:3: a record of"):
        read_day([rows], {}, 0.05)
    names = tmp_path / "names_2024-03-01.csv"
    names.write_bytes(b",".join(b"c%d" % i for i in range(80_000)) + b"\n" + b"1," * 79_999 + b"1\n")
    with pytest.raises(SourceError, match=rf"names_2024-03-01.csv:1: the header has 80000 columns, .* {MAX_COLUMNS}"):
        read_day([names], {}, 0.05)
    duplicate = tmp_path / "dup_2024-03-01.csv"
    duplicate.write_bytes(b",".join(b"c%d" % i for i in range(9_000)) + b",c5\n" + b"1," * 9_000 + b"1\n")
    with pytest.raises(SourceError, match=r"dup_2024-03-01.csv:1: column 'c5' appears more than once"):
        read_day([duplicate], {}, 0.05)
