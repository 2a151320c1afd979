from pathlib import Path

import pytest

from trainpipe_assets.core.settings import DEFAULT_MODULE_FILE, ConfigError, TrainpipeConfig


def config_file(tmp_path, text):
    path = tmp_path / "trainpipe.yaml"
    path.write_text(text)
    return path


def test_defaults_come_from_the_bundled_file(tmp_path):
    trainpipe = TrainpipeConfig(
        home=str(tmp_path), config_path=str(Path(__file__).parents[2] / "trainpipe_assets/default_config.yaml")
    )
    settings = trainpipe.settings
    assert (
        settings.label_key == "big_tipper" and settings.window_days == 7 and settings.splits == {"train": 2, "eval": 1}
    )
    assert trainpipe.landing_dir == tmp_path / "landing"
    assert trainpipe.module_file == DEFAULT_MODULE_FILE
    assert "--direct_running_mode=in_memory" in settings.beam_pipeline_args


def test_paths_in_the_file_are_relative_to_it(tmp_path):
    path = config_file(tmp_path, "label_key: y\nmodule_file: code/module.py\nsource: {landing_dir: /data/in}\n")
    trainpipe = TrainpipeConfig(home=str(tmp_path / "home"), config_path=str(path))
    assert trainpipe.module_file == tmp_path / "code" / "module.py"
    assert trainpipe.landing_dir == Path("/data/in")


def test_invalid_settings_name_the_file_and_field(tmp_path):
    path = config_file(tmp_path, "label_key: y\nwindow_days: 0\nsplits: {train: 1}\n")
    with pytest.raises(
        ConfigError, match=r"trainpipe.yaml: .*window_days: .*greater than or equal to 1.*splits: .*'train' and 'eval'"
    ):
        TrainpipeConfig(home=str(tmp_path), config_path=str(path)).settings
    path = config_file(tmp_path, "label_key: y\nwindow_dayz: 3\n")
    with pytest.raises(ConfigError, match="window_dayz: Extra inputs are not permitted"):
        TrainpipeConfig(home=str(tmp_path), config_path=str(path)).settings
    with pytest.raises(ConfigError, match="does not exist"):
        TrainpipeConfig(home=str(tmp_path), config_path=str(tmp_path / "missing.yaml")).settings


def test_from_env_reads_trainpipe_home_and_config(tmp_path, monkeypatch):
    path = config_file(tmp_path, "label_key: y\n")
    monkeypatch.setenv("TRAINPIPE_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("TRAINPIPE_CONFIG", str(path))
    trainpipe = TrainpipeConfig.from_env()
    assert trainpipe.home == str(tmp_path / "h") and trainpipe.settings.label_key == "y"
