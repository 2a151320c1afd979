"""Family 3: written for TF 2.x before Keras 3: `import kerastuner`, `fn_args.output`,
`model.save(save_format='tf')`."""

import kerastuner
import tensorflow as tf
from family_common import LABEL, build, dataset, dense, fit, numeric_features, serving_signature
from tfx.components.tuner.component import TunerFnResult


def preprocessing_fn(inputs):
    return {**numeric_features(inputs), LABEL: dense(inputs[LABEL], tf.constant(0, tf.int64))}


def _model(hp):
    return build(1, "sigmoid", "binary_crossentropy", hidden=hp.Int("hidden", 4, 8, step=4))


def tuner_fn(fn_args):
    tuner = kerastuner.RandomSearch(
        _model, objective="val_loss", max_trials=1, directory=fn_args.working_dir, project_name="old"
    )
    return TunerFnResult(
        tuner=tuner,
        fit_kwargs={
            "x": dataset(fn_args, fn_args.train_files, LABEL),
            "steps_per_epoch": fn_args.train_steps,
            "validation_data": dataset(fn_args, fn_args.eval_files, LABEL),
            "validation_steps": fn_args.eval_steps,
            "verbose": 0,
        },
    )


def run_fn(fn_args):
    hp = kerastuner.HyperParameters.from_config(fn_args.hyperparameters)
    model = _model(hp)
    fit(model, fn_args, LABEL)
    model.save(fn_args.output, save_format="tf", signatures={"serving_default": serving_signature(model, fn_args)})
