"""A tiny SavedModel that says which version answered: serving_default takes `examples` (strings) and returns, per
row, `version` (read from the asset file assets/VERSION of the folder it was loaded from) and `length`. Saved once,
then pushed as many versions as wanted by copying the folder, writing its VERSION and renaming it into place, as the
pusher does (so a version appears complete or not at all). Used by the serving tests and benchmarks/serving_soak.py."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path


def save_tagged(path: Path, weights: int = 16) -> Path:
    """The template at `path`; `weights` float32 variables, to give a version some size in memory."""
    import tensorflow as tf

    tag = Path(tempfile.mkdtemp()) / "VERSION"
    tag.write_text("0\n")

    class Tagged(tf.Module):
        def __init__(self):
            super().__init__()
            self.tag = tf.saved_model.Asset(str(tag))
            self.weights = tf.Variable(tf.zeros([weights], tf.float32))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            rows = tf.shape(examples)[0]
            version = tf.strings.to_number(tf.strings.strip(tf.io.read_file(self.tag)), tf.int64)
            length = tf.strings.length(examples) + tf.cast(self.weights[0], tf.int32)
            return {"version": tf.fill([rows], version), "length": length}

    module = Tagged()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    shutil.rmtree(tag.parent, ignore_errors=True)
    return path


def push(template: Path, base: Path, version: int) -> Path:
    """`template` as `base/version`, atomically (a hidden copy renamed into place), answering `version`."""
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".tmp-{version}"
    shutil.copytree(template, tmp)
    (tmp / "assets" / "VERSION").write_text(f"{version}\n")
    tmp.rename(base / str(version))
    return base / str(version)
