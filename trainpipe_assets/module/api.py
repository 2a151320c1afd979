"""TFX's module-file contract: FnArgs, TunerFnResult and DataAccessor with TFX's names and fields.

A module written for TFX (`run_fn(fn_args)`, `tuner_fn(fn_args) -> TunerFnResult`) runs here unchanged; see
`tfx_compat.py` for the `tfx` import paths such modules use.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple, Optional


def tf_dataset_factory(file_pattern, dataset_options, schema=None):
    """TFX's DataAccessor.tf_dataset_factory: gzipped tf.Example files -> tf.data.Dataset of (features, label).

    `dataset_options` is tfx_bsl's `tfxio.TensorFlowDatasetOptions` (batch_size, label_key, num_epochs, shuffle...);
    `schema` is usually `TFTransformOutput.transformed_metadata.schema`.
    """
    from tfx_bsl.public import tfxio

    patterns = [file_pattern] if isinstance(file_pattern, str) else list(file_pattern)
    source = tfxio.TFExampleRecord(file_pattern=patterns, schema=schema, telemetry_descriptors=["trainpipe"])
    return source.TensorFlowDataset(dataset_options)


def record_batch_factory(file_pattern, record_batch_options=None, schema=None):
    """TFX's DataAccessor.record_batch_factory: the same files as Arrow RecordBatches."""
    from tfx_bsl.public import tfxio

    patterns = [file_pattern] if isinstance(file_pattern, str) else list(file_pattern)
    source = tfxio.TFExampleRecord(file_pattern=patterns, schema=schema, telemetry_descriptors=["trainpipe"])
    return source.RecordBatches(record_batch_options or tfxio.RecordBatchesOptions(batch_size=1024))


class DataAccessor(NamedTuple):
    tf_dataset_factory: Callable[..., Any]
    record_batch_factory: Optional[Callable[..., Any]] = None
    data_view_decode_fn: Optional[Callable[..., Any]] = None


DEFAULT_DATA_ACCESSOR = DataAccessor(tf_dataset_factory=tf_dataset_factory, record_batch_factory=record_batch_factory)


class TunerFnResult(NamedTuple):
    """What `tuner_fn` returns: a KerasTuner tuner and the kwargs for `tuner.search`."""

    tuner: Any
    fit_kwargs: dict


@dataclasses.dataclass
class FnArgs:
    """The arguments TFX passes to `run_fn` and `tuner_fn` (tfx.components.trainer.fn_args_utils.FnArgs)."""

    working_dir: Optional[str] = None
    train_files: list[str] = dataclasses.field(default_factory=list)
    eval_files: list[str] = dataclasses.field(default_factory=list)
    train_steps: Optional[int] = None
    eval_steps: Optional[int] = None
    schema_path: Optional[str] = None
    transform_graph_path: Optional[str] = None
    data_accessor: DataAccessor = DEFAULT_DATA_ACCESSOR
    serving_model_dir: Optional[str] = None
    eval_model_dir: Optional[str] = None
    model_run_dir: Optional[str] = None
    base_model: Optional[str] = None
    hyperparameters: Optional[dict] = None
    custom_config: Optional[dict] = None

    # TFX's older names for the same fields.
    @property
    def schema_file(self) -> Optional[str]:
        return self.schema_path

    @property
    def transform_output(self) -> Optional[str]:
        return self.transform_graph_path

    @property
    def output(self) -> Optional[str]:
        """Older tutorials' name for the serving directory."""
        return self.serving_model_dir


# The name TFX < 0.21 modules and many articles use.
TrainerFnArgs = FnArgs


def fn_args_for(trainpipe, transform_graph, schema, **fields) -> FnArgs:
    """TFX's FnArgs for the window: transformed train/eval files, schema, transform graph, steps, custom_config."""
    settings = trainpipe.settings
    files = transform_graph.transformed_examples.file_patterns
    return FnArgs(
        train_files=files["train"],
        eval_files=files["eval"],
        train_steps=settings.train_steps,
        eval_steps=settings.eval_steps,
        schema_path=str(schema.path),
        transform_graph_path=transform_graph.uri,
        custom_config=dict(settings.custom_config),
        **fields,
    )
