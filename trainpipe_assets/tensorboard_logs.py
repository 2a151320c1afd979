"""The last value of each epoch scalar Keras' TensorBoard callback wrote (train/ and validation/ runs)."""
from __future__ import annotations

from pathlib import Path


def final_epoch_scalars(log_dir: Path) -> dict[str, float]:
    """{"train_loss": .., "validation_binary_accuracy": ..} from the event files under `log_dir`."""
    import tensorflow as tf

    latest: dict[str, tuple[int, float]] = {}
    for event_file in sorted(Path(log_dir).rglob("events.out.tfevents.*")):
        run = event_file.parent.name
        for raw in tf.data.TFRecordDataset(str(event_file)):
            event = tf.compat.v1.Event.FromString(raw.numpy())
            for value in event.summary.value:
                if not value.tag.startswith("epoch_"):
                    continue
                number = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") else value.simple_value
                key = f"{run}_{value.tag[len('epoch_'):]}"
                if key not in latest or event.step >= latest[key][0]:
                    latest[key] = (event.step, number)
    return {k: v for k, (_, v) in sorted(latest.items())}
