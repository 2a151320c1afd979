"""The bare script benchmarks/pipeline.py measures the pipeline against: what a user writes without an orchestrator to
run the same TFX module file (tf.Transform on Beam, tuner_fn + tuner.search, run_fn) on the same CSV files.

    .venv/bin/python benchmarks/bare_pipeline.py --csv-dir DIR --module-file benchmarks/taxi_module.py --out DIR \
        [--train-steps 1000] [--eval-steps 20] [--trials 6] [--label big_tipper]

Steps, all in this one process (its imports counted by whoever times it):
1. read every `*.csv` under --csv-dir with pandas, types inferred (a column of whole numbers is INT, other numbers
   FLOAT, the rest BYTES; an empty cell is a missing value), rows split 2:1 into train/eval by a hash of the row's text
   (farmhash Fingerprint64, TFX ExampleGen's rule), encoded as tf.Examples with tfx_bsl's encoder;
2. the module's preprocessing_fn with tensorflow_transform.beam: AnalyzeAndTransformDataset on train,
   TransformDataset on eval (Beam's DirectRunner, in memory, as the pipeline's default beam_pipeline_args), the
   transformed splits written as gzipped TFRecords, transform_fn/ + transformed_metadata/ + the raw metadata/;
3. tuner_fn(FnArgs) -> tuner.search(**fit_kwargs) with train_steps * 0.2 steps per trial (the pipeline's
   tuning.steps_fraction) and custom_config {max_trials: --trials};
4. run_fn(FnArgs) with the best hyperparameters, train_steps and eval_steps, writing the SavedModel.
FnArgs and DataAccessor are the project's TFX contract objects (trainpipe_assets.module.api; `tfx` import paths served
by module.tfx_compat since TFX itself is not installed). With --accuracy, after the `work_done` timestamp: eval
accuracy of the SavedModel's serving_default on the raw eval rows.

The last line on stdout is JSON: phase seconds, `process_start` and `work_done` (time.time() when this script
started and when step 4 finished), `accuracy` (None without --accuracy).
"""

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

