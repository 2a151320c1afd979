"""TFX module files as people wrote them run unchanged, end to end (ingest -> train -> evaluate -> infra-validate
through a real server -> push): a string label turned into an index by preprocessing_fn, a logits model, and a
Keras-2 era module (`import kerastuner`, `fn_args.output`, `model.save(save_format='tf')`)."""

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from dagster import instance_for_test

from trainpipe_assets.core.example_reader import read_records
from trainpipe_assets.data.sample_data import write_days
from trainpipe_assets.definitions import build_definitions
from trainpipe_assets_tests.helpers import failure_message, make_config, metadata_of, run_job, write_config

FAMILIES = Path(__file__).parent / "families"
DAYS = ["2024-03-01", "2024-03-02"]


def yes_no_labels(landing: Path) -> None:
    """The sample days with the label as strings, the way many datasets carry it."""
    for path in landing.glob("*.csv"):
        rows = list(csv.DictReader(path.open()))
        for row in rows:
            row["big_tipper"] = "yes" if row["big_tipper"] == "1" else "no"
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def train_family(tmp_path, module: str, string_label: bool = False, tuning: bool = False, **evaluation):
    columns = {
        "trip_miles": "FLOAT",
        "trip_seconds": "INT",
        "fare": "FLOAT",
        "payment_type": "STRING",
        "big_tipper": "STRING" if string_label else "INT",
    }
    config = write_config(
        tmp_path / "trainpipe.yaml",
        columns=columns,
        module_file=str(FAMILIES / module),
        train_steps=30,
        eval_steps=3,
        tuning={"enabled": tuning, "hyperparameters": {} if tuning else {"hidden": 8}},
        evaluation={"thresholds": {}, "slices": ["payment_type"], **evaluation},
        infra_validation={"num_examples": 3, "num_tries": 1},
    )
    trainpipe = make_config(tmp_path / "home", config)
    write_days(trainpipe.landing_dir, len(DAYS), 200, end=dt.date.fromisoformat(DAYS[-1]), seed=9)
    if string_label:
        yes_no_labels(trainpipe.landing_dir)
    defs = build_definitions(trainpipe)
    with instance_for_test() as instance:
        for day in DAYS:
            run_job(defs, "ingest_job", day, instance)
        return trainpipe, run_job(defs, "training_job", DAYS[-1], instance, raise_on_error=False)


def assert_served_and_pushed(result, trainpipe) -> None:
    assert result.success, failure_message(result)
    infra = metadata_of(result, "infra_validation")
    assert infra["infra_blessed"].value and infra["queried_examples"].value == 3  # a real server answered
    assert metadata_of(result, "pushed_model")["version"].value == 1
    assert (trainpipe.serving_dir / "1" / "saved_model.pb").is_file()


def test_a_string_label_is_scored_as_the_model_saw_it(tmp_path):
    trainpipe, result = train_family(tmp_path, "string_label_module.py", string_label=True, label_key="big_tipper_xf")
    assert_served_and_pushed(result, trainpipe)
    evaluation = metadata_of(result, "model_evaluation")
    assert evaluation["label"].value == "big_tipper_xf (transformed, from big_tipper)"
    assert 0.5 < evaluation["candidate_accuracy"].value <= 1
    # Clients send raw features without the label: no extra column leaks into serving.
    import tensorflow as tf

    served = tf.saved_model.load(str(trainpipe.serving_dir / "1")).signatures["serving_default"]
    examples = [
        tf.train.Example.FromString(r)
        for r in read_records(
            [str(Path(trainpipe.home) / "artifacts/examples" / DAYS[-1] / "Split-eval/*.gz")], limit=3
        )
    ]
    for example in examples:
        del example.features.feature["big_tipper"]
    outputs = served(examples=tf.constant([e.SerializeToString() for e in examples]))["outputs"].numpy()
    assert outputs.shape == (3, 1) and np.all((outputs >= 0) & (outputs <= 1))


def test_a_string_label_without_a_mapping_says_which_setting_to_use(tmp_path):
    _, result = train_family(tmp_path, "string_label_module.py", string_label=True)
    assert not result.success
    message = failure_message(result)
    assert "label_key 'big_tipper' holds strings (['no', 'yes'])" in message and "evaluation.label_key" in message
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_a_logits_model_is_scored_after_a_sigmoid(tmp_path):
    trainpipe, result = train_family(tmp_path, "logits_module.py")
    assert_served_and_pushed(result, trainpipe)
    evaluation = metadata_of(result, "model_evaluation")
    assert evaluation["score_semantics"].value.startswith("logits, decided by evaluation.output: auto")
    assert 0 < evaluation["candidate_loss"].value < 2  # a cross-entropy of probabilities, not of clipped logits


def test_a_keras_2_era_module_saves_a_servable_model(tmp_path):
    trainpipe, result = train_family(tmp_path, "keras2_module.py", tuning=True)
    assert_served_and_pushed(result, trainpipe)
    compat = metadata_of(result, "trained_model")["keras2_compat"].value
    assert compat == ["import kerastuner (as keras_tuner)", "model.save(..., save_format='tf') as tf.saved_model.save"]


@pytest.mark.parametrize("units", [1, 3])
def test_the_loss_is_keras_cross_entropy_for_logits_and_probabilities(units):
    import keras

    from trainpipe_assets.model.evaluator.metrics import as_probabilities, compute_metrics

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, size=(500, units)).astype(np.float32)
    labels = rng.integers(0, max(2, units), size=500)
    if units == 1:
        expected = keras.losses.BinaryCrossentropy(from_logits=True)(labels[:, None].astype(np.float32), logits)
        probs_expected = keras.losses.BinaryCrossentropy()(
            labels[:, None].astype(np.float32), 1 / (1 + np.exp(-logits))
        )
    else:
        expected = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
        softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        probs_expected = keras.losses.SparseCategoricalCrossentropy()(labels, softmax)
    probabilities, decided = as_probabilities(logits, "auto")
    assert decided.startswith("logits")
    assert compute_metrics(labels, probabilities, ["loss"])["loss"] == pytest.approx(float(expected), abs=1e-4)
    again, decided = as_probabilities(probabilities, "auto")
    assert decided.startswith("probabilities")
    assert compute_metrics(labels, again, ["loss"])["loss"] == pytest.approx(float(probs_expected), abs=1e-4)
