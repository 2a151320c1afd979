import pytest

from trainpipe_assets.module.loader import ModuleFileError, load_module_file, user_function


def test_module_loads_by_path_and_imports_its_sibling_files(tmp_path):
    (tmp_path / "helpers.py").write_text("SCALE = 3\n")
    (tmp_path / "my_module.py").write_text(
        "import helpers\ndef preprocessing_fn(inputs):\n    return inputs * helpers.SCALE\n"
    )
    assert user_function(tmp_path / "my_module.py", "preprocessing_fn")(2) == 6


def test_custom_config_is_bound_when_the_function_takes_it(tmp_path):
    (tmp_path / "cc_module.py").write_text(
        "def preprocessing_fn(inputs, custom_config):\n    return custom_config['k']\n"
    )
    assert user_function(tmp_path / "cc_module.py", "preprocessing_fn", {"k": 5})(None) == 5


def test_errors_name_the_file_and_the_problem(tmp_path):
    with pytest.raises(ModuleFileError, match="does not exist"):
        load_module_file(tmp_path / "nope.py")
    (tmp_path / "bad_import.py").write_text("import not_a_real_package_xyz\n")
    with pytest.raises(ModuleFileError, match=r"bad_import.py failed to import: ModuleNotFoundError"):
        load_module_file(tmp_path / "bad_import.py")
    (tmp_path / "no_fn.py").write_text("x = 1\n")
    with pytest.raises(ModuleFileError, match=r"no_fn.py defines no function preprocessing_fn\(\)"):
        user_function(tmp_path / "no_fn.py", "preprocessing_fn")
