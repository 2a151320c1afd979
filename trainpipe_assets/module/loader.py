"""Loading the user's TFX-style module file by path, with its own folder importable (TFX packages that folder)."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable


class ModuleFileError(ValueError):
    """The module file is missing, fails to import, or lacks the function a component needs."""


def load_module_file(path: Path) -> ModuleType:
    from trainpipe_assets.module import keras2_compat, tfx_compat

    tfx_compat.install()  # a module written for TFX imports `tfx`; serve it when TFX itself is absent
    keras2_compat.install_import_aliases()  # `import kerastuner`, KerasTuner's old name
    path = Path(path).resolve()
    if not path.is_file():
        raise ModuleFileError(f"module_file {path} does not exist")
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    name = f"trainpipe_user_module_{path.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    module.__trainpipe_compat__ = keras2_compat.aliases_in(path.read_text(errors="replace"))
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        raise ModuleFileError(f"module_file {path} failed to import: {type(e).__name__}: {e}") from e
    return module


def user_function(path: Path, name: str, custom_config: dict | None = None) -> Callable[..., Any]:
    """`name` from the module file; bound to `custom_config` when it takes one, as TFX does."""
    fn = getattr(load_module_file(path), name, None)
    if not callable(fn):
        raise ModuleFileError(f"module_file {path} defines no function {name}()")
    if "custom_config" in inspect.signature(fn).parameters:
        return functools.partial(fn, custom_config=custom_config or {})
    return fn


def module_function(trainpipe, name: str, custom_config: dict | None = None) -> Callable[..., Any]:
    """`name` from the pipeline's module file, for an asset: a missing file or function, or a module that fails to
    import, fails the step at once (never retried), naming the file."""
    from dagster import Failure

    try:
        return user_function(trainpipe.module_file, name, custom_config)
    except ModuleFileError as e:
        raise Failure(description=str(e), allow_retries=False) from e


def require_functions(trainpipe, names: list[str]) -> None:
    """Fail at once, naming the file and every missing function, when the module lacks one the run will need (so a
    module without run_fn is found before transform and tuning run, not after)."""
    from dagster import Failure

    try:
        module = load_module_file(trainpipe.module_file)
    except ModuleFileError as e:
        raise Failure(description=str(e), allow_retries=False) from e
    missing = [name for name in names if not callable(getattr(module, name, None))]
    if missing:
        raise Failure(
            description=f"module_file {trainpipe.module_file} defines no {', '.join(f'{n}()' for n in missing)}, "
            f"which this run needs ({', '.join(names)})",
            allow_retries=False,
        )
