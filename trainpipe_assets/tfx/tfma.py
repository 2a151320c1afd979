"""Stand-in for `tensorflow_model_analysis` as pipeline files use it: the EvalConfig protos
(tensorflow_model_analysis/proto/config.proto) and the `tfma.metrics` class names. They only record the configuration,
which mapping.py turns into trainpipe's evaluation settings."""

from __future__ import annotations

import types

from trainpipe_assets.tfx.protos import _MAP, _REPEATED, BoolValue, DoubleValue, Int32Value, message

UNKNOWN, LOWER_IS_BETTER, HIGHER_IS_BETTER = 0, 1, 2
MetricDirection = types.SimpleNamespace(
    UNKNOWN=UNKNOWN, LOWER_IS_BETTER=LOWER_IS_BETTER, HIGHER_IS_BETTER=HIGHER_IS_BETTER
)

ModelSpec = message("ModelSpec", {
    "name": "", "model_type": "", "signature_name": "", "preprocessing_function_names": _REPEATED, "label_key": "",
    "label_keys": _MAP, "prediction_key": "", "prediction_keys": _MAP, "example_weight_key": "",
    "example_weight_keys": _MAP, "is_baseline": False, "padding_options": None, "inference_batch_size": 0,
})
SlicingSpec = message("SlicingSpec", {"feature_keys": _REPEATED, "feature_values": _MAP, "slice_keys_sql": ""})
CrossSlicingSpec = message("CrossSlicingSpec", {"baseline_spec": SlicingSpec, "slicing_specs": [SlicingSpec]})
GenericChangeThreshold = message("GenericChangeThreshold", {"absolute": DoubleValue, "relative": DoubleValue,
                                                            "direction": UNKNOWN})
GenericValueThreshold = message("GenericValueThreshold", {"lower_bound": DoubleValue, "upper_bound": DoubleValue})
MetricThreshold = message("MetricThreshold", {"value_threshold": GenericValueThreshold,
                                              "change_threshold": GenericChangeThreshold})
PerSliceMetricThreshold = message("PerSliceMetricThreshold", {"slicing_specs": [SlicingSpec],
                                                              "threshold": MetricThreshold})
PerSliceMetricThresholds = message("PerSliceMetricThresholds", {"thresholds": [PerSliceMetricThreshold]})
CrossSliceMetricThreshold = message("CrossSliceMetricThreshold", {"cross_slicing_specs": [CrossSlicingSpec],
                                                                  "threshold": MetricThreshold})
MetricConfig = message("MetricConfig", {
    "class_name": "", "module": "", "config": "", "threshold": MetricThreshold,
    "per_slice_thresholds": [PerSliceMetricThreshold], "cross_slice_thresholds": [CrossSliceMetricThreshold],
})
MetricsSpec = message("MetricsSpec", {
    "metrics": [MetricConfig], "model_names": _REPEATED, "output_names": _REPEATED, "output_weights": _MAP,
    "binarize": None, "aggregate": None, "example_weights": None, "query_key": "", "thresholds": _MAP,
    "per_slice_thresholds": _MAP, "cross_slice_thresholds": _MAP,
})
Options = message("Options", {
    "include_default_metrics": BoolValue, "compute_confidence_intervals": BoolValue, "confidence_intervals": None,
    "min_slice_size": Int32Value, "disabled_outputs": None,
})
EvalConfig = message("EvalConfig", {
    "model_specs": [ModelSpec], "slicing_specs": [SlicingSpec], "cross_slicing_specs": [CrossSlicingSpec],
    "metrics_specs": [MetricsSpec], "options": Options,
})

config = types.SimpleNamespace(
    EvalConfig=EvalConfig, ModelSpec=ModelSpec, SlicingSpec=SlicingSpec, CrossSlicingSpec=CrossSlicingSpec,
    MetricsSpec=MetricsSpec, MetricConfig=MetricConfig, MetricThreshold=MetricThreshold,
    GenericValueThreshold=GenericValueThreshold, GenericChangeThreshold=GenericChangeThreshold,
    PerSliceMetricThreshold=PerSliceMetricThreshold, PerSliceMetricThresholds=PerSliceMetricThresholds,
    CrossSliceMetricThreshold=CrossSliceMetricThreshold, MetricDirection=MetricDirection, Options=Options,
)


class _Metric:
    """`tfma.metrics.ExampleCount(name=...)`, `tf.keras.metrics.*` in specs_from_metrics: a metric named by class."""

    def __init__(self, name: str | None = None, **kwargs):
        self.name = name
        self.kwargs = kwargs


def _metric_class(class_name: str) -> type:
    return type(class_name, (_Metric,), {})


METRIC_CLASSES = ("ExampleCount", "WeightedExampleCount", "CalibrationPlot", "ConfusionMatrixPlot", "MeanLabel",
                  "MeanPrediction", "Calibration", "AUC", "BinaryAccuracy", "Precision", "Recall")
metrics = types.SimpleNamespace(**{name: _metric_class(name) for name in METRIC_CLASSES})


def specs_from_metrics(metrics_list, **kwargs) -> list:
    """tfma.metrics.specs_from_metrics: one MetricsSpec whose MetricConfigs name the classes given."""
    configs = [MetricConfig(class_name=type(m).__name__) for m in metrics_list]
    return [MetricsSpec(metrics=configs)]


metrics.specs_from_metrics = specs_from_metrics
