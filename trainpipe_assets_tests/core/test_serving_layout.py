import pytest

from trainpipe_assets.core.serving_layout import copy_saved_model, list_versions, prune_versions


def fake_saved_model(path):
    (path / "variables").mkdir(parents=True)
    (path / "variables" / "variables.index").write_text("idx")
    (path / "saved_model.pb").write_text("pb")
    return path


def test_versions_are_integer_folders_with_a_saved_model(tmp_path):
    base = tmp_path / "serving" / "m"
    src = fake_saved_model(tmp_path / "src")
    copy_saved_model(src, base, 1)
    copy_saved_model(src, base, 2)
    (base / "notes").mkdir()
    (base / "3").mkdir()  # no saved_model.pb: not a version
    assert list_versions(base) == [1, 2]
    assert (base / "2" / "variables" / "variables.index").read_text() == "idx"
    with pytest.raises(FileExistsError):
        copy_saved_model(src, base, 2)


def test_a_failed_copy_leaves_no_version_and_no_temp(tmp_path):
    base = tmp_path / "serving" / "m"
    broken = tmp_path / "broken"
    (broken / "variables").mkdir(parents=True)  # no saved_model.pb
    with pytest.raises(FileNotFoundError):
        copy_saved_model(broken, base, 1)
    assert list(base.iterdir()) == []


def test_prune_keeps_the_newest_and_never_the_protected(tmp_path):
    base = tmp_path / "m"
    src = fake_saved_model(tmp_path / "src")
    for v in range(1, 6):
        copy_saved_model(src, base, v)
    assert prune_versions(base, keep=2, protected={1}) == [2, 3]
    assert list_versions(base) == [1, 4, 5]
    assert prune_versions(base, keep=5, protected=set()) == []


def test_a_garbled_pin_is_an_error_naming_the_file(tmp_path):
    from trainpipe_assets.core.serving_layout import clear_pin, read_pin

    (tmp_path / "PINNED").write_text("two\n")
    with pytest.raises(ValueError, match=r"PINNED should hold a version number, holds 'two'.*rollback --clear"):
        read_pin(tmp_path)
    clear_pin(tmp_path)
    assert read_pin(tmp_path) is None
