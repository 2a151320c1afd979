"""A small model for the hostile-input tests: its signatures take what the requests of issue 27 aim at, with no
pipeline to run first."""

from pathlib import Path


def save_shapes(path: Path) -> None:
    """A TF2 SavedModel at `path` with three signatures: serving_default takes `examples` (string [None], as the
    pipeline's model) and returns each one's length; "wide" takes `x` (float32 [None, None]) and returns its row
    sums; "texts" takes `s` (string [None, None]) and returns the lengths summed per row."""
    import tensorflow as tf

    class Shapes(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def lengths(self, examples):
            return {"outputs": tf.strings.length(examples)}

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="x")])
        def wide(self, x):
            return {"sums": tf.reduce_sum(x, axis=1)}

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string, name="s")])
        def texts(self, s):
            return {"lengths": tf.reduce_sum(tf.strings.length(s), axis=1)}

    module = Shapes()
    signatures = {"serving_default": module.lengths, "wide": module.wide, "texts": module.texts}
    tf.saved_model.save(module, str(path), signatures=signatures)


def resident_bytes(pid: int) -> int:
    """A process's resident memory (VmRSS), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")
