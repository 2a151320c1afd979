from trainpipe_assets.core.settings import ChangeThreshold, MetricThreshold
from trainpipe_assets.model.evaluator.blessing import decide_blessing

HIGHER = ChangeThreshold(direction="higher_is_better", absolute=-0.01)


def test_no_thresholds_blesses_and_says_why():
    blessing = decide_blessing({"accuracy": 0.5}, None, {})
    assert blessing.blessed and blessing.verdicts == []
    assert blessing.reasons == ["no thresholds configured: blessed (TFX would write no blessing, tfx#5148)"]


def test_value_thresholds_lower_and_upper():
    thresholds = {"accuracy": MetricThreshold(lower_bound=0.7), "loss": MetricThreshold(upper_bound=0.5)}
    assert decide_blessing({"accuracy": 0.8, "loss": 0.4}, None, thresholds).blessed
    failed = decide_blessing({"accuracy": 0.65, "loss": 0.6}, None, thresholds)
    assert not failed.blessed
    assert "accuracy lower_bound: 0.65 vs bound 0.7 failed" in failed.reasons
    assert "loss upper_bound: 0.6 vs bound 0.5 failed" in failed.reasons


def test_without_a_baseline_change_thresholds_are_skipped_and_said_so():
    blessing = decide_blessing({"accuracy": 0.8}, None, {"accuracy": MetricThreshold(change=HIGHER)})
    assert blessing.blessed and blessing.verdicts == []
    assert "no baseline yet: change thresholds skipped" in blessing.reasons


def test_absolute_change_higher_is_better():
    thresholds = {"accuracy": MetricThreshold(change=HIGHER)}
    assert decide_blessing({"accuracy": 0.795}, {"accuracy": 0.80}, thresholds).blessed  # within -0.01
    worse = decide_blessing({"accuracy": 0.78}, {"accuracy": 0.80}, thresholds)
    assert not worse.blessed and worse.verdicts[0].rule == "change_absolute"
    assert abs(worse.verdicts[0].value - (-0.02)) < 1e-9


def test_relative_change_lower_is_better():
    thresholds = {"loss": MetricThreshold(change=ChangeThreshold(direction="lower_is_better", relative=0.05))}
    assert decide_blessing({"loss": 0.52}, {"loss": 0.50}, thresholds).blessed  # +4% allowed
    assert not decide_blessing({"loss": 0.56}, {"loss": 0.50}, thresholds).blessed  # +12% is not


def test_a_missing_metric_fails_its_threshold():
    blessing = decide_blessing({"auc": None}, None, {"auc": MetricThreshold(lower_bound=0.5)})
    assert not blessing.blessed and "auc lower_bound: missing vs bound 0.5 failed" in blessing.reasons


def test_force_bless_overrides_and_is_recorded():
    blessing = decide_blessing(
        {"accuracy": 0.1}, None, {"accuracy": MetricThreshold(lower_bound=0.7)}, force_reason="run tag x"
    )
    assert blessing.blessed
    assert blessing.reasons[-1] == "force-blessed: run tag x (despite failed thresholds)"
    assert not blessing.verdicts[0].passed
