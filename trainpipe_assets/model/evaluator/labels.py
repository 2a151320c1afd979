"""Labels the way the model saw them (TFMA's `preprocessing_function_names`): either the raw `label_key` column of the
eval examples, or, with `evaluation.label_key` naming a transformed feature, that feature computed by running the raw
examples through the window's transform graph. The models themselves are always scored on raw serialized examples."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pyarrow as pa

from trainpipe_assets.core.step import fail

BATCH = 1024


def _transformed(serialized: list[bytes], transform_graph_uri: str, key: str) -> np.ndarray:
    import tensorflow as tf
    import tensorflow_transform as tft

    output = tft.TFTransformOutput(transform_graph_uri)
    spec = output.transformed_feature_spec()
    if key not in spec:
        raise fail(
            f"evaluation.label_key {key!r} is not a feature preprocessing_fn outputs "
            f"(transformed features: {sorted(spec)}; graph {transform_graph_uri})"
        )
    raw_spec = output.raw_feature_spec()
    parts = []
    for start in range(0, len(serialized), BATCH):
        raw = tf.io.parse_example(tf.constant(serialized[start : start + BATCH]), raw_spec)
        value = output.transform_raw_features(raw, drop_unused_features=True)[key]
        if isinstance(value, tf.SparseTensor):
            value = tf.sparse.to_dense(value)
        parts.append(np.reshape(value.numpy(), (len(serialized[start : start + BATCH]), -1))[:, 0])
    labels = np.concatenate(parts) if parts else np.zeros(0)
    if labels.dtype == object:
        raise fail(f"evaluation.label_key {key!r} is a string feature: the label must be a number (a class index)")
    return labels


def eval_labels(
    serialized: list[bytes], decoded: pa.RecordBatch, settings, transform_graph_uri: Optional[str]
) -> tuple[np.ndarray, str]:
    """(labels, where they came from) for the eval examples."""
    key = settings.evaluation.label_key
    if key is not None and key != settings.label_key:
        if transform_graph_uri is None:
            raise fail(f"evaluation.label_key {key!r} needs the transform graph the model was trained with")
        return _transformed(serialized, transform_graph_uri, key), f"{key} (transformed, from {settings.label_key})"
    key = settings.label_key
    if key not in decoded.schema.names:
        raise fail(f"label_key {key!r} is not a feature of the eval examples")
    values = [v[0] if v else 0 for v in decoded.column(key).to_pylist()]
    if any(isinstance(v, bytes) for v in values):
        shown = sorted({v.decode(errors="replace") for v in values if isinstance(v, bytes)})[:5]
        raise fail(
            f"label_key {key!r} holds strings ({shown}), not class indices. The model was trained on what "
            f"preprocessing_fn made of it: set evaluation.label_key to that transformed feature (e.g. {key}_xf)"
        )
    return np.asarray(values), f"{key} (raw)"


def eval_set_warnings(labels: np.ndarray, scores: np.ndarray, min_rows: int) -> list[str]:
    """A small eval set or a missing class, said out loud: the metrics and any threshold on them are then weak."""
    warnings = []
    if len(labels) < min_rows:
        warnings.append(f"only {len(labels)} eval examples (evaluation.min_eval_rows: {min_rows}): metrics are noisy")
    classes = 2 if scores.ndim == 1 or scores.shape[1] == 1 else scores.shape[1]
    missing = sorted(set(range(classes)) - {int(v) for v in np.unique(labels)})
    if missing:
        warnings.append(f"class(es) {missing} missing from the eval labels: per-class metrics for them are undefined")
    return warnings
