"""Evaluation metrics on labels and model scores, overall and per slice (TFMA's common metrics, in numpy)."""

from __future__ import annotations

import numpy as np

EPSILON = 1e-7
MAX_SLICE_VALUES = 20
MISSING_SLICE = "(missing)"


def _binary_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve by the rank-sum formula, ties shared; None when one class is absent."""
    positives = labels == 1
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _precision_recall(
    labels: np.ndarray, predicted: np.ndarray, positive: int = 1
) -> tuple[float | None, float | None]:
    tp = int(((predicted == positive) & (labels == positive)).sum())
    predicted_pos, actual_pos = int((predicted == positive).sum()), int((labels == positive).sum())
    return (tp / predicted_pos if predicted_pos else None, tp / actual_pos if actual_pos else None)


def as_probabilities(scores: np.ndarray, output: str) -> tuple[np.ndarray, str]:
    """Scores as probabilities, and what was decided: `logits` get a sigmoid (one score per row) or a softmax (class
    scores); `auto` takes scores for logits when one is outside [0, 1] or class scores do not sum to 1."""
    scores = np.asarray(scores, dtype=float)
    binary = scores.ndim == 1 or (scores.ndim == 2 and scores.shape[1] == 1)
    if output == "auto":
        outside = bool(len(scores)) and (scores.min() < 0 or scores.max() > 1)
        unnormalised = not binary and bool(len(scores)) and not np.allclose(scores.sum(axis=1), 1, atol=1e-3)
        output = "logits" if outside or unnormalised else "probabilities"
        why = " (scores outside [0, 1])" if outside else " (class scores do not sum to 1)" if unnormalised else ""
        decided = f"{output}, decided by evaluation.output: auto{why}"
    else:
        decided = f"{output}, as evaluation.output says"
    if output == "logits":
        if binary:
            scores = 1 / (1 + np.exp(-scores))
        else:
            shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
            scores = shifted / shifted.sum(axis=1, keepdims=True)
    return scores, decided


def compute_metrics(labels: np.ndarray, scores: np.ndarray, names: list[str]) -> dict[str, float | None]:
    """Binary when scores are one probability per row, multi-class when they are one row of class scores."""
    labels = np.asarray(labels).astype(int).ravel()
    scores = np.asarray(scores, dtype=float)
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    out: dict[str, float | None] = {"example_count": float(len(labels))}
    if len(labels) == 0:
        return out | {n: None for n in names}
    if scores.ndim == 1:
        predicted = (scores >= 0.5).astype(int)
        p = np.clip(scores, EPSILON, 1 - EPSILON)
        loss = float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))
        auc = _binary_auc(labels, scores)
        precision, recall = _precision_recall(labels, predicted)
    else:
        predicted = scores.argmax(axis=1)
        probs = np.clip(scores / scores.sum(axis=1, keepdims=True), EPSILON, 1 - EPSILON)  # as Keras' crossentropy
        loss = float(-np.mean(np.log(probs[np.arange(len(labels)), labels])))
        classes = range(scores.shape[1])
        aucs = [a for a in (_binary_auc((labels == c).astype(int), scores[:, c]) for c in classes) if a is not None]
        auc = float(np.mean(aucs)) if aucs else None
        pairs = [_precision_recall(labels, predicted, c) for c in classes]
        precisions, recalls = [p for p, _ in pairs if p is not None], [r for _, r in pairs if r is not None]
        precision = float(np.mean(precisions)) if precisions else None
        recall = float(np.mean(recalls)) if recalls else None
    values = {
        "accuracy": float((predicted == labels).mean()),
        "auc": auc,
        "precision": precision,
        "recall": recall,
        "loss": loss,
    }
    return out | {n: values[n] for n in names}


def sliced_metrics(labels, scores, slice_values: dict[str, list], names: list[str]) -> dict[str, dict[str, dict]]:
    """{feature: {value: metrics}} for the most frequent values of each slice feature."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    result: dict[str, dict[str, dict]] = {}
    for feature, values in slice_values.items():
        keys = np.array([MISSING_SLICE if v is None else str(v) for v in values], dtype=object)
        uniques, counts = np.unique(keys, return_counts=True)
        top = uniques[np.argsort(-counts, kind="stable")][:MAX_SLICE_VALUES]
        result[feature] = {str(v): compute_metrics(labels[keys == v], scores[keys == v], names) for v in sorted(top)}
    return result
