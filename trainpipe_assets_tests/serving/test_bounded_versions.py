"""Bounded serving: the one-model shortcut loads what its --model-version-policy picks (latest:1 by default, as TF
Serving) plus the pinned and labelled versions; an unloaded version is freed; version folders are read as TF Serving
reads them (odd names and symlinks out of the base path ignored, once, while later pushes are still picked up); a
wrong input name is a 400 naming what the signature takes; SIGTERM ends the server with 0."""

import gc
import json
import logging
import os
import signal
import weakref

import pytest

from trainpipe_assets.core.serving_layout import clear_pin, list_versions, parse_version, write_pin
from trainpipe_assets.serving.client import http_json
from trainpipe_assets.serving.model_config import VersionPolicy, parse_version_policy
from trainpipe_assets.serving.model_store import ModelStore
from trainpipe_assets_tests.serving.helpers import Server, wait_for, wait_healthy
from trainpipe_assets_tests.serving.tagged_model import push, save_tagged


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return save_tagged(tmp_path_factory.mktemp("tagged") / "template")


def pushed(template, base, versions):
    for version in versions:
        push(template, base, version)
    return base


def odd_folders(base):
    """What issue 27 found breaking the store: a `²` folder (str.isdigit, int() fails) with a saved_model.pb, and a
    symlinked version past int64 pointing at a real version."""
    (base / "²").mkdir()
    (base / "²" / "saved_model.pb").write_bytes((base / "1" / "saved_model.pb").read_bytes())
    (base / "99999999999999999999").symlink_to(base / "1", target_is_directory=True)


def test_version_names_as_tf_serving_reads_them():
    assert [parse_version(t) for t in ("0", "7", "123", str(2**63 - 1))] == [0, 7, 123, 2**63 - 1]
    for text in ("", "²", "١", "07", "-1", "+1", " 1", "1.0", "1e3", str(2**63), "9" * 4301, "abc"):
        assert parse_version(text) is None, text
    assert parse_version_policy("latest:3") == VersionPolicy("latest", 3)
    assert parse_version_policy("all").kind == "all" and parse_version_policy("latest").num_versions == 1
    assert parse_version_policy("specific:3,1") == VersionPolicy("specific", versions=(1, 3))
    for bad in ("latest:0", "latest:x", "specific:", "specific:1,²", "some", "all:2"):
        with pytest.raises(ValueError, match="expected latest:N"):
            parse_version_policy(bad)


def test_policy_pin_and_labels_choose_what_is_loaded_and_unloaded_versions_are_freed(template, tmp_path):
    base = pushed(template, tmp_path / "m", range(1, 11))
    store = ModelStore("m", base, tmp_path / "labels.json", policy=parse_version_policy("latest:1"))
    store.refresh()
    assert set(store.versions()) == {10} and store.serving().version == 10
    gone = weakref.ref(store.versions()[10].model)
    write_pin(base, 3)  # what `trainpipe rollback --to 3` writes
    store.refresh()
    assert set(store.versions()) == {3, 10} and store.serving().version == 3
    (tmp_path / "labels.json").write_text(json.dumps({"canary": 5}))
    store.refresh()
    assert set(store.versions()) == {3, 5, 10} and store.serving().version == 3
    push(template, base, 11)
    store.refresh()  # 10 is neither the latest, pinned nor labelled: unloaded, and nothing keeps it alive
    assert set(store.versions()) == {3, 5, 11}
    gc.collect()
    assert gone() is None, gc.get_referrers(gone())
    clear_pin(base)
    (tmp_path / "labels.json").unlink()
    store.refresh()
    assert set(store.versions()) == {11} and store.serving().version == 11
    everything = ModelStore("m", base, policy=parse_version_policy("all"))
    everything.refresh()
    assert set(everything.versions()) == set(range(1, 12))
    specific = ModelStore("m", base, policy=parse_version_policy("specific:2,4"))
    specific.refresh()
    assert set(specific.versions()) == {2, 4} and specific.serving().version == 4


