"""Family 2: the last layer is Dense(1) without activation, trained with from_logits=True (common in TFX examples)."""

import tensorflow as tf
from family_common import LABEL, build, dense, fit, numeric_features, serving_signature


def preprocessing_fn(inputs):
    return {**numeric_features(inputs), LABEL: dense(inputs[LABEL], tf.constant(0, tf.int64))}


def run_fn(fn_args):
    model = build(1, None, tf.keras.losses.BinaryCrossentropy(from_logits=True))
    fit(model, fn_args, LABEL)
    tf.saved_model.save(
        model, fn_args.serving_model_dir, signatures={"serving_default": serving_signature(model, fn_args)}
    )
