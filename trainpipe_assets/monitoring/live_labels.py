"""What the served model answered, per version: the distribution of its predictions, and, for captured requests whose
labels arrived later (serving.capture_labels: CSV or JSONL files of request_id, label and optionally index, the row's
position in a request of several rows), its live metrics (model/evaluator/metrics.py, as the Evaluator computes them).
Labels are taken as the model saw them: 0/1, or a class index."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Optional

import numpy as np

from trainpipe_assets.model.evaluator.metrics import as_probabilities, compute_metrics
from trainpipe_assets.monitoring.traffic_decode import Traffic

Key = tuple[str, int]
SCORE_BINS = 10  # the histogram of predicted scores: equal bins over [0, 1]


def _label(value) -> int:
    number = float(value)
    if not number.is_integer():
        raise ValueError(f"label {value!r} is not a class (0/1 or a class index)")
    return int(number)


def read_labels(folder: Optional[Path]) -> tuple[dict[Key, int], list[str]]:
    """{(request_id, index): label} from every *.csv and *.jsonl file in `folder`, and the lines that could not be
    read (file:line: why). A later file's label for the same key wins."""
    labels: dict[Key, int] = {}
    bad: list[str] = []
    if folder is None or not folder.is_dir():
        return labels, bad
    for path in sorted(folder.iterdir()):
        if path.suffix == ".csv":
            with path.open(newline="") as f:
                rows = [(n, r) for n, r in enumerate(csv.DictReader(f), 2)]
        elif path.suffix == ".jsonl":
            rows = []
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if line.strip():
                    try:
                        rows.append((n, json.loads(line)))
                    except ValueError as e:
                        bad.append(f"{path.name}:{n}: {e}")
        else:
            continue
        for n, row in rows:
            try:
                key = (str(row["request_id"]), int(row.get("index") or 0))
                labels[key] = _label(row["label"])
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                bad.append(f"{path.name}:{n}: {type(e).__name__}: {e}")
    return labels, bad


def _by_version(traffic: Traffic, rows: list[int]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = defaultdict(list)
    for i in rows:
        groups[traffic.versions[i]].append(i)
    return dict(sorted(groups.items()))


def _scores(traffic: Traffic, rows: list[int], output: str) -> Optional[np.ndarray]:
    """The rows' predictions as probabilities (one column per class, or one score), None if their widths differ."""
    widths = {len(traffic.predictions[i]) for i in rows}
    if len(widths) != 1:
        return None
    raw = np.array([traffic.predictions[i] for i in rows], dtype=float)
    return as_probabilities(raw[:, 0] if widths == {1} else raw, output)[0]


def prediction_summary(traffic: Traffic, output: str) -> dict[str, dict]:
    """Per version: rows with a prediction, the mean score, the share predicted positive and a histogram of the
    scores (one score per row), or the share of each predicted class (class scores)."""
    predicted = [i for i, p in enumerate(traffic.predictions) if p is not None]
    summary = {}
    for version, rows in _by_version(traffic, predicted).items():
        scores = _scores(traffic, rows, output)
        if scores is None:
            summary[str(version)] = {"rows": len(rows), "note": "predictions of different widths"}
        elif scores.ndim == 1:
            summary[str(version)] = {
                "rows": len(rows),
                "mean_score": float(scores.mean()),
                "predicted_positive_rate": float((scores >= 0.5).mean()),
                "histogram": np.histogram(scores, bins=SCORE_BINS, range=(0.0, 1.0))[0].tolist(),
            }
        else:
            counts = np.bincount(scores.argmax(axis=1), minlength=scores.shape[1])
            summary[str(version)] = {"rows": len(rows), "class_shares": (counts / counts.sum()).tolist()}
    return summary


def live_metrics(
    traffic: Traffic, labels: dict[Key, int], names: list[str], output: str
) -> tuple[dict[str, dict], int]:
    """Per version, the metrics of its predictions on the captured rows that have a label; and how many rows had."""
    labelled = [i for i, p in enumerate(traffic.predictions) if p is not None and traffic.keys[i] in labels]
    found = {}
    for version, rows in _by_version(traffic, labelled).items():
        scores = _scores(traffic, rows, output)
        if scores is not None:
            found[str(version)] = compute_metrics(np.array([labels[traffic.keys[i]] for i in rows]), scores, names)
    return found, len(labelled)


def predictions_markdown(summary: dict[str, dict], label_mean: Optional[float]) -> str:
    rows = ["| version | rows | mean score | predicted positive | class shares |", "|---|---|---|---|---|"]
    for version, s in summary.items():
        shares = ", ".join(f"{i}: {v:.1%}" for i, v in enumerate(s.get("class_shares", [])))
        mean = f"{s['mean_score']:.4f}" if "mean_score" in s else s.get("note", "")
        positive = f"{s['predicted_positive_rate']:.1%}" if "predicted_positive_rate" in s else ""
        rows.append(f"| {version} | {s['rows']} | {mean} | {positive} | {shares} |")
    if label_mean is not None:
        rows.append(f"\nThe label's mean in the training window: {label_mean:.4f}.")
    return "\n".join(rows)


def live_markdown(metrics: dict[str, dict], names: list[str]) -> str:
    def fmt(v) -> str:
        return "" if v is None else f"{v:.4f}"

    rows = [f"| version | labelled rows | {' | '.join(names)} |", "|---|---|" + "---|" * len(names)]
    for version, m in metrics.items():
        rows.append(f"| {version} | {int(m['example_count'])} | {' | '.join(fmt(m.get(n)) for n in names)} |")
    return "\n".join(rows)
