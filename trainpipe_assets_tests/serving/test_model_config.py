"""--model-config-file (TF Serving's ModelServerConfig text): a bad file stops the server before it starts, naming the
file and the line or field; several models with their version policies and labels in one real `trainpipe serve`
process; a change to the file adds, removes and re-policies models without a restart, and a broken file is reported
while the last good config stays in force."""

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trainpipe_assets.core.example_reader import read_records
from trainpipe_assets.serving import main
from trainpipe_assets.serving.client import http_json
from trainpipe_assets.serving.flags import add_serve_arguments
from trainpipe_assets.serving.main import serve_from_args
from trainpipe_assets.serving.model_config import LATEST_VERSION, VersionPolicy
from trainpipe_assets.serving.model_store import ModelStore
from trainpipe_assets_tests.conftest import DAYS
from trainpipe_assets_tests.serving.helpers import Server, b64, model_config, sample, save_scorer, wait_for


def serve_error(monkeypatch, *argv: str) -> str:
    """What `trainpipe serve argv` refuses to start with (it must not get as far as serving)."""
    monkeypatch.setattr(main, "serve", lambda *a, **k: pytest.fail("the server would have started"))
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    with pytest.raises(ValueError) as error:
        serve_from_args(parser.parse_args(list(argv)))
    return str(error.value)


