"""The last value of each epoch scalar Keras' TensorBoard callback wrote (train/ and validation/ runs), read with
TensorBoard's own EventAccumulator."""

from __future__ import annotations

from pathlib import Path


def final_epoch_scalars(log_dir: Path) -> dict[str, float]:
    """{"train_loss": .., "validation_binary_accuracy": ..} from the event files under `log_dir`."""
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import TENSORS, EventAccumulator

    latest: dict[str, tuple[int, float]] = {}
    runs = sorted({p.parent for p in Path(log_dir).rglob("events.out.tfevents.*")})
    for run_dir in runs:
        accumulator = EventAccumulator(str(run_dir), size_guidance={TENSORS: 0})  # 0: keep every event
        accumulator.Reload()
        tags = accumulator.Tags()
        for tag in [t for t in tags.get("tensors", []) + tags.get("scalars", []) if t.startswith("epoch_")]:
            events = accumulator.Tensors(tag) if tag in tags.get("tensors", []) else accumulator.Scalars(tag)
            for event in events:
                number = float(tf.make_ndarray(event.tensor_proto)) if hasattr(event, "tensor_proto") else event.value
                key = f"{run_dir.name}_{tag[len('epoch_') :]}"
                if key not in latest or event.step >= latest[key][0]:
                    latest[key] = (event.step, number)
    return {k: v for k, (_, v) in sorted(latest.items())}
