"""The module file for the bundled sample data (`trainpipe simulate`), written the way TFX modules are.

preprocessing_fn: z-scores for numbers, vocabularies for strings, buckets for distance; the label passes through.
tuner_fn: KerasTuner RandomSearch over layer sizes, depth and learning rate.
run_fn: trains a DNN and saves a SavedModel whose serving_default takes serialized raw tf.Examples. Run as one of
several training processes (TF_CONFIG set: `training: {workers: N}`, or Vertex), it trains data-parallel under
tf.distribute.MultiWorkerMirroredStrategy; every process saves, the chief's model is the one kept.
"""
import os

import keras_tuner
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

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


# --- Tuner and Trainer ---------------------------------------------------------------------------------------------

CATEGORY_SIZES = {
    **{transformed_name(k): VOCAB_SIZE + OOV_SIZE for k in VOCAB_FEATURES},
    **{transformed_name(k): size for k, size in CATEGORICAL_INT_FEATURES.items()},
    **{transformed_name(k) + "_bucket": n for k, n in BUCKET_FEATURES.items()},
}
DENSE_INPUTS = [transformed_name(k) for k in DENSE_FLOAT_FEATURES]
BATCH_SIZE = 64


def _input_fn(file_pattern, data_accessor, tf_transform_output, batch_size=BATCH_SIZE):
    return data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=LABEL_KEY),
        tf_transform_output.transformed_metadata.schema,
    )


def _hyperparameter_space():
    hp = keras_tuner.HyperParameters()
    hp.Int("hidden_units", 16, 128, step=16, default=64)
    hp.Int("num_layers", 1, 3, default=2)
    hp.Choice("learning_rate", [1e-3, 3e-3, 1e-2], default=3e-3)
    return hp


def _build_keras_model(hp):
    inputs = {k: tf.keras.Input(shape=(), name=k, dtype=tf.float32) for k in DENSE_INPUTS}
    inputs.update({k: tf.keras.Input(shape=(), name=k, dtype=tf.int64) for k in CATEGORY_SIZES})
    dense = [tf.keras.layers.Reshape((1,))(inputs[k]) for k in DENSE_INPUTS]
    one_hot = [tf.keras.layers.CategoryEncoding(n, output_mode="one_hot")(inputs[k]) for k, n in CATEGORY_SIZES.items()]
    x = tf.keras.layers.Concatenate()(dense + one_hot)
    for _ in range(int(hp.get("num_layers"))):
        x = tf.keras.layers.Dense(int(hp.get("hidden_units")), activation="relu")(x)
    output = tf.keras.layers.Dense(1, activation="sigmoid")(x)
    model = tf.keras.Model(inputs=inputs, outputs=output)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(float(hp.get("learning_rate"))),
        loss="binary_crossentropy",
        metrics=[tf.keras.metrics.BinaryAccuracy()],
    )
    return model


def tuner_fn(fn_args: tfx.components.FnArgs) -> tfx.components.TunerFnResult:
    custom = fn_args.custom_config or {}
    tuner = keras_tuner.RandomSearch(
        _build_keras_model,
        max_trials=int(custom.get("max_trials", 6)),
        hyperparameters=_hyperparameter_space(),
        objective=keras_tuner.Objective(custom.get("objective", "val_binary_accuracy"), "max"),
        directory=fn_args.working_dir,
        project_name="trips_tuning",
        seed=1,
    )
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    return tfx.components.TunerFnResult(
        tuner=tuner,
        fit_kwargs={
            "x": _input_fn(fn_args.train_files, fn_args.data_accessor, tf_transform_output),
            "validation_data": _input_fn(fn_args.eval_files, fn_args.data_accessor, tf_transform_output),
            "steps_per_epoch": fn_args.train_steps,
            "validation_steps": fn_args.eval_steps,
            "verbose": 0,
        },
    )


