"""TFX BulkInferrer's Beam pipeline: a day's examples scored by serving_default of a SavedModel, written as Parquet.

tfx_bsl's RunInference is not used: it loads the SavedModel into a TF1 session (tf.compat.v1.saved_model.loader),
and with TF 2.21 and the Keras 3 models trainpipe exports that fails at the first batch ("Could not find variable
dense_4/kernel"). Beam's own RunInference (apache_beam.ml.inference) runs `ServingDefaultHandler` instead, which
loads the SavedModel with tf.saved_model.load and calls serving_default on batches of serialized tf.Examples, the
call the Evaluator and TF Serving make.

The predictions are Parquet (`predictions/*.parquet`: split, index = position in the split's files, one column per
output), not TFX's PredictionLog TFRecords: Beam's RunInference gives plain arrays, and a PredictionLog proto built
and written per example in Python (~14 us to build; scoring takes ~3 us) cut the throughput to less than half when
measured here (7k against 18k rows/s on 60k rows).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from trainpipe_assets.core.example_reader import iter_record_batches

SIGNATURE = "serving_default"
CHUNK_ROWS = 4096  # examples per Beam element and per serving_default call (1024 was ~10% slower end to end)
PREVIEW_ROWS = 10
ROWS_COUNTER = "predicted_rows_"


class SignatureError(ValueError):
    """The SavedModel has no usable serving_default, or no output named by batch_inference.prediction_key."""


@dataclass(frozen=True)
class OutputSpec:
    name: str
    dtype: np.dtype
    scalar: bool  # one value per example ([batch] or [batch, 1]); otherwise a list per example


def serving_signature(model_dir: Path, prediction_key: Optional[str] = None) -> tuple[str, list[OutputSpec]]:
    """serving_default's input name and its outputs (or only `prediction_key`), read from saved_model.pb without
    loading the model, so a bad model or setting fails before the pipeline starts."""
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    pb = model_dir / "saved_model.pb"
    saved = saved_model_pb2.SavedModel.FromString(pb.read_bytes())
    signatures = {
        name: sig
        for graph in saved.meta_graphs
        if "serve" in graph.meta_info_def.tags
        for name, sig in graph.signature_def.items()
    }
    if SIGNATURE not in signatures:
        raise SignatureError(f"{pb} has no {SIGNATURE} signature (has {sorted(signatures)})")
    sig = signatures[SIGNATURE]
    if len(sig.inputs) != 1 or next(iter(sig.inputs.values())).dtype != tf.string.as_datatype_enum:
        raise SignatureError(
            f"{SIGNATURE} of {pb} must take one string tensor of serialized tf.Examples, takes {dict(sig.inputs)}"
        )
    names = sorted(sig.outputs)
    if prediction_key is not None and prediction_key not in sig.outputs:
        raise SignatureError(
            f"batch_inference.prediction_key {prediction_key!r} is not an output of {SIGNATURE} in {pb} "
            f"(outputs: {names})"
        )
    specs = []
    for name in [prediction_key] if prediction_key else names:
        info = sig.outputs[name]
        dims = [d.size for d in info.tensor_shape.dim[1:]]
        scalar = not info.tensor_shape.unknown_rank and all(d == 1 for d in dims)
        specs.append(OutputSpec(name, tf.dtypes.as_dtype(info.dtype).as_numpy_dtype, scalar))
    return next(iter(sig.inputs)), specs


@dataclass(frozen=True)
class Chunk:
    """Up to CHUNK_ROWS serialized examples of one split; the first one's position in the split's files is `start`."""

    split: str
    start: int
    records: list[bytes]


def read_chunks(split_patterns: tuple[str, list[str]]) -> Iterator[Chunk]:
    """The split's gzipped TFRecord files in name order, in chunks; an example's key is its split and position."""
    split, patterns = split_patterns
    start = 0
    for chunk in iter_record_batches(patterns, batch=CHUNK_ROWS):
        yield Chunk(split, start, chunk)
        start += len(chunk)


def _model_handler(model_dir: str, input_name: str, output_names: list[str]):
    from apache_beam.ml.inference.base import ModelHandler, PredictionResult

    class ServingDefaultHandler(ModelHandler):
        """serving_default of a TF2 SavedModel on chunks of serialized tf.Examples; each chunk is one call."""

        def load_model(self):
            import tensorflow as tf

            return tf.saved_model.load(model_dir)

        def run_inference(self, batch: Sequence[Chunk], model, inference_args=None):
            import tensorflow as tf

            signature = model.signatures[SIGNATURE]
            for chunk in batch:
                outputs = signature(**{input_name: tf.constant(chunk.records)})
                yield PredictionResult(chunk, {name: outputs[name].numpy() for name in output_names})

        def batch_elements_kwargs(self):
            return {"min_batch_size": 1, "max_batch_size": 1}  # elements are chunks already

        def get_num_bytes(self, batch: Sequence[Chunk]) -> int:
            return sum(len(r) for chunk in batch for r in chunk.records)

    return ServingDefaultHandler()


def arrow_schema(outputs: list[OutputSpec]):
    import pyarrow as pa

    fields = [pa.field("split", pa.string()), pa.field("index", pa.int64())]
    for spec in outputs:
        value_type = pa.binary() if spec.dtype == object else pa.from_numpy_dtype(spec.dtype)
        fields.append(pa.field(spec.name, value_type if spec.scalar else pa.list_(value_type)))
    return pa.schema(fields)


def predictions_table(result, schema):
    """A chunk's predictions as a Parquet-ready table: split, index, then one column per output."""
    import pyarrow as pa
    from apache_beam.metrics.metric import Metrics

    chunk, outputs = result.example, result.inference
    n = len(chunk.records)
    columns = [
        pa.array([chunk.split] * n, pa.string()),
        pa.array(np.arange(chunk.start, chunk.start + n, dtype=np.int64)),
    ]
    for field in list(schema)[2:]:
        values = outputs[field.name].reshape(n, -1)
        if pa.types.is_list(field.type):
            offsets = np.arange(0, values.size + 1, values.shape[1], dtype=np.int32)
            columns.append(pa.ListArray.from_arrays(offsets, pa.array(values.ravel(), field.type.value_type)))
        else:
            columns.append(pa.array(values[:, 0], field.type))
    Metrics.counter("trainpipe", ROWS_COUNTER + chunk.split).inc(n)
    return pa.Table.from_arrays(columns, schema=schema)


