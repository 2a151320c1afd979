import csv as csv_module
import datetime as dt
import hashlib
import math

import tensorflow as tf

from trainpipe_assets.data.example_gen import examples
from trainpipe_assets.data.sample_data import write_days
from trainpipe_assets_tests.helpers import failure_message, make_config, materialize, resources_for

DAY = "2024-03-01"


def materialize_examples(trainpipe, instance, day=DAY):
    return materialize(
        [examples], partition_key=day, resources=resources_for(trainpipe), instance=instance, raise_on_error=False
    )


def raw_records(path_glob):
    files = tf.io.gfile.glob(str(path_glob))
    return [r.numpy() for r in tf.data.TFRecordDataset(files, "GZIP")]


def parse(path_glob):
    return [tf.train.Example.FromString(r) for r in raw_records(path_glob)]


def test_a_day_becomes_split_tfrecords_of_tf_examples(home, instance):
    trainpipe = make_config(home)
    [csv] = write_days(trainpipe.landing_dir, 1, 300, end=dt.date.fromisoformat(DAY))
    result = materialize_examples(trainpipe, instance)
    assert result.success
    out = home / "artifacts" / "examples" / DAY
    train, eval_ = parse(out / "Split-train" / "*.gz"), parse(out / "Split-eval" / "*.gz")
    assert len(train) + len(eval_) == 300
    assert 0.55 < len(train) / 300 < 0.78
    feature = train[0].features.feature
    assert (
        feature["fare"].float_list.value
        and feature["payment_type"].bytes_list.value
        and feature["trip_seconds"].int64_list.value
    )
    metadata = result.asset_materializations_for_node("examples")[0].metadata
    assert metadata["rows"].value == 300 and metadata["rows_train"].value == len(train)
    assert metadata["rejected_rows"].value == 0
    assert metadata["source_fingerprint"].value == {str(csv): hashlib.sha256(csv.read_bytes()).hexdigest()}
    assert metadata["path"].value == str(out)


def test_the_split_of_a_row_does_not_change_between_runs(home, instance):
    trainpipe = make_config(home)
    write_days(trainpipe.landing_dir, 1, 120, end=dt.date.fromisoformat(DAY))
    materialize_examples(trainpipe, instance)

    def eval_rows():
        return [
            sorted((k, str(v)) for k, v in e.features.feature.items())
            for e in parse(home / "artifacts/examples" / DAY / "Split-eval/*.gz")
        ]

    first = eval_rows()
    materialize_examples(trainpipe, instance)
    assert first and first == eval_rows()


def test_bad_rows_go_to_rejected_csv_with_file_and_line(home, instance):
    trainpipe = make_config(home)
    [csv] = write_days(trainpipe.landing_dir, 1, 100, end=dt.date.fromisoformat(DAY))
    lines = csv.read_text().splitlines()
    lines[5] = "1,2,3"  # too few fields: line 6 of the file
    lines[9] = lines[9].replace(lines[9].split(",")[0], "noon", 1)  # trip_start_hour not an INT: line 10
    csv.write_text("\n".join(lines) + "\n")
    result = materialize_examples(trainpipe, instance)
    assert result.success
    assert result.asset_materializations_for_node("examples")[0].metadata["rejected_rows"].value == 2
    with open(home / "artifacts/examples" / DAY / "rejected.csv", newline="") as f:
        rejected = list(csv_module.DictReader(f))
    assert [(r["source_file"], r["line"], r["reason"]) for r in rejected] == [
        (str(csv), "6", "expected 8 fields, found 3"),
        (str(csv), "10", "trip_start_hour: cannot parse noon as INT"),
    ]
    assert rejected[0]["text"] == "1,2,3"


def test_too_many_bad_rows_fail_the_day_and_keep_the_rejects(home, instance):
    trainpipe = make_config(home)
    [csv] = write_days(trainpipe.landing_dir, 1, 40, end=dt.date.fromisoformat(DAY))
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(lines[:1] + ["x,y"] * 5 + lines[1:]) + "\n")
    result = materialize_examples(trainpipe, instance)
    assert not result.success
    message = failure_message(result)
    assert "5 of 45 rows rejected" in message and f"{csv}:2: expected 8 fields, found 2" in message
    assert not (home / "artifacts/examples" / DAY).exists()
    assert (home / "quarantine/examples" / f"{DAY}-rejected.csv").read_text().count("\n") == 6
    assert csv.exists()  # raw data is never touched


