"""batch_predictions' Beam path against serving_default called in memory, on the same examples in the same process.

    .venv/bin/python benchmarks/batch_inference.py [--home /tmp/bi-bench] [--copies 50] [--repeats 3]

The model is the one `trainpipe demo` pushed under --home (run first when there is none). The sample data is used,
not ../shared/datasets/chicago_taxi: the demo's model is trained on the sample data's columns. One day's examples
(every split) are copied --copies times into a scratch folder in TFX's layout (~100k rows at the default).

Printed, best of --repeats after one warm-up run of each (imports, tracing):
  beam        run_batch_inference: reads the files, loads the SavedModel, scores on Beam, writes Parquet
  end-to-end  read the files + tf.saved_model.load + serving_default in batches of 1024 (nothing written)
  in-memory   serving_default in batches of 1024 on records already in memory, the model already loaded
and the ratios beam / baseline (aim: >= 0.5).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from trainpipe_assets.core.serving_layout import serving_version
from trainpipe_assets.core.settings import DEFAULT_CONFIG_PATH, TrainpipeConfig
from trainpipe_assets.data.feature_stats import read_records
from trainpipe_assets.deploy.bulk_inferrer import run_batch_inference

BATCH = 1024
ROOT = Path(__file__).resolve().parents[1]


def ensure_model(home: Path) -> tuple[Path, Path]:
    trainpipe = TrainpipeConfig(home=str(home), config_path=str(DEFAULT_CONFIG_PATH))
    if serving_version(trainpipe.serving_dir) is None:
        print(f"no model under {trainpipe.serving_dir}: running trainpipe demo (a few minutes)", flush=True)
        env = {**os.environ, "TRAINPIPE_HOME": str(home)}
        env.pop("TRAINPIPE_CONFIG", None)
        subprocess.run(
            [str(ROOT / ".venv/bin/trainpipe"), "demo", "--days", "3", "--rows-per-day", "2000"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    model_dir = trainpipe.serving_dir / str(serving_version(trainpipe.serving_dir))
    days = sorted(p for p in (home / "artifacts" / "examples").iterdir() if not p.name.startswith("."))
    return model_dir, days[-1]


def write_copies(day_dir: Path, copies: int, out: Path) -> dict[str, list[str]]:
    """Every split of the day repeated `copies` times, one gzipped TFRecord file per split."""
    import tensorflow as tf

    patterns = {}
    for split_dir in sorted(day_dir.glob("Split-*")):
        records = read_records([str(split_dir / "*.gz")])
        target = out / split_dir.name
        target.mkdir(parents=True)
        with tf.io.TFRecordWriter(str(target / "data-00000-of-00001.gz"), options="GZIP") as writer:
            for _ in range(copies):
                for record in records:
                    writer.write(record)
        patterns[split_dir.name[len("Split-") :]] = [str(target / "*.gz")]
    return patterns


def in_memory(signature, input_name: str, records: list[bytes]) -> np.ndarray:
    import tensorflow as tf

    outputs = [
        signature(**{input_name: tf.constant(records[i : i + BATCH])})["outputs"].numpy()
        for i in range(0, len(records), BATCH)
    ]
    return np.concatenate(outputs).ravel()


def read_fast(patterns: dict[str, list[str]]) -> list[bytes]:
    """The same reader as the Beam path (feature_stats.read_records, tf.data one record at a time, is ~10x slower)."""
    import tensorflow as tf

    files = [f for s in sorted(patterns) for p in patterns[s] for f in sorted(tf.io.gfile.glob(p))]
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    return [r for f in files for r in tf.compat.v1.io.tf_record_iterator(f, options=options)]


def end_to_end(model_dir: Path, patterns: dict[str, list[str]]) -> np.ndarray:
    import tensorflow as tf

    records = read_fast(patterns)
    signature = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    return in_memory(signature, next(iter(signature.structured_input_signature[1])), records)


def best(label: str, rows: int, repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    print(
        f"  {label:<11} {rows / min(times):>10,.0f} rows/s   "
        f"best {min(times):.3f} s of {', '.join(f'{t:.3f}' for t in times)}"
    )
    return rows / min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=Path("/tmp/bi-bench"))
    parser.add_argument("--copies", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import tensorflow as tf

    model_dir, day_dir = ensure_model(args.home.resolve())
    beam_args = TrainpipeConfig(home=str(args.home), config_path=str(DEFAULT_CONFIG_PATH)).settings.beam_pipeline_args
    scratch = Path(tempfile.mkdtemp(prefix="bi-bench-"))
    patterns = write_copies(day_dir, args.copies, scratch / "examples")
    records = read_fast(patterns)
    rows = len(records)
    print(
        f"model {model_dir}; {rows:,} rows ({day_dir.name} x {args.copies}); beam args {beam_args}; "
        f"{os.cpu_count()} cores"
    )

    runs = iter(range(1_000_000))

    def beam_run():
        return run_batch_inference(model_dir, patterns, scratch / f"out-{next(runs)}", beam_args)

    beam_run()  # warm-up: imports and tracing, for both paths
    signature = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    input_name = next(iter(signature.structured_input_signature[1]))
    expected = in_memory(signature, input_name, records)

    beam = best("beam", rows, args.repeats, beam_run)
    e2e = best("end-to-end", rows, args.repeats, lambda: end_to_end(model_dir, patterns))
    memory = best("in-memory", rows, args.repeats, lambda: in_memory(signature, input_name, records))
    print(f"  ratio beam / end-to-end: {beam / e2e:.2f}   beam / in-memory: {beam / memory:.2f}")

    import pyarrow.parquet as pq

    table = pq.read_table(scratch / "out-0" / "predictions").sort_by([("split", "ascending"), ("index", "ascending")])
    diff = float(np.abs(table["outputs"].to_numpy() - expected).max())
    print(f"  predictions agree with in-memory scoring: max |difference| {diff:.2e}")
    return 0 if diff < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
