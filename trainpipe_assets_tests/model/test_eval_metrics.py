import numpy as np
import pytest

from trainpipe_assets.model.evaluator.metrics import (
    MAX_CURVE_POINTS,
    MISSING_SLICE,
    calibration_bins,
    compute_metrics,
    confusion_matrix,
    curves,
    pr_curve,
    roc_curve,
    sliced_metrics,
)

ALL = ["accuracy", "auc", "precision", "recall", "loss"]


def test_binary_metrics():
    labels = np.array([1, 0, 1, 0, 1])
    scores = np.array([0.9, 0.2, 0.4, 0.6, 0.8])
    m = compute_metrics(labels, scores, ALL)
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["auc"] == pytest.approx(5 / 6)  # 5 of the 6 positive/negative pairs are ordered right
    expected_loss = -np.mean(np.log([0.9, 0.8, 0.4, 0.4, 0.8]))
    assert m["loss"] == pytest.approx(expected_loss)
    assert m["example_count"] == 5


def test_auc_shares_ties_and_is_none_for_one_class():
    assert compute_metrics(np.array([1, 0]), np.array([0.5, 0.5]), ["auc"])["auc"] == pytest.approx(0.5)
    assert compute_metrics(np.array([1, 1]), np.array([[0.7], [0.2]]), ["auc"])["auc"] is None


def test_multiclass_metrics():
    labels = np.array([0, 1, 2, 2])
    scores = np.array([[0.8, 0.1, 0.1], [0.1, 0.7, 0.2], [0.2, 0.2, 0.6], [0.5, 0.3, 0.2]])
    m = compute_metrics(labels, scores, ALL)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["loss"] == pytest.approx(-np.mean(np.log([0.8, 0.7, 0.6, 0.2])))
    assert 0 < m["auc"] <= 1 and m["recall"] == pytest.approx((1 + 1 + 0.5) / 3)


def test_slices_group_rows_by_value_and_name_missing():
    labels = np.array([1, 0, 1, 1])
    scores = np.array([0.9, 0.1, 0.2, 0.7])
    result = sliced_metrics(labels, scores, {"pay": ["Cash", "Cash", None, "Card"]}, ["accuracy"])
    assert result["pay"]["Cash"] == {"example_count": 2.0, "accuracy": 1.0}
    assert result["pay"][MISSING_SLICE]["accuracy"] == 0.0
    assert set(result["pay"]) == {"Cash", "Card", MISSING_SLICE}


def test_roc_curve_points_and_area_match_auc_with_ties():
    labels = np.array([1, 0, 1, 0, 1, 0])
    scores = np.array([0.9, 0.9, 0.7, 0.3, 0.3, 0.1])
    roc = roc_curve(labels, scores)
    assert roc["fpr"] == pytest.approx([0, 1 / 3, 1 / 3, 2 / 3, 1])
    assert roc["tpr"] == pytest.approx([0, 1 / 3, 2 / 3, 1, 1])
    assert roc["thresholds"] == [None, 0.9, 0.7, 0.3, 0.1]
    fpr, tpr = np.array(roc["fpr"]), np.array(roc["tpr"])
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))  # trapezoids
    assert area == pytest.approx(compute_metrics(labels, scores, ["auc"])["auc"])
    assert roc_curve(np.array([1, 1]), np.array([0.2, 0.8])) is None


def test_precision_recall_curve():
    pr = pr_curve(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.4, 0.1]))
    assert pr["precision"] == pytest.approx([1, 0.5, 2 / 3, 0.5]) and pr["recall"] == pytest.approx([0.5, 0.5, 1, 1])
    assert pr["thresholds"] == pytest.approx([0.9, 0.8, 0.4, 0.1])
    assert pr_curve(np.array([0, 0]), np.array([0.2, 0.8])) is None


def test_curves_are_thinned_to_a_bounded_number_of_points_keeping_the_ends():
    rng = np.random.default_rng(0)
    labels, scores = rng.integers(0, 2, 20_000), rng.random(20_000)
    roc = curves(labels, scores)["roc"]
    assert len(roc["fpr"]) <= MAX_CURVE_POINTS
    assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (0, 0, 1, 1)


def test_calibration_bins():
    bins = calibration_bins(np.array([0, 1, 1, 0]), np.array([0.05, 0.15, 0.95, 1.0]))
    assert len(bins) == 10 and [b["count"] for b in bins] == [1, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert bins[9]["mean_score"] == pytest.approx(0.975) and bins[9]["positive_rate"] == 0.5
    assert bins[2]["mean_score"] is None and (bins[0]["lower"], bins[0]["upper"]) == (0, 0.1)


def test_confusion_matrix_binary_and_multiclass():
    binary = curves(np.array([1, 0, 1, 0, 1]), np.array([0.9, 0.2, 0.4, 0.6, 0.8]))
    assert binary["confusion_matrix"] == [[1, 1], [1, 2]] and binary["averaging"] == "binary"
    labels = np.array([0, 1, 2, 2])
    scores = np.array([[0.8, 0.1, 0.1], [0.1, 0.7, 0.2], [0.2, 0.2, 0.6], [0.5, 0.3, 0.2]])
    multi = curves(labels, scores)
    assert multi["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    assert multi["roc"] is not None and multi["averaging"] == "micro-averaged one-vs-rest"
    assert confusion_matrix(np.array([0, 5]), np.array([0, 1]), 2) == [[1, 0], [0, 0]]  # unknown label left out
