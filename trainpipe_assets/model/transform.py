"""`transform_graph` (TFX Transform): the module's preprocessing_fn analyzed on the window's train split with
tf.Transform on Beam, and every split transformed, in TFX's layout."""

import shutil
import time
from pathlib import Path

from dagster import AssetExecutionContext, MetadataValue, Output

from trainpipe_assets.core.artifacts import Examples, Schema, TransformGraph, split_dir
from trainpipe_assets.core.cache import function_fingerprint
from trainpipe_assets.core.faults import kill_point
from trainpipe_assets.core.partitions import pipeline_asset
from trainpipe_assets.core.retry import TRANSIENT_RETRY
from trainpipe_assets.core.settings import TrainpipeConfig
from trainpipe_assets.core.step import Step
from trainpipe_assets.module.loader import module_function

CODE_VERSION = "transform-v1"
TRANSFORMED_PREFIX = "transformed_examples"
ROWS_COUNTER = "transformed_rows_"


def run_transform(
    preprocessing_fn, schema, examples: Examples, output_dir: Path, beam_pipeline_args: list[str]
) -> dict[str, int]:
    """Analyze the train split, transform every split; returns transformed row counts per split."""
    import apache_beam as beam
    import tensorflow_transform.beam as tft_beam
    from apache_beam.metrics.metric import Metrics, MetricsFilter
    from apache_beam.options.pipeline_options import PipelineOptions
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io
    from tfx_bsl.coders import example_coder
    from tfx_bsl.public import tfxio

    temp_dir = output_dir / ".beam-tmp"

    def source(split: str):
        return tfxio.TFExampleRecord(
            file_pattern=examples.file_patterns[split], schema=schema, telemetry_descriptors=["trainpipe"]
        )

    def encode(batch_and_passthrough, split: str):
        records = example_coder.RecordBatchToExamples(batch_and_passthrough[0])
        Metrics.counter("trainpipe", ROWS_COUNTER + split).inc(len(records))
        return records

    pipeline = beam.Pipeline(options=PipelineOptions(beam_pipeline_args))
    with tft_beam.Context(temp_dir=str(temp_dir)):
        train = source("train")
        transform_fn = (
            pipeline | "ReadTrain" >> train.BeamSource(),
            train.TensorAdapterConfig(),
        ) | "Analyze" >> tft_beam.AnalyzeDataset(preprocessing_fn)
        _ = transform_fn | "WriteTransformFn" >> tft_beam.WriteTransformFn(str(output_dir))
        for split in examples.splits:
            io = source(split)
            transformed, _metadata = (
                (pipeline | f"Read[{split}]" >> io.BeamSource(), io.TensorAdapterConfig()),
                transform_fn,
            ) | f"Transform[{split}]" >> tft_beam.TransformDataset(output_record_batches=True)
            _ = (
                transformed
                | f"Encode[{split}]" >> beam.FlatMap(encode, split=split)
                | f"Write[{split}]"
                >> beam.io.WriteToTFRecord(
                    str(split_dir(output_dir, split) / TRANSFORMED_PREFIX), file_name_suffix=".gz"
                )
            )
        result = pipeline.run()
        result.wait_until_finish()
    # TFX also keeps the raw schema beside the graph: TFTransformOutput.raw_feature_spec() reads it.
    metadata_io.write_metadata(dataset_metadata.DatasetMetadata(schema), str(output_dir / "metadata"))
    shutil.rmtree(temp_dir, ignore_errors=True)
    counters = result.metrics().query(MetricsFilter().with_namespace("trainpipe"))["counters"]
    counts = {c.key.metric.name[len(ROWS_COUNTER) :]: c.committed for c in counters}
    return {split: int(counts.get(split, 0)) for split in examples.splits}


@pipeline_asset(
    windowed=("examples",),
    io_manager_key="artifact_io_manager",
    kinds={"tensorflow", "beam"},
    group_name="training",
    pool="beam",
    retry_policy=TRANSIENT_RETRY,
    code_version=CODE_VERSION,
)
def transform_graph(
    context: AssetExecutionContext, trainpipe: TrainpipeConfig, examples: Examples, schema: Schema
) -> Output[TransformGraph]:
    """TFX Transform: transform_fn/ and transformed_metadata/ from the window's train split, plus transformed
    Split-*/."""
    settings = trainpipe.settings
    preprocessing_fn = module_function(trainpipe, "preprocessing_fn", settings.custom_config)
    step = Step(context, trainpipe, CODE_VERSION)
    examples = step.validated(examples)
    fingerprints = (
        function_fingerprint(preprocessing_fn),
        settings.custom_config,
        schema.cache_key,
        examples.fingerprints,
    )
    if reused := step.reuse(*fingerprints):
        return reused
    started = time.perf_counter()
    counts = run_transform(preprocessing_fn, schema.load(), examples, step.staging, settings.beam_pipeline_args)
    user_seconds = time.perf_counter() - started
    kill_point("transform")
    artifact = TransformGraph(
        **step.fields(),
        analyzed_partitions=examples.partitions,
        transformed_row_counts=counts,
        example_fingerprints=examples.fingerprints,
    )
    output_features = sorted(artifact.tft_output().transformed_feature_spec())
    return step.output(
        artifact,
        {
            "window": MetadataValue.json(
                {"days_used": examples.partitions, "days_without_data": examples.missing_partitions}
            ),
            "analyzed_rows": examples.row_counts.get("train", 0),
            **{f"transformed_rows_{s}": n for s, n in counts.items()},
            "transformed_features": MetadataValue.json(output_features),
            "module_file": MetadataValue.path(str(trainpipe.module_file)),
            "user_code_seconds": user_seconds,
            "beam_pipeline_args": MetadataValue.json(settings.beam_pipeline_args),
        },
    )
