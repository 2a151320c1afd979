"""Family 1: the label column holds strings ('yes' / 'no'); preprocessing_fn turns it into a vocabulary index."""

import tensorflow as tf
import tensorflow_transform as tft
from family_common import LABEL, build, dense, fit, numeric_features, serving_signature


def preprocessing_fn(inputs):
    outputs = numeric_features(inputs)
    outputs[LABEL + "_xf"] = tft.compute_and_apply_vocabulary(dense(inputs[LABEL], ""), vocab_filename="label")
    return outputs


def run_fn(fn_args):
    model = build(1, "sigmoid", "binary_crossentropy")
    fit(model, fn_args, LABEL + "_xf")
    tf.saved_model.save(
        model, fn_args.serving_model_dir, signatures={"serving_default": serving_signature(model, fn_args)}
    )
