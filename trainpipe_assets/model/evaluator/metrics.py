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


MAX_CURVE_POINTS = 201  # curve points kept in evaluation.json and drawn: a few KB per curve, whatever the eval set
CALIBRATION_BINS = 10


def _thin(*columns: np.ndarray, keep: int = MAX_CURVE_POINTS) -> list[list]:
    """At most `keep` evenly spaced points of aligned columns, the first and the last always kept."""
    n = len(columns[0])
    index = np.unique(np.linspace(0, n - 1, keep).round().astype(int)) if n > keep else np.arange(n)
    return [[None if not np.isfinite(v) else float(v) for v in np.asarray(c, dtype=float)[index]] for c in columns]


def _ranked_counts(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True and false positives when every score from the highest down to each distinct score is called positive."""
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_labels = scores[order], labels[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(sorted_scores) - 1]
    tps = np.cumsum(sorted_labels)[last_of_tie]
    return tps, (last_of_tie + 1) - tps, sorted_scores[last_of_tie]


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> dict | None:
    """ROC points from (0, 0) to (1, 1), one per distinct score (ties share a point); None when one class is absent.
    The trapezoids under it add up to `auc`. The first point's threshold is None (nothing is called positive)."""
    labels = (np.asarray(labels).ravel() == 1).astype(float)
    n_pos, n_neg = labels.sum(), len(labels) - labels.sum()
    if n_pos == 0 or n_neg == 0:
        return None
    tps, fps, thresholds = _ranked_counts(labels, np.asarray(scores, dtype=float).ravel())
    fpr, tpr, thr = _thin(np.r_[0, fps / n_neg], np.r_[0, tps / n_pos], np.r_[np.nan, thresholds])
    return {"fpr": fpr, "tpr": tpr, "thresholds": thr}


def pr_curve(labels: np.ndarray, scores: np.ndarray) -> dict | None:
    """Precision and recall at each distinct score, from the highest threshold down; None without positives."""
    labels = (np.asarray(labels).ravel() == 1).astype(float)
    n_pos = labels.sum()
    if n_pos == 0:
        return None
    tps, fps, thresholds = _ranked_counts(labels, np.asarray(scores, dtype=float).ravel())
    precision, recall, thr = _thin(tps / (tps + fps), tps / n_pos, thresholds)
    return {"precision": precision, "recall": recall, "thresholds": thr}


def calibration_bins(labels: np.ndarray, scores: np.ndarray, bins: int = CALIBRATION_BINS) -> list[dict]:
    """Equal-width score bins over [0, 1]: how many rows, their mean score and the fraction that is positive."""
    labels = (np.asarray(labels).ravel() == 1).astype(float)
    scores = np.asarray(scores, dtype=float).ravel()
    labels, scores = labels[np.isfinite(scores)], scores[np.isfinite(scores)]
    which = np.clip(np.floor(scores * bins), 0, bins - 1).astype(int)
    found = []
    for b in range(bins):
        rows = which == b
        n = int(rows.sum())
        found.append(
            {
                "lower": b / bins,
                "upper": (b + 1) / bins,
                "count": n,
                "mean_score": float(scores[rows].mean()) if n else None,
                "positive_rate": float(labels[rows].mean()) if n else None,
            }
        )
    return found


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int) -> list[list[int]]:
    """counts[actual][predicted]; a label outside 0..classes-1 is left out."""
    labels, predicted = np.asarray(labels, dtype=int), np.asarray(predicted, dtype=int)
    known = (labels >= 0) & (labels < classes)
    counts = np.zeros((classes, classes), dtype=int)
    np.add.at(counts, (labels[known], predicted[known]), 1)
    return counts.tolist()


def curves(labels, scores) -> dict:
    """What TFMA plots: ROC, precision-recall and calibration (micro-averaged one-vs-rest for class scores), and the
    confusion matrix at the prediction compute_metrics uses (score >= 0.5, or the highest class score)."""
    labels = np.asarray(labels).astype(int).ravel()
    scores = np.asarray(scores, dtype=float)
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.ndim == 1:
        predicted, classes = (scores >= 0.5).astype(int), 2
        flat_labels, flat_scores, averaging = (labels == 1).astype(int), scores, "binary"
    else:
        classes = max(scores.shape[1], int(labels.max(initial=0)) + 1)
        predicted = scores.argmax(axis=1) if len(scores) else np.zeros(0, dtype=int)
        flat_labels = (labels[:, None] == np.arange(scores.shape[1])[None, :]).astype(int).ravel()
        flat_scores, averaging = scores.ravel(), "micro-averaged one-vs-rest"
    return {
        "averaging": averaging,
        "roc": roc_curve(flat_labels, flat_scores),
        "pr": pr_curve(flat_labels, flat_scores),
        "calibration": calibration_bins(flat_labels, flat_scores),
        "confusion_matrix": confusion_matrix(flat_labels if averaging == "binary" else labels, predicted, classes),
    }