def test_odd_version_folders_are_ignored_once_and_later_pushes_picked_up(template, tmp_path, caplog):
    base = pushed(template, tmp_path / "m", (1, 2))
    outside = pushed(template, tmp_path / "elsewhere", (1,))
    odd_folders(base)
    (base / "3").symlink_to(outside / "1", target_is_directory=True)  # a real version number, but out of the base
    (base / "4").symlink_to(base / "2", target_is_directory=True)  # a symlink within the base path is a version
    (base / "05").mkdir()  # would be read as the folder 5
    store = ModelStore("m", base, policy=parse_version_policy("all"))
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            store.refresh()
        push(template, base, 6)
        store.refresh()
    assert set(store.versions()) == {1, 2, 4, 6} and store.serving().version == 6 and not store.errors
    assert list_versions(base) == [1, 2, 4, 6]  # the pusher and rollback list versions with the same rule
    warned = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
    assert len(warned) == 4, warned  # one per odd entry, not one per poll
    assert any("²" in w for w in warned) and any("99999999999999999999" in w for w in warned)
    assert any(str(base / "3") in w and "outside the base path" in w for w in warned)


@pytest.fixture(scope="module")
def ten(template, tmp_path_factory):
    """`trainpipe serve` through the shortcut with the default policy, on 10 pushed versions."""
    base = pushed(template, tmp_path_factory.mktemp("ten") / "m", range(1, 11))
    server = Server(base, "--poll-seconds", "0.3", name="m")
    wait_healthy(server)
    yield {"server": server, "base": base, "model": f"{server.root}/v1/models/m", "template": template}
    server.stop()


def loaded(model: str) -> list[str]:
    code, status = http_json(model)
    assert code == 200, status
    return [s["version"] for s in status["model_version_status"]]


def answered_by(model: str) -> int:
    code, answer = http_json(f"{model}:predict", {"instances": ["abc"]})
    assert code == 200, answer
    return answer["predictions"][0]["version"]


def test_ten_versions_one_loaded_rollback_answers_from_the_pin_and_odd_folders_are_ignored(ten):
    model, base = ten["model"], ten["base"]
    assert loaded(model) == ["10"] and answered_by(model) == 10
    write_pin(base, 3)
    wait_for(lambda: loaded(model) == ["10", "3"] and answered_by(model) == 3, "the pinned version 3 loaded")
    assert http_json(f"{model}/versions/10:predict", {"instances": ["abc"]})[0] == 200
    assert http_json(f"{model}/versions/5")[0] == 404  # on disk, but neither latest nor pinned: not in memory
    odd_folders(base)  # issue 27: each poll raised, and later pushes were no longer picked up
    push(ten["template"], base, 11)
    wait_for(lambda: loaded(model) == ["11", "3"], "version 11 loaded beside the pinned 3")
    assert answered_by(model) == 3 and http_json(f"{ten['server'].root}/healthz")[1]["status"] == "ok"
    clear_pin(base)
    wait_for(lambda: loaded(model) == ["11"] and answered_by(model) == 11, "the pin cleared")
    log = ten["server"].output()
    assert log.count("² ignored") == 1 and log.count("99999999999999999999 ignored") == 1, log[-3000:]


def test_a_wrong_input_name_is_a_400_naming_the_input_expected(ten):
    code, answer = http_json(f"{ten['model']}:predict", {"instances": [{"wrong_input": {"b64": "CsEB"}}]})
    assert code == 400 and answer == {
        "error": "unknown input 'wrong_input' in instances; signature 'serving_default' takes 'examples'"
    }


def test_version_path_segments_parse_as_version_folders_do(ten):
    """/versions/١ (an Arabic digit) once answered as version 1, and 4301 digits answered 500: both are 404 now."""
    from urllib.parse import quote

    for segment in ("\u0661", "1" * 4301, "010", "99999999999999999999"):
        code, answer = http_json(f"{ten['model']}/versions/{quote(segment)}")  # as a client sends it
        assert code == 404 and "error" in answer, (segment[:20], code, answer)
    assert http_json(f"{ten['model']}/versions/{loaded(ten['model'])[0]}")[0] == 200


def test_sigterm_ends_the_server_with_0(ten):
    server = ten["server"]
    os.kill(server.proc.pid, signal.SIGTERM)
    assert server.proc.wait(timeout=60) == 0, server.output()[-2000:]
    assert "Traceback" not in server.output()