def run_batch_inference(
    model_dir: Path,
    file_patterns: dict[str, list[str]],
    output_dir: Path,
    beam_pipeline_args: list[str],
    prediction_key: Optional[str] = None,
) -> tuple[dict[str, int], list[str]]:
    """Score every split's files (glob patterns) with serving_default of `model_dir` on Beam into
    output_dir/predictions/*.parquet.
    Returns the rows predicted per split and the output names kept."""
    import apache_beam as beam
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.ml.inference.base import RunInference
    from apache_beam.options.pipeline_options import PipelineOptions

    input_name, outputs = serving_signature(model_dir, prediction_key)
    schema = arrow_schema(outputs)
    pipeline = beam.Pipeline(options=PipelineOptions(beam_pipeline_args))
    _ = (
        pipeline
        | "Splits"
        >> beam.Create(sorted(file_patterns.items()), reshuffle=False)  # one element per split: a stage saved
        | "ReadChunks" >> beam.FlatMap(read_chunks)
        | "RunInference" >> RunInference(_model_handler(str(model_dir), input_name, [o.name for o in outputs]))
        | "Tables" >> beam.Map(predictions_table, schema=schema)
        | "WriteParquet"
        >> beam.io.WriteToParquetBatched(
            str(output_dir / "predictions" / "predictions"), schema=schema, file_name_suffix=".parquet"
        )
    )
    result = pipeline.run()
    result.wait_until_finish()
    counters = result.metrics().query(MetricsFilter().with_namespace("trainpipe"))["counters"]
    counts = {
        c.key.metric.name[len(ROWS_COUNTER) :]: int(c.committed)
        for c in counters
        if c.key.metric.name.startswith(ROWS_COUNTER)
    }
    return {split: counts.get(split, 0) for split in file_patterns}, [o.name for o in outputs]


def preview_markdown(table, rows: int = PREVIEW_ROWS) -> str:
    head = table.slice(0, rows).to_pylist()
    if not head:
        return "(no predictions)"

    def fmt(v) -> str:
        return f"{v:.4f}" if isinstance(v, float) else (", ".join(map(fmt, v)) if isinstance(v, list) else str(v))

    names = list(head[0])
    return "\n".join(
        [f"| {' | '.join(names)} |", "|" + "---|" * len(names)]
        + [f"| {' | '.join(fmt(r[n]) for n in names)} |" for r in head]
    )