def test_a_bad_config_file_is_an_error_naming_the_file_and_line_or_field(tmp_path, monkeypatch):
    (tmp_path / "m").mkdir()
    config = tmp_path / "models.config"
    config.write_text(model_config({"m": (tmp_path / "m", "")}).replace("base_path", "base_pth"))
    assert serve_error(monkeypatch, "--model-config-file", str(config)).startswith(
        f'{config}:4:5: Message type "tensorflow.serving.ModelConfig" has no field named "base_pth"'
    )
    config.write_text(model_config({"m": (tmp_path / "nowhere", "")}))
    message = serve_error(monkeypatch, "--model-config-file", str(config))
    assert message == f"{config}: model 'm': base_path '{tmp_path / 'nowhere'}' is not a folder"
    config.write_text(model_config({"m": (tmp_path / "m", "")}).replace("}\n}", '}\n config { name: "m" }\n}'))
    assert "model 'm': name 'm' is given to two models" in serve_error(monkeypatch, "--model-config-file", str(config))
    config.write_text(model_config({"m": (tmp_path / "m", "model_version_policy { specific { } }")}))
    assert "specific lists no versions" in serve_error(monkeypatch, "--model-config-file", str(config))
    both = serve_error(monkeypatch, "--model-config-file", str(config), "--model-name", "m", "--model-base-path", ".")
    assert "without --model-name" in both
    assert "--model-config-file" in serve_error(monkeypatch, "--port", "9")

    config.write_text("model_config_list {\n  config {\n    name: 'm'\n    policy: 1\n")  # as `trainpipe serve`
    done = subprocess.run(
        [str(Path(sys.executable).parent / "trainpipe"), "serve", "--model-config-file", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and f"trainpipe serve: error: {config}:4:5: " in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_version_policies_choose_what_a_store_loads(tmp_path):
    base = tmp_path / "scorer"
    for version in (1, 3):
        save_scorer(base / str(version))
    (base / "4").mkdir()
    (base / "4" / "saved_model.pb").write_bytes(b"not a SavedModel")
    assert VersionPolicy("latest", 2).select([1, 3, 4]) == {3, 4} and VersionPolicy("specific", versions=(2, 3)).select(
        [1, 3, 4]
    ) == {3}
    latest = ModelStore("scorer", base, policy=LATEST_VERSION)
    latest.refresh()  # 4 fails to load: latest 1 falls back to 3, which serves
    assert set(latest.versions()) == {3} and set(latest.errors) == {4} and latest.serving().version == 3
    (base / "PINNED").write_text("1\n")  # a version the pin names is loaded whatever the policy
    latest.refresh()
    assert set(latest.versions()) == {1, 3} and latest.serving().version == 1
    specific = ModelStore("scorer", base, policy=VersionPolicy("specific", versions=(3,)), labels={"stable": 3})
    (base / "PINNED").unlink()
    specific.refresh()
    assert set(specific.versions()) == {3} and specific.labels() == {"stable": 3}


@pytest.fixture(scope="module")
def configured(pipeline, tmp_path_factory):
    """trips_model versions 1-3 with policy specific [1, 3] and labels, and a scorer, from one config file that the
    server rereads every 0.5 s."""
    root = tmp_path_factory.mktemp("config")
    for version in ("1", "2", "3"):
        shutil.copytree(pipeline["home"] / "serving" / "trips_model" / "1", root / "trips_model" / version)
    save_scorer(root / "scorer" / "1")
    config = root / "models.config"
    labels = 'version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 3 }'
    specific = "model_version_policy { specific { versions: 1 versions: 3 } }"
    config.write_text(
        model_config({"trips_model": (root / "trips_model", specific + labels), "scorer": (root / "scorer", "")})
    )
    server = Server(None, "--model-config-file", str(config), "--model-config-file-poll-wait-seconds", "0.5")
    try:
        wait_for(lambda: health(server).get("status") == "ok", "both models loaded")
        examples = read_records([str(pipeline["home"] / "artifacts/examples" / DAYS[0] / "Split-eval" / "*.gz")])[:2]
        yield {"server": server, "root": root, "config": config, "body": {"instances": b64(examples)}}
    finally:
        server.stop()


def health(server: Server) -> dict:
    return http_json(f"{server.root}/healthz")[1]


def versions(server: Server, model: str) -> list:
    code, status = http_json(f"{server.root}/v1/models/{model}")
    return [s["version"] for s in status["model_version_status"]] if code == 200 else code


def test_two_models_from_one_file_with_their_policy_and_labels(configured):
    server, body = configured["server"], configured["body"]
    models = f"{server.root}/v1/models"
    assert versions(server, "trips_model") == ["3", "1"] and versions(server, "scorer") == ["1"]  # not 2: specific
    assert http_json(f"{models}/trips_model/versions/2")[0] == 404
    assert http_json(f"{models}/trips_model/labels/stable:predict", body)[0] == 200
    assert http_json(f"{models}/trips_model/labels/canary/metadata")[1]["model_spec"]["version"] == "3"
    code, answer = http_json(f"{models}/other:predict", body)
    assert code == 404 and answer["error"] == "model 'other' not found (serving ['scorer', 'trips_model'])"
    assert http_json(f"{models}/scorer:classify", {"examples": [{"x": 1.0}]})[0] == 200
    assert health(server)["models"]["trips_model"] == {"status": "ok", "serving_version": 3}


def test_a_changed_file_adds_removes_and_repolicies_models_without_a_restart(configured):
    server, root, config, body = configured["server"], configured["root"], configured["config"], configured["body"]
    trips = root / "trips_model"
    new = {"trips_model": (trips, "model_version_policy { specific { versions: 2 } }"), "trips_latest": (trips, "")}
    config.write_text(model_config(new))  # scorer removed, trips_latest (latest 1, the default) added
    wait_for(lambda: versions(server, "trips_latest") == ["3"], "trips_latest loaded")
    wait_for(lambda: versions(server, "trips_model") == ["2"], "trips_model's new policy")
    assert (
        versions(server, "scorer") == 404 and http_json(f"{server.root}/v1/models/trips_latest:predict", body)[0] == 200
    )
    assert http_json(f"{server.root}/v1/models/trips_model/labels/stable")[0] == 404  # labels follow the file too
    assert server.proc.poll() is None

    config.write_text(model_config(new).replace("name:", "nam:", 1))
    wait_for(lambda: "config_error" in health(server), "the broken file reported")
    error = health(server)["config_error"]
    assert error.startswith(f'{config}:3:5: Message type "tensorflow.serving.ModelConfig" has no field named "nam"')
    assert health(server)["status"] == "degraded" and sample(server.metrics(), "trainpipe_model_config_error") == 1
    assert http_json(f"{server.root}/v1/models/trips_latest:predict", body)[0] == 200  # the last good config stays
    assert server.output().count('has no field named "nam"') == 1  # logged once, with the file, not at every poll
    config.write_text(model_config(new))
    wait_for(lambda: "config_error" not in health(server), "the fixed file read")
    assert health(server)["status"] == "ok" and "Traceback" not in server.output()