PROCESS_START = time.time()
os.environ.setdefault("TF_USE_LEGACY_KERAS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import apache_beam as beam  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_transform.beam as tft_beam  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils  # noqa: E402
from tfx_bsl.arrow import array_util  # noqa: E402
from tfx_bsl.coders import example_coder  # noqa: E402
from tfx_bsl.public import tfxio  # noqa: E402

from trainpipe_assets.module import tfx_compat  # noqa: E402
from trainpipe_assets.module.api import DEFAULT_DATA_ACCESSOR, FnArgs  # noqa: E402

SPLITS = {"train": 2, "eval": 1}
BEAM_ARGS = ["--direct_running_mode=in_memory"]
TUNER_STEPS_FRACTION = 0.2


def read_rows(csv_dir: Path) -> tuple[pa.Table, np.ndarray]:
    """Every CSV under csv_dir as one typed Arrow table, and each row's split (0 train, 1 eval)."""
    files = sorted(csv_dir.glob("*.csv"))
    text = pd.concat([pd.read_csv(f, dtype=str, keep_default_na=False) for f in files], ignore_index=True)
    columns = {}
    for name in text.columns:
        raw = text[name].replace("", None)
        number = pd.to_numeric(raw, errors="coerce")
        if raw.notna().sum() and number.notna().sum() == raw.notna().sum():
            whole = number.dropna().eq(number.dropna().round()).all()
            columns[name] = pa.array(number, type=pa.int64() if whole else pa.float32(), from_pandas=True)
        else:
            columns[name] = pa.array(raw, type=pa.string(), from_pandas=True).cast(pa.binary())
    keys = text.apply(lambda row: "\x1f".join(row.values), axis=1).to_numpy(dtype=object)
    buckets = tf.strings.to_hash_bucket_fast(tf.constant(keys, dtype=tf.string), sum(SPLITS.values())).numpy()
    return pa.table(columns), (buckets >= SPLITS["train"]).astype(int)


def schema_of(table: pa.Table):
    """FixedLen for columns present in every row, VarLen (sparse) for the others."""
    dtypes = {pa.int64(): tf.int64, pa.float32(): tf.float32, pa.binary(): tf.string}
    spec = {}
    for name in table.column_names:
        dtype = dtypes[table[name].type]
        complete = table[name].null_count == 0
        spec[name] = tf.io.FixedLenFeature([], dtype) if complete else tf.io.VarLenFeature(dtype)
    return schema_utils.schema_from_feature_spec(spec)


def encode(table: pa.Table) -> list[bytes]:
    lists = pa.table({n: array_util.ToSingletonListArray(table[n].combine_chunks()) for n in table.column_names})
    return [r for batch in lists.to_batches(max_chunksize=65536) for r in example_coder.RecordBatchToExamples(batch)]


def transform(preprocessing_fn, schema, records: dict[str, list[bytes]], out: Path) -> dict[str, str]:
    """Analyze train, transform train and eval; returns each split's file pattern."""
    patterns = {split: str(out / split / "transformed-*.gz") for split in records}
    with beam.Pipeline(options=PipelineOptions(BEAM_ARGS)) as pipeline:
        with tft_beam.Context(temp_dir=str(out / ".tmp")):

            def raw(split):
                io = tfxio.TFExampleBeamRecord(physical_format="tfexample", schema=schema)
                return (
                    pipeline
                    | f"Create[{split}]" >> beam.Create(records[split])
                    | f"Decode[{split}]" >> io.BeamSource(),
                    io.TensorAdapterConfig(),
                )

            def write(batches, split):
                _ = (
                    batches
                    | f"Encode[{split}]" >> beam.FlatMap(lambda b: example_coder.RecordBatchToExamples(b[0]))
                    | f"Write[{split}]"
                    >> beam.io.WriteToTFRecord(str(out / split / "transformed"), file_name_suffix=".gz")
                )

            (train, _), transform_fn = raw("train") | "AnalyzeAndTransform" >> tft_beam.AnalyzeAndTransformDataset(
                preprocessing_fn, output_record_batches=True
            )
            write(train, "train")
            evaluated, _ = (raw("eval"), transform_fn) | "Transform[eval]" >> tft_beam.TransformDataset(
                output_record_batches=True
            )
            write(evaluated, "eval")
            _ = transform_fn | "WriteTransformFn" >> tft_beam.WriteTransformFn(str(out))
    metadata_io.write_metadata(dataset_metadata.DatasetMetadata(schema), str(out / "metadata"))
    return patterns


def load_module(path: Path):
    tfx_compat.install()  # the module does `from tfx import v1 as tfx`; TFX has no wheels for this Python
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    spec.loader.exec_module(module)
    return module


def accuracy(serving_dir: Path, records: list[bytes], labels: np.ndarray) -> float:
    serve = tf.saved_model.load(str(serving_dir)).signatures["serving_default"]
    scores = np.concatenate(
        [
            serve(examples=tf.constant(records[i : i + 1024]))["outputs"].numpy().reshape(-1)
            for i in range(0, len(records), 1024)
        ]
    )
    return float(np.mean((scores > 0.5).astype(int) == labels))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--csv-dir", type=Path, required=True)
    parser.add_argument("--module-file", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--label", default="big_tipper")
    parser.add_argument("--train-steps", type=int, default=1000)
    parser.add_argument("--eval-steps", type=int, default=20)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--accuracy", action="store_true", help="also the eval accuracy, after work_done")
    args = parser.parse_args()
    phases = {"imports": time.time() - PROCESS_START}

    started = time.time()
    module = load_module(args.module_file)
    table, split = read_rows(args.csv_dir)
    schema = schema_of(table)
    records = np.array(encode(table), dtype=object)
    by_split = {"train": records[split == 0].tolist(), "eval": records[split == 1].tolist()}
    phases["read_split_encode"] = time.time() - started

    started = time.time()
    graph = args.out / "transform_graph"
    patterns = transform(module.preprocessing_fn, schema, by_split, graph)
    phases["transform"] = time.time() - started

    common = dict(
        train_files=[patterns["train"]],
        eval_files=[patterns["eval"]],
        eval_steps=args.eval_steps,
        transform_graph_path=str(graph),
        data_accessor=DEFAULT_DATA_ACCESSOR,
        custom_config={"max_trials": args.trials},
    )
    started = time.time()
    tuning = FnArgs(
        working_dir=str(args.out / "tuner"),
        train_steps=max(1, round(args.train_steps * TUNER_STEPS_FRACTION)),
        **common,
    )
    result = module.tuner_fn(tuning)
    result.tuner.search(**result.fit_kwargs)
    best = result.tuner.get_best_hyperparameters(1)[0]
    phases["tuning"] = time.time() - started

    started = time.time()
    serving = args.out / "model" / "serving_model_dir"
    module.run_fn(
        FnArgs(
            working_dir=str(args.out / "model"),
            train_steps=args.train_steps,
            serving_model_dir=str(serving),
            model_run_dir=str(args.out / "model" / "model_run"),
            hyperparameters=best.get_config(),
            **common,
        )
    )
    phases["training"] = time.time() - started
    work_done = time.time()

    labels = table.filter(pa.array(split == 1))[args.label].to_numpy(zero_copy_only=False) if args.accuracy else None
    print(
        json.dumps(
            {
                "phases": phases,
                "work_done": work_done,
                "process_start": PROCESS_START,
                "accuracy": accuracy(serving, by_split["eval"], labels) if args.accuracy else None,
                "best_hyperparameters": best.values,
                "rows": {s: len(r) for s, r in by_split.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
