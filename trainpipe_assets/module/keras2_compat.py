"""Keras-2 era module files, run unchanged under Keras 3 (active only while module code runs):

- `model.save(path, save_format='tf', signatures=...)` (or a path without a `.keras`/`.h5` suffix, Keras 2's default
  SavedModel format) writes a SavedModel with `tf.saved_model.save(model, path, signatures=...)`; Keras 3 would raise
  "The `save_format` argument is deprecated", and its own advice (`.keras`) is not a servable SavedModel;
- `import kerastuner` (KerasTuner's name before 1.1) imports `keras_tuner`;
- `fn_args.output` (older tutorials) is `fn_args.serving_model_dir` (see module/api.py).

What was used is collected in `used` (saving, while module code runs) and by `aliases_in` (imports, per module file),
and recorded in the step's metadata.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.util
import re
import sys

used: set[str] = set()


class _KerastunerAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """`kerastuner[.x]` -> the same module object as `keras_tuner[.x]`."""

    def find_spec(self, fullname, path, target=None):
        if fullname == "kerastuner" or fullname.startswith("kerastuner."):
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module("keras_tuner" + spec.name[len("kerastuner") :])

    def exec_module(self, module):
        pass  # the keras_tuner module is already executed


def aliases_in(source: str) -> set[str]:
    """The import aliases a module file's source relies on."""
    return (
        {"import kerastuner (as keras_tuner)"}
        if re.search(r"^\s*(import|from)\s+kerastuner\b", source, re.M)
        else set()
    )


def install_import_aliases() -> None:
    if not any(isinstance(f, _KerastunerAlias) for f in sys.meta_path):
        sys.meta_path.append(_KerastunerAlias())


@contextlib.contextmanager
def keras2_saving():
    """While module code runs: Keras 2's SavedModel saving on Keras 3 models."""
    import keras
    import tensorflow as tf

    original = keras.Model.save

    def save(self, filepath, *args, save_format=None, signatures=None, options=None, **kwargs):
        path = str(filepath)
        if save_format == "tf" or (save_format is None and not path.endswith((".keras", ".h5"))):
            used.add("model.save(..., save_format='tf') as tf.saved_model.save")
            tf.saved_model.save(self, path, signatures=signatures, options=options)
            return None
        return original(self, filepath, *args, **kwargs)

    keras.Model.save = save
    try:
        yield
    finally:
        keras.Model.save = original
