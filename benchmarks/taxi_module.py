"""A TFX-style module file for the Chicago taxi data (after TFX's taxi_utils): big tipper = tips > 20% of fare.

The benchmark adds the `big_tipper` column to the CSV and drops `tips`; everything else is the raw data.
`build_model` is shared with the hand-written baseline in pipeline.py, so both train the same network.
"""

import keras_tuner
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

LABEL_KEY = "big_tipper"
DENSE_FLOAT_FEATURES = ["trip_miles", "fare", "trip_seconds"]
BUCKET_FEATURES = ["pickup_latitude", "pickup_longitude", "dropoff_latitude", "dropoff_longitude"]
BUCKET_COUNT = 10
CATEGORICAL_INT_FEATURES = {
    "trip_start_hour": 24,
    "trip_start_day": 8,
    "trip_start_month": 13,
    "pickup_community_area": 80,
    "dropoff_community_area": 80,
}
VOCAB_FEATURES = ["payment_type", "company"]
VOCAB_SIZE = 1000
OOV_SIZE = 10
BATCH_SIZE = 128


def xf(key):
    return key + "_xf"


def _fill_in_missing(x, default):
    if isinstance(x, tf.sparse.SparseTensor):
        x = tf.sparse.to_dense(tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), default)
    return tf.reshape(x, [-1])


def preprocessing_fn(inputs):
    outputs = {}
    for key in DENSE_FLOAT_FEATURES:  # long-tailed: log first, then z-score
        value = tf.cast(_fill_in_missing(inputs[key], tf.constant(0, inputs[key].dtype)), tf.float32)
        outputs[xf(key)] = tft.scale_to_z_score(tf.math.log1p(tf.maximum(value, 0.0)))
    for key in BUCKET_FEATURES:
        value = tf.cast(_fill_in_missing(inputs[key], tf.constant(0, inputs[key].dtype)), tf.float32)
        outputs[xf(key)] = tft.bucketize(value, BUCKET_COUNT)
    for key, size in CATEGORICAL_INT_FEATURES.items():
        value = _fill_in_missing(inputs[key], tf.constant(0, inputs[key].dtype))
        outputs[xf(key)] = tf.clip_by_value(tf.cast(value, tf.int64), 0, size - 1)
    for key in VOCAB_FEATURES:
        outputs[xf(key)] = tft.compute_and_apply_vocabulary(
            _fill_in_missing(inputs[key], ""), top_k=VOCAB_SIZE, num_oov_buckets=OOV_SIZE, vocab_filename=key
        )
    outputs[LABEL_KEY] = _fill_in_missing(inputs[LABEL_KEY], tf.constant(0, tf.int64))
    return outputs


CATEGORY_SIZES = {
    **{xf(k): BUCKET_COUNT + 1 for k in BUCKET_FEATURES},
    **{xf(k): n for k, n in CATEGORICAL_INT_FEATURES.items()},
    **{xf(k): VOCAB_SIZE + OOV_SIZE for k in VOCAB_FEATURES},
}
DENSE_INPUTS = [xf(k) for k in DENSE_FLOAT_FEATURES]


def hyperparameter_space():
    # Small on purpose: ~10k training rows and ~1300 one-hot inputs overfit a wide or deep network within 1000 steps.
    hp = keras_tuner.HyperParameters()
    hp.Int("hidden_units", 8, 32, step=8, default=16)
    hp.Int("num_layers", 1, 2, default=1)
    hp.Choice("learning_rate", [1e-3, 3e-3], default=1e-3)
    return hp


def build_model(hp):
    inputs = {k: tf.keras.Input(shape=(), name=k, dtype=tf.float32) for k in DENSE_INPUTS}
    inputs.update({k: tf.keras.Input(shape=(), name=k, dtype=tf.int64) for k in CATEGORY_SIZES})
    parts = [tf.keras.layers.Reshape((1,))(inputs[k]) for k in DENSE_INPUTS]
    parts += [tf.keras.layers.CategoryEncoding(n, output_mode="one_hot")(inputs[k]) for k, n in CATEGORY_SIZES.items()]
    x = tf.keras.layers.Concatenate()(parts)
    for _ in range(int(hp.get("num_layers"))):
        x = tf.keras.layers.Dense(int(hp.get("hidden_units")), activation="relu")(x)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(1, activation="sigmoid")(x))
    model.compile(
        optimizer=tf.keras.optimizers.Adam(float(hp.get("learning_rate"))),
        loss="binary_crossentropy",
        metrics=[tf.keras.metrics.BinaryAccuracy()],
    )
    return model


def _input_fn(files, data_accessor, tf_transform_output):
    return data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(batch_size=BATCH_SIZE, label_key=LABEL_KEY),
        tf_transform_output.transformed_metadata.schema,
    )


def tuner_fn(fn_args: tfx.components.FnArgs) -> tfx.components.TunerFnResult:
    custom = fn_args.custom_config or {}
    tuner = keras_tuner.RandomSearch(
        build_model,
        max_trials=int(custom.get("max_trials", 6)),
        hyperparameters=hyperparameter_space(),
        objective=keras_tuner.Objective("val_binary_accuracy", "max"),
        directory=fn_args.working_dir,
        project_name="taxi",
        seed=1,
    )
    output = tft.TFTransformOutput(fn_args.transform_graph_path)
    return tfx.components.TunerFnResult(
        tuner=tuner,
        fit_kwargs={
            "x": _input_fn(fn_args.train_files, fn_args.data_accessor, output),
            "validation_data": _input_fn(fn_args.eval_files, fn_args.data_accessor, output),
            "steps_per_epoch": fn_args.train_steps,
            "validation_steps": fn_args.eval_steps,
            "verbose": 0,
        },
    )


class _Serving(tf.Module):
    def __init__(self, model, output):
        super().__init__()
        self.model, self.tft_layer = model, output.transform_features_layer()
        spec = {k: v for k, v in output.raw_feature_spec().items() if k != LABEL_KEY}
        names = DENSE_INPUTS + list(CATEGORY_SIZES)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(serialized):
            transformed = self.tft_layer(tf.io.parse_example(serialized, spec))
            return {"outputs": self.model({k: transformed[k] for k in names})}

        self.serve = serve


def run_fn(fn_args: tfx.components.FnArgs):
    output = tft.TFTransformOutput(fn_args.transform_output)
    hp = hyperparameter_space()
    if fn_args.hyperparameters:
        hp.values.update(keras_tuner.HyperParameters.from_config(fn_args.hyperparameters).values)
    model = build_model(hp)
    model.fit(
        _input_fn(fn_args.train_files, fn_args.data_accessor, output),
        steps_per_epoch=fn_args.train_steps,
        validation_data=_input_fn(fn_args.eval_files, fn_args.data_accessor, output),
        validation_steps=fn_args.eval_steps,
        callbacks=[tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir)],
        verbose=0,
    )
    module = _Serving(model, output)
    tf.saved_model.save(module, fn_args.serving_model_dir, signatures={"serving_default": module.serve})