class _ServingModule(tf.Module):
    """serving_default: serialized raw tf.Examples -> the transform graph -> the model, so serving needs no code."""

    def __init__(self, model, tf_transform_output):
        super().__init__()
        self.model = model
        self.tft_layer = tf_transform_output.transform_features_layer()
        raw_spec = tf_transform_output.raw_feature_spec()
        serving_spec = {k: v for k, v in raw_spec.items() if k != LABEL_KEY}
        model_inputs = list(DENSE_INPUTS) + list(CATEGORY_SIZES)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve_tf_examples(serialized):
            transformed = self.tft_layer(tf.io.parse_example(serialized, serving_spec))
            return {"outputs": self.model({k: transformed[k] for k in model_inputs})}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def transform_features(serialized):
            return self.tft_layer(tf.io.parse_example(serialized, raw_spec))

        self.serve_tf_examples = serve_tf_examples
        self.transform_features = transform_features


def _strategy():
    """MultiWorkerMirroredStrategy when this process is one task of a cluster (TF_CONFIG set), else None."""
    return tf.distribute.MultiWorkerMirroredStrategy() if os.environ.get("TF_CONFIG") else None


def _fit_distributed(model, strategy, train, evaluation, fn_args):
    """One epoch of train_steps under `strategy`, then eval_steps of validation, logged as Keras' TensorBoard callback
    logs epochs (train/ and validation/ runs, epoch_loss and epoch_binary_accuracy).

    By hand because Keras 3's Model.fit fails under MultiWorkerMirroredStrategy with more than one worker
    (keras-team/keras#20585, tensorflow/tensorflow#72388): it reduces the first (nested) batch with
    strategy.reduce, which takes no nests, and reduces the step's scalar logs along axis 0."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)
        loss = {run: tf.keras.metrics.Mean() for run in ("train", "validation")}
        accuracy = {run: tf.keras.metrics.BinaryAccuracy() for run in ("train", "validation")}

    def forward(features, label, run):
        predictions = model(features, training=run == "train")
        label = tf.reshape(tf.cast(label, tf.float32), [-1, 1])
        per_example = tf.keras.losses.binary_crossentropy(label, predictions)
        loss[run].update_state(per_example)
        accuracy[run].update_state(label, predictions)
        return tf.nn.compute_average_loss(per_example)  # divided by the global batch: gradients are summed

    def train_step(batch):
        with tf.GradientTape() as tape:
            value = forward(*batch, "train")
        gradients = tape.gradient(value, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))  # all-reduced across workers

    def eval_step(batch):
        forward(*batch, "validation")

    for dataset, steps, step in ((train, fn_args.train_steps, train_step), (evaluation, fn_args.eval_steps, eval_step)):
        batches = iter(strategy.experimental_distribute_dataset(dataset.with_options(options)))
        run_step = tf.function(lambda batch, step=step: strategy.run(step, args=(batch,)))
        for _ in range(steps):
            run_step(next(batches))
    for run in ("train", "validation"):
        with tf.summary.create_file_writer(os.path.join(fn_args.model_run_dir, run)).as_default():
            tf.summary.scalar("epoch_loss", loss[run].result(), step=0)
            tf.summary.scalar("epoch_binary_accuracy", accuracy[run].result(), step=0)
    print(f"trained across {strategy.num_replicas_in_sync} replicas: train loss {float(loss['train'].result()):.4f}")


def run_fn(fn_args: tfx.components.FnArgs):
    strategy = _strategy()  # first: TF's collective ops are configured before any other TF op runs
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    train = _input_fn(fn_args.train_files, fn_args.data_accessor, tf_transform_output)
    evaluation = _input_fn(fn_args.eval_files, fn_args.data_accessor, tf_transform_output)
    hp = _hyperparameter_space()  # defaults for anything the tuner (or the fixed config) did not set
    if fn_args.hyperparameters:
        hp.values.update(keras_tuner.HyperParameters.from_config(fn_args.hyperparameters).values)
    if strategy is None:
        model = _build_keras_model(hp)
        model.fit(
            train,
            steps_per_epoch=fn_args.train_steps,
            validation_data=evaluation,
            validation_steps=fn_args.eval_steps,
            callbacks=[tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch")],
            verbose=0,
        )
    else:
        with strategy.scope():  # variables mirrored on every worker, initialized from the chief's
            model = _build_keras_model(hp)
        _fit_distributed(model, strategy, train, evaluation, fn_args)
    module = _ServingModule(model, tf_transform_output)
    tf.saved_model.save(
        module,
        fn_args.serving_model_dir,
        signatures={"serving_default": module.serve_tf_examples, "transform_features": module.transform_features},
    )
