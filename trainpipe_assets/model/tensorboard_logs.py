"""The epoch scalars Keras' TensorBoard callback wrote (train/ and validation/ runs), read with TensorBoard's own
EventAccumulator: the last value of each for the metadata, and the learning curves as an image."""

from __future__ import annotations

from pathlib import Path


def epoch_series(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """{"train_loss": [(epoch, value), ...], "validation_loss": [...], ...} from the event files under `log_dir`."""
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import TENSORS, EventAccumulator

    series: dict[str, dict[int, float]] = {}
    for run_dir in sorted({p.parent for p in Path(log_dir).rglob("events.out.tfevents.*")}):
        accumulator = EventAccumulator(str(run_dir), size_guidance={TENSORS: 0})  # 0: keep every event
        accumulator.Reload()
        tags = accumulator.Tags()
        for tag in [t for t in tags.get("tensors", []) + tags.get("scalars", []) if t.startswith("epoch_")]:
            events = accumulator.Tensors(tag) if tag in tags.get("tensors", []) else accumulator.Scalars(tag)
            points = series.setdefault(f"{run_dir.name}_{tag[len('epoch_') :]}", {})
            for event in events:
                number = float(tf.make_ndarray(event.tensor_proto)) if hasattr(event, "tensor_proto") else event.value
                points[event.step] = number  # a later event for the same step wins
    return {k: sorted(v.items()) for k, v in sorted(series.items())}


def final_epoch_scalars(log_dir: Path) -> dict[str, float]:
    """{"train_loss": .., "validation_binary_accuracy": ..}: the last epoch's value of each scalar."""
    return {k: points[-1][1] for k, points in epoch_series(log_dir).items() if points}


def learning_curves_markdown(series: dict[str, list[tuple[int, float]]]) -> str | None:
    """Loss (and one more metric, if logged) per epoch, train and validation on one figure each; None without logs."""
    from trainpipe_assets.core.plots import FIGURE_INCHES, figure, image_markdown

    metrics = sorted({k.split("_", 1)[1] for k in series if "_" in k} - {"learning_rate"}, key=lambda m: m != "loss")
    if not metrics:
        return None
    shown = metrics[:2]
    fig, axes = figure(FIGURE_INCHES[0] * len(shown), FIGURE_INCHES[1], panels=len(shown))
    for ax, metric in zip(axes, shown):
        for run in ("train", "validation"):
            points = series.get(f"{run}_{metric}")
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=run)
        ax.set_title(metric, fontsize=8)
        ax.set_xlabel("epoch", fontsize=7)
        ax.legend(fontsize=6)
    return image_markdown(fig, "learning curves")
