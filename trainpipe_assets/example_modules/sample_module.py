"""The module file for the bundled sample data (`trainpipe simulate`), written the way TFX modules are.

preprocessing_fn: z-scores for numbers, vocabularies for strings, buckets for distance; the label passes through.
"""
import tensorflow as tf
import tensorflow_transform as tft

LABEL_KEY = "big_tipper"
DENSE_FLOAT_FEATURES = ["fare", "trip_miles", "trip_seconds"]
VOCAB_FEATURES = ["payment_type", "company"]
CATEGORICAL_INT_FEATURES = {"trip_start_hour": 24, "pickup_area": 21}
BUCKET_FEATURES = {"trip_miles": 5}
VOCAB_SIZE = 20
OOV_SIZE = 2


def transformed_name(key):
    return key + "_xf"


def _fill_in_missing(x, default):
    """A [batch, 1] dense or a sparse (var-len) feature -> a [batch] dense tensor with `default` where missing."""
    if isinstance(x, tf.sparse.SparseTensor):
        x = tf.sparse.to_dense(tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), default)
    return tf.reshape(x, [-1])


def preprocessing_fn(inputs):
    outputs = {}
    for key in DENSE_FLOAT_FEATURES:
        value = tf.cast(_fill_in_missing(inputs[key], tf.constant(0, inputs[key].dtype)), tf.float32)
        outputs[transformed_name(key)] = tft.scale_to_z_score(value)
    for key in VOCAB_FEATURES:
        outputs[transformed_name(key)] = tft.compute_and_apply_vocabulary(
            _fill_in_missing(inputs[key], ""), top_k=VOCAB_SIZE, num_oov_buckets=OOV_SIZE, vocab_filename=key
        )
    for key, size in CATEGORICAL_INT_FEATURES.items():
        value = _fill_in_missing(inputs[key], tf.constant(0, tf.int64))
        outputs[transformed_name(key)] = tf.clip_by_value(value, 0, size - 1)
    for key, buckets in BUCKET_FEATURES.items():
        value = tf.cast(_fill_in_missing(inputs[key], tf.constant(0, inputs[key].dtype)), tf.float32)
        outputs[transformed_name(key) + "_bucket"] = tft.bucketize(value, buckets)
    outputs[LABEL_KEY] = _fill_in_missing(inputs[LABEL_KEY], tf.constant(0, tf.int64))
    return outputs
