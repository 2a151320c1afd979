"""trainpipe_assets: TensorFlow Extended's training pipeline as Dagster assets."""

import os

# tensorflow_transform sets TF_USE_LEGACY_KERAS=1 on import unless it is already set, which turns tf.keras into
# Keras 2 and makes KerasTuner reject the models; pin Keras 3 before anything imports TensorFlow.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
