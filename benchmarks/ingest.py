"""CSV -> gzipped tf.Example TFRecords: rows/s of the `examples` asset's code against a floor, in one process.

The floor is the least a hand-written converter does: pyarrow reads the CSV, every row becomes one tf.Example
serialized in Python, and a TFRecordWriter writes it. `examples` does more (validation, rejected rows, splits,
fingerprints) and should still run at >= 0.7 of the floor; 1M rows should take under 60 s on 2 cores.

    .venv/bin/python benchmarks/ingest.py --rows 1000000                # generated sample data
    .venv/bin/python benchmarks/ingest.py --rows 1000000 --source taxi   # ../shared chicago_taxi/data.csv repeated
"""

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pandas as pd
import pyarrow.csv as pcsv

from trainpipe_assets.core.io_managers.tfrecord import write_examples_dir
from trainpipe_assets.core.settings import DEFAULT_CONFIG_PATH, TrainpipeConfig
from trainpipe_assets.data.example_gen import build_split_records
from trainpipe_assets.data.sample_data import generate_day

TAXI = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "chicago_taxi" / "data.csv"
DAY = dt.date(2024, 3, 1)


def write_input(landing: Path, source: str, rows: int) -> Path:
    landing.mkdir(parents=True)
    path = landing / f"bench_{DAY}.csv"
    if source == "taxi":
        if not TAXI.is_file():
            sys.exit(f"{TAXI} not found: run from a checkout next to ../shared, or use --source generated")
        base = pd.read_csv(TAXI, dtype=str, keep_default_na=False)
        frame = pd.concat([base] * (rows // len(base) + 1), ignore_index=True).iloc[:rows]
    else:
        frame = pd.concat([generate_day(DAY, min(rows, 200_000), seed=s) for s in range(rows // 200_000 + 1)]).iloc[
            :rows
        ]
    frame.to_csv(path, index=False)
    return path


def floor(path: Path, out: Path) -> int:
    """pyarrow read + one Python tf.Example serialization per row + TFRecord write."""
    import tensorflow as tf

    table = pcsv.read_csv(path)
    kinds = {f.name: f.type for f in table.schema}
    n = 0
    with tf.io.TFRecordWriter(str(out), options="GZIP") as writer:
        for row in table.to_pylist():
            example = tf.train.Example()
            features = example.features.feature
            for name, value in row.items():
                if value is None:
                    continue
                kind = kinds[name]
                if str(kind).startswith("int"):
                    features[name].int64_list.value.append(value)
                elif str(kind) in ("double", "float"):
                    features[name].float_list.value.append(value)
                else:
                    features[name].bytes_list.value.append(str(value).encode())
            writer.write(example.SerializeToString())
            n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--source", choices=["generated", "taxi"], default="generated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        config = DEFAULT_CONFIG_PATH
        if args.source == "taxi":  # no column list: types are inferred, as for a user's own data
            config = home / "taxi.yaml"
            config.write_text("label_key: tips\ncolumns: {}\n")
        trainpipe = TrainpipeConfig(home=str(home), config_path=str(config))
        path = write_input(trainpipe.landing_dir, args.source, args.rows)
        print(f"input: {args.rows:,} rows, {path.stat().st_size / 1e6:.0f} MB ({args.source})")

        import tensorflow as tf  # imported before timing either side

        tf.constant(0)
        start = time.perf_counter()
        records, facts = build_split_records(trainpipe, DAY)
        artifact = write_examples_dir(home / "artifacts" / "examples" / str(DAY), str(DAY), records)
        ours = time.perf_counter() - start
        assert artifact.num_rows + facts["rejected"] == args.rows

        start = time.perf_counter()
        n = floor(path, home / "floor.gz")
        base = time.perf_counter() - start
        assert n == args.rows

    print(
        f"examples asset code: {ours:7.2f} s  {args.rows / ours:>10,.0f} rows/s  "
        f"(splits {artifact.row_counts}, rejected {facts['rejected']})"
    )
    print(f"floor (per-row):     {base:7.2f} s  {args.rows / base:>10,.0f} rows/s")
    print(f"ratio examples/floor: {base / ours:.2f}  (aim >= 0.7; 1M rows aim < 60 s)")


if __name__ == "__main__":
    main()
