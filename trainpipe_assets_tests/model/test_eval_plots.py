
import numpy as np
from dagster import MarkdownMetadataValue

from trainpipe_assets.model.evaluator.metrics import compute_metrics, curves, sliced_metrics
from trainpipe_assets.model.evaluator.plots import evaluation_metadata, slices_markdown, thresholds_markdown
from trainpipe_assets_tests.helpers import PNG_MAGIC, inline_pngs

METRICS = ["accuracy", "auc", "loss"]


def run(labels, scores) -> dict:
    slices = {"pay": ["Cash" if i % 2 else "Card" for i in range(len(labels))]}
    return {
        "overall": compute_metrics(labels, scores, METRICS),
        "slices": sliced_metrics(labels, scores, slices, METRICS),
        "plots": curves(labels, scores),
    }


def test_plots_are_small_inline_pngs_and_baseline_numbers_are_recorded():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 500)
    candidate, baseline = run(labels, labels * 0.4 + rng.random(500) * 0.6), run(labels, rng.random(500))
    verdicts = [{"metric": "accuracy", "rule": "change_absolute", "bound": -0.02, "value": 0.123456, "passed": True}]
    metadata = evaluation_metadata(candidate, baseline, "baseline v1", verdicts, METRICS)
    for key in ("roc_curve", "pr_curve", "calibration_plot", "confusion_matrix"):
        assert isinstance(metadata[key], MarkdownMetadataValue)
        [png] = inline_pngs(metadata[key].value)
        assert png.startswith(PNG_MAGIC) and len(png) < 40_000
    for m in METRICS:
        assert isinstance(metadata[f"baseline_{m}"], float)
        assert metadata[f"change_{m}"] == metadata[f"candidate_{m}"] - metadata[f"baseline_{m}"]
    assert "| accuracy | change_absolute | -0.02 | +0.1235 | pass |" in metadata["thresholds"].value
    assert "baseline v1" not in metadata["comparison"].value and "| accuracy |" in metadata["comparison"].value


def test_without_a_baseline_there_are_no_baseline_numbers_and_a_multiclass_matrix_is_drawn():
    labels = np.array([0, 1, 2, 2, 1, 0])
    scores = np.eye(3)[[0, 1, 2, 1, 1, 0]] * 0.7 + 0.1
    metadata = evaluation_metadata(run(labels, scores), None, "", [], METRICS)
    assert not [k for k in metadata if k.startswith(("baseline_", "change_"))]  # (baseline_version is the asset's)
    [png] = inline_pngs(metadata["confusion_matrix"].value)
    assert png.startswith(PNG_MAGIC)
    assert "no threshold checked" in metadata["thresholds"].value


def test_slice_table_has_every_metric_with_four_significant_digits():
    candidate = {"pay": {"Cash": {"example_count": 3.0, "accuracy": 2 / 3, "auc": None, "loss": 0.123456789}}}
    baseline = {"pay": {"Cash": {"example_count": 3.0, "accuracy": 1.0, "auc": 0.5, "loss": 0.2}}}
    table = slices_markdown(candidate, baseline, ["accuracy", "auc", "loss"])
    assert table.splitlines()[0] == (
        "| slice | value | examples | accuracy | accuracy (baseline) | auc | auc (baseline) | loss | loss (baseline) |"
    )
    assert "| pay | Cash | 3 | 0.6667 | 1 |  | 0.5 | 0.1235 | 0.2 |" in table


def test_threshold_table_rows():
    table = thresholds_markdown(
        [
            {"metric": "accuracy", "rule": "lower_bound", "bound": 0.6, "value": 0.61234, "passed": True},
            {"metric": "auc", "rule": "change_relative", "bound": -0.05, "value": None, "passed": False},
        ]
    )
    assert table.splitlines()[2:] == [
        "| accuracy | lower_bound | 0.6 | 0.6123 | pass |",
        "| auc | change_relative | -0.05 | missing | FAIL |",
    ]
