"""The Evaluator's EvalConfig (TFMA) -> trainpipe's `evaluation` settings: the label (raw, or the transformed one when
`preprocessing_function_names` is set), the slices, and each metric's value and change thresholds, with TFMA's metric
names mapped to the metrics trainpipe computes."""

from __future__ import annotations

from dataclasses import dataclass, field

# TFMA metric name (as TFMA writes it, or its class name) -> trainpipe's metric
METRICS = {
    "binary_accuracy": "accuracy", "BinaryAccuracy": "accuracy",
    "sparse_categorical_accuracy": "accuracy", "SparseCategoricalAccuracy": "accuracy",
    "categorical_accuracy": "accuracy", "CategoricalAccuracy": "accuracy",
    "accuracy": "accuracy", "Accuracy": "accuracy",
    "auc": "auc", "AUC": "auc",
    "precision": "precision", "Precision": "precision",
    "recall": "recall", "Recall": "recall",
    "loss": "loss", "binary_crossentropy": "loss", "BinaryCrossentropy": "loss",
    "sparse_categorical_crossentropy": "loss", "SparseCategoricalCrossentropy": "loss",
    "categorical_crossentropy": "loss", "CategoricalCrossentropy": "loss",
}
REPORTED_ANYWAY = {"example_count", "ExampleCount", "weighted_example_count", "WeightedExampleCount"}
ALL_METRICS = ["accuracy", "auc", "precision", "recall", "loss"]


@dataclass
class EvalMapping:
    evaluation: dict = field(default_factory=dict)
    label_key: str | None = None  # the raw label, when the EvalConfig names it
    transformed_label: str | None = None
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _value(wrapper):
    if wrapper is None:
        return None
    return getattr(wrapper, "value", wrapper)


def _threshold(name: str, threshold, out: EvalMapping) -> dict:
    """A TFMA MetricThreshold -> trainpipe's {lower_bound, upper_bound, change}."""
    found: dict = {}
    if threshold.HasField("value_threshold"):
        vt = threshold.value_threshold
        if vt.HasField("lower_bound"):
            found["lower_bound"] = float(_value(vt.lower_bound))
        if vt.HasField("upper_bound"):
            found["upper_bound"] = float(_value(vt.upper_bound))
    if threshold.HasField("change_threshold"):
        ct = threshold.change_threshold
        direction = {1: "lower_is_better", 2: "higher_is_better"}.get(int(ct.direction or 0))
        if direction is None:
            raise ValueError(f"EvalConfig: the change threshold of {name} has no direction (HIGHER_IS_BETTER or "
                             "LOWER_IS_BETTER), which TFMA requires")
        change = {"direction": direction}
        if ct.HasField("absolute"):
            change["absolute"] = float(_value(ct.absolute))
        if ct.HasField("relative"):
            change["relative"] = float(_value(ct.relative))
        found["change"] = change
    return found


def _merge(thresholds: dict, metric: str, new: dict, tfma_name: str, out: EvalMapping) -> None:
    if not new:
        return
    if metric in thresholds and thresholds[metric] != new:
        out.warnings.append(f"Evaluator: {tfma_name} and another metric both map to {metric}; the thresholds are "
                            "merged")
    thresholds[metric] = {**thresholds.get(metric, {}), **new}
    out.lines.append(f"  {tfma_name} threshold -> evaluation.thresholds.{metric}: {thresholds[metric]}")


def map_eval_config(eval_config, where: str) -> EvalMapping:
    out = EvalMapping()
    specs = [m for m in eval_config.model_specs if not m.is_baseline] or list(eval_config.model_specs)
    if specs:
        spec = specs[0]
        if spec.label_key:
            if spec.preprocessing_function_names:
                out.transformed_label = spec.label_key
                out.evaluation["label_key"] = spec.label_key
                out.lines.append(f"  label {spec.label_key} through {list(spec.preprocessing_function_names)} -> "
                                 f"evaluation.label_key: {spec.label_key} (the transform graph computes it)")
            else:
                out.label_key = spec.label_key
                out.lines.append(f"  label_key {spec.label_key} -> label_key")
        if spec.prediction_key:
            out.evaluation["prediction_key"] = spec.prediction_key
        if spec.signature_name and spec.signature_name != "serving_default":
            out.warnings.append(f"{where}: signature_name {spec.signature_name!r}: trainpipe evaluates through "
                                "serving_default")
    slices: list[str] = []
    for s in eval_config.slicing_specs:
        if s.feature_values or s.slice_keys_sql:
            out.warnings.append(f"{where}: slicing spec {s.to_dict()}: feature_values and slice_keys_sql are not "
                                f"supported; sliced by {list(s.feature_keys) or 'nothing'} instead")
        if len(s.feature_keys) > 1:
            out.warnings.append(f"{where}: the crossed slice {list(s.feature_keys)} is sliced by each feature alone")
        slices += [k for k in s.feature_keys if k not in slices]
    out.evaluation["slices"] = slices
    out.lines.append(f"  slicing specs -> evaluation.slices: {slices} (the overall slice is always computed)")
    if eval_config.cross_slicing_specs:
        out.warnings.append(f"{where}: cross_slicing_specs are not supported (ignored)")
    thresholds: dict = {}
    for metrics_spec in eval_config.metrics_specs:
        for name, threshold in metrics_spec.thresholds.items():
            _add(name, threshold, thresholds, out, where)
        if metrics_spec.per_slice_thresholds or metrics_spec.cross_slice_thresholds:
            out.warnings.append(f"{where}: per-slice and cross-slice thresholds are not supported (ignored): "
                                "trainpipe's thresholds apply to the overall slice")
        for config in metrics_spec.metrics:
            if config.per_slice_thresholds or config.cross_slice_thresholds:
                out.warnings.append(f"{where}: per-slice thresholds of {config.class_name} are not supported "
                                    "(ignored)")
            if config.HasField("threshold"):
                _add(config.class_name, config.threshold, thresholds, out, where)
            elif config.class_name not in METRICS and config.class_name not in REPORTED_ANYWAY:
                out.warnings.append(f"{where}: metric {config.class_name} is not computed by trainpipe (it computes "
                                    f"{', '.join(ALL_METRICS)})")
    out.evaluation["metrics"] = ALL_METRICS
    out.evaluation["thresholds"] = thresholds
    if not thresholds:
        out.lines.append("  no thresholds: every model is blessed (recorded as 'no thresholds')")
    return out


def _add(name: str, threshold, thresholds: dict, out: EvalMapping, where: str) -> None:
    metric = METRICS.get(name)
    if metric is None:
        if name in REPORTED_ANYWAY:
            out.warnings.append(f"{where}: the threshold on {name} is not applied (the evaluation reports the number "
                                "of eval examples as eval_examples, and warns below evaluation.min_eval_rows)")
            return
        known = ", ".join(sorted(k for k in METRICS if k.islower()))
        raise ValueError(f"{where}: a threshold on metric {name!r}, which trainpipe does not compute; it computes "
                         f"{', '.join(ALL_METRICS)} (TFMA names: {known})")
    _merge(thresholds, metric, _threshold(name, threshold, out), name, out)


def map_slicing_spec(feature_slicing_spec) -> list[str]:
    """The Evaluator's older feature_slicing_spec (evaluator_pb2.FeatureSlicingSpec)."""
    return [c for s in feature_slicing_spec.specs for c in s.column_for_slicing]