def test_a_missing_day_or_header_fails_naming_path_and_columns(home, instance):
    trainpipe = make_config(home)
    result = materialize_examples(trainpipe, instance)
    assert not result.success
    assert f"no input for {DAY}" in failure_message(result) and str(trainpipe.landing_dir) in failure_message(result)
    trainpipe.landing_dir.mkdir(parents=True)
    (trainpipe.landing_dir / f"trips_{DAY}.csv").write_text("fare,trip_miles\n1.0,2.0\n")
    message = failure_message(materialize_examples(trainpipe, instance))
    assert f"trips_{DAY}.csv: header lacks expected columns" in message and "'payment_type'" in message


def rejected_rows(home, day=DAY):
    with open(home / "artifacts/examples" / day / "rejected.csv", newline="") as f:
        return [(r["line"], r["reason"]) for r in csv_module.DictReader(f)]


def with_field(line: str, index: int, value: str) -> str:
    fields = line.split(",")
    fields[index] = value
    return ",".join(fields)


def test_non_finite_values_are_rejected_counted_and_never_encoded(home, instance):
    trainpipe = make_config(home)
    [csv] = write_days(trainpipe.landing_dir, 1, 100, end=dt.date.fromisoformat(DAY))
    lines = csv.read_text().splitlines()
    fare = lines[0].split(",").index("fare")
    for i, value in zip((3, 4, 5), ("NaN", "Infinity", "-inf")):
        lines[i] = with_field(lines[i], fare, value)
    csv.write_text("\n".join(lines) + "\n")
    result = materialize_examples(trainpipe, instance)
    assert result.success
    metadata = result.asset_materializations_for_node("examples")[0].metadata
    assert metadata["rejected_non_finite"].value == {"fare": 3} and metadata["rejected_rows"].value == 3
    assert rejected_rows(home) == [
        ("4", "fare: non-finite value 'NaN' (FLOAT)"),
        ("5", "fare: non-finite value 'Infinity' (FLOAT)"),
        ("6", "fare: non-finite value '-inf' (FLOAT)"),
    ]
    fares = [
        v
        for e in parse(home / "artifacts/examples" / DAY / "Split-*/*.gz")
        for v in e.features.feature["fare"].float_list.value
    ]
    assert len(fares) == 97 and all(math.isfinite(v) for v in fares)


def test_bom_latin1_huge_ints_and_quoted_newlines_reject_rows_at_their_physical_line(home, instance):
    trainpipe = make_config(home)
    [csv] = write_days(trainpipe.landing_dir, 1, 100, end=dt.date.fromisoformat(DAY))
    lines = csv.read_text().splitlines()
    header = lines[0].split(",")
    lines[10] = with_field(lines[10], header.index("company"), '"Two\nLine Cab"')  # lines 11-12 of the file
    lines[20] = with_field(lines[20], header.index("trip_start_hour"), "99999999999999999999")  # line 22
    lines[40] = "1,2,3"  # line 42
    data = "\n".join(lines).encode() + b"\n"
    data = data.replace(lines[30].encode(), with_field(lines[30], header.index("company"), "Caf\xe9").encode("latin-1"))
    csv.write_bytes(b"\xef\xbb\xbf" + data)
    result = materialize_examples(trainpipe, instance)
    assert result.success, failure_message(result)
    assert rejected_rows(home) == [
        ("22", "trip_start_hour: value '99999999999999999999' out of range (INT)"),
        ("32", "company: invalid UTF-8"),
        ("42", "expected 8 fields, found 3"),
    ]
    companies = {
        e.features.feature["company"].bytes_list.value[0]
        for e in parse(home / "artifacts/examples" / DAY / "Split-*/*.gz")
        if e.features.feature["company"].bytes_list.value
    }
    assert b"Two\nLine Cab" in companies


def test_huge_values_are_previewed_in_the_failure_but_kept_whole_in_the_rejects(home, instance):
    trainpipe = make_config(home)
    [csv] = write_days(trainpipe.landing_dir, 1, 40, end=dt.date.fromisoformat(DAY))
    lines = csv.read_text().splitlines()
    fare = lines[0].split(",").index("fare")
    huge = "1" + "x" * 1_000_000
    for i in range(1, 6):
        lines[i] = with_field(lines[i], fare, huge)
    csv.write_text("\n".join(lines) + "\n")
    result = materialize_examples(trainpipe, instance)
    assert not result.success
    message = failure_message(result)
    assert "5 of 40 rows rejected" in message and f"{csv}:2: fare: cannot parse 1xxx" in message
    assert len(message) < 5000
    rejects = (home / "quarantine/examples" / f"{DAY}-rejected.csv").read_text()
    assert rejects.count(huge) == 5  # the whole row, whose reason is short
    assert rejects.count("fare: cannot parse 1" + "x" * 199 + "… as FLOAT") == 5  # a 200-character preview
