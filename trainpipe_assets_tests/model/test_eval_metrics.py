import numpy as np
import pytest

from trainpipe_assets.model.eval_metrics import MISSING_SLICE, compute_metrics, sliced_metrics

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
