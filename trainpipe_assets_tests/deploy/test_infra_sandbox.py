"""The InfraValidator's sandbox: real `trainpipe serve` processes on a model that works, one whose signature does not
take raw examples, one without serving_default, and one that crashes the server when queried."""

from pathlib import Path

import pytest

from trainpipe_assets.core.example_reader import read_records
from trainpipe_assets.core.settings import InfraValidationSettings
from trainpipe_assets.deploy.infra_sandbox import validate
from trainpipe_assets_tests.helpers import DAYS

FAST = InfraValidationSettings(num_examples=4, max_loading_time_seconds=90, num_tries=1)


@pytest.fixture(scope="module")
def eval_examples(pipeline):
    return read_records([str(pipeline["home"] / "artifacts/examples" / DAYS[-1] / "Split-eval" / "*.gz")])[:4]


def save_model(path: Path, kind: str) -> Path:
    """Small SavedModels that load but cannot serve the pipeline's clients."""
    import tensorflow as tf

    class Wrong(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x):
            return {"y": x * 2}

    class Crash(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            # Aborts the process on a real request; the server's warm-up call on an empty batch passes.
            def abort():
                with tf.control_dependencies([tf.raw_ops.Abort(error_msg="deliberate crash")]):
                    return tf.constant(0)

            crash = tf.cond(tf.size(examples) > 0, abort, lambda: tf.constant(0))
            with tf.control_dependencies([crash]):
                return {"outputs": tf.zeros([tf.shape(examples)[0], 1])}

    module = Crash() if kind == "crash" else Wrong()
    signatures = {"other": module.serve} if kind == "no_serving_default" else {"serving_default": module.serve}
    tf.saved_model.save(module, str(path), signatures=signatures)
    return path


def test_model_that_serves_is_blessed(pipeline, eval_examples, tmp_path):
    model = Path(pipeline["home"] / "serving" / "trips_model" / "1")
    verdict = validate(model, "trips_model", eval_examples, FAST, tmp_path)
    assert verdict.blessed, verdict.to_json()
    assert verdict.last.load_seconds > 0 and len(verdict.last.latencies_ms) == 4
    assert "4 examples answered" in verdict.last.reason
    assert not (tmp_path / "model_base").exists()  # the sandbox copy is removed; the server log stays
    assert (tmp_path / "server-1.log").is_file()


def test_load_only_mode_does_not_query(pipeline, tmp_path):
    model = Path(pipeline["home"] / "serving" / "trips_model" / "1")
    verdict = validate(model, "trips_model", [], FAST.model_copy(update={"mode": "LOAD_ONLY"}), tmp_path)
    assert verdict.blessed and verdict.last.latencies_ms == []


def test_signature_that_rejects_raw_examples_is_not_blessed(eval_examples, tmp_path):
    model = save_model(tmp_path / "wrong", "wrong_signature")
    verdict = validate(model, "trips_model", eval_examples, FAST.model_copy(update={"num_tries": 2}), tmp_path / "work")
    assert not verdict.blessed and len(verdict.attempts) == 2  # retried num_tries times
    assert ":predict failed (HTTP 400)" in verdict.last.reason


def test_model_without_serving_default_fails_to_load(eval_examples, tmp_path):
    model = save_model(tmp_path / "nosig", "no_serving_default")
    verdict = validate(model, "trips_model", eval_examples, FAST, tmp_path / "work")
    assert not verdict.blessed
    assert "failed to load" in verdict.last.reason and "serving_default" in verdict.last.reason


def test_model_that_crashes_the_server_is_not_blessed(eval_examples, tmp_path):
    model = save_model(tmp_path / "crash", "crash")
    verdict = validate(model, "trips_model", eval_examples, FAST, tmp_path / "work")
    assert not verdict.blessed
    assert ":predict failed" in verdict.last.reason and "exited with code" in verdict.last.reason, verdict.last.reason
    assert "deliberate crash" in verdict.last.log_tail


# The memory limit (a server that cannot even start) is tested through the asset: assets/test_infra_validation.py.
