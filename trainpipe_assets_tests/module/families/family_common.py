"""What the three migration-family modules share (a sibling import, as TFX modules do): three z-scored numbers in, a
small DNN, and a serving_default on serialized raw tf.Examples without the label."""

import tensorflow as tf
import tensorflow_transform as tft
from tfx_bsl.public import tfxio

LABEL = "big_tipper"
NUMERIC = ["fare", "trip_miles", "trip_seconds"]
INPUTS = [k + "_xf" for k in NUMERIC]


def dense(x, default):
    if isinstance(x, tf.sparse.SparseTensor):
        x = tf.sparse.to_dense(tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), default)
    return tf.reshape(x, [-1])


def numeric_features(inputs):
    return {
        k + "_xf": tft.scale_to_z_score(tf.cast(dense(inputs[k], tf.constant(0, inputs[k].dtype)), tf.float32))
        for k in NUMERIC
    }


def dataset(fn_args, files, label_key):
    output = tft.TFTransformOutput(fn_args.transform_output)
    options = tfxio.TensorFlowDatasetOptions(batch_size=32, label_key=label_key)
    return fn_args.data_accessor.tf_dataset_factory(files, options, output.transformed_metadata.schema).repeat()


def build(units, activation, loss, hidden=8):
    inputs = {k: tf.keras.Input(shape=(), name=k, dtype=tf.float32) for k in INPUTS}
    x = tf.keras.layers.Concatenate()([tf.keras.layers.Reshape((1,))(inputs[k]) for k in INPUTS])
    x = tf.keras.layers.Dense(hidden, activation="relu")(x)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(units, activation=activation)(x))
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss=loss)
    return model


def serving_signature(model, fn_args):
    output = tft.TFTransformOutput(fn_args.transform_output)
    model.tft_layer = output.transform_features_layer()
    spec = {k: v for k, v in output.raw_feature_spec().items() if k != LABEL}  # clients do not send the label

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(serialized):
        transformed = model.tft_layer(tf.io.parse_example(serialized, spec))
        return {"outputs": model({k: transformed[k] for k in INPUTS})}

    return serve


def fit(model, fn_args, label_key):
    model.fit(
        dataset(fn_args, fn_args.train_files, label_key),
        steps_per_epoch=fn_args.train_steps,
        validation_data=dataset(fn_args, fn_args.eval_files, label_key),
        validation_steps=fn_args.eval_steps,
        callbacks=[tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir)],
        verbose=0,
    )
