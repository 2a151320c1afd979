"""A tfx.v1 pipeline as TFX's tutorials write it: CSV in, Tuner, Evaluator with a value and a change threshold,
Pusher. Flags: --data DIR --serving DIR --module FILE."""
import argparse

import tensorflow_model_analysis as tfma
from tfx import v1 as tfx

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--serving", required=True)
parser.add_argument("--module", required=True)
args = parser.parse_args()


def create_pipeline(pipeline_name, pipeline_root, data_root, module_file, serving_model_dir):
    example_gen = tfx.components.CsvExampleGen(
        input_base=data_root,
        input_config=tfx.proto.Input(splits=[tfx.proto.Input.Split(name="single_split",
                                                                   pattern="trips_{YYYY}-{MM}-{DD}.csv")]),
        output_config=tfx.proto.Output(split_config=tfx.proto.SplitConfig(splits=[
            tfx.proto.SplitConfig.Split(name="train", hash_buckets=3),
            tfx.proto.SplitConfig.Split(name="eval", hash_buckets=1)])))
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.SchemaGen(statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True)
    example_validator = tfx.components.ExampleValidator(statistics=statistics_gen.outputs["statistics"],
                                                        schema=schema_gen.outputs["schema"])
    transform = tfx.components.Transform(examples=example_gen.outputs["examples"],
                                         schema=schema_gen.outputs["schema"], module_file=module_file)
    tuner = tfx.components.Tuner(module_file=module_file, examples=transform.outputs["transformed_examples"],
                                 transform_graph=transform.outputs["transform_graph"],
                                 train_args=tfx.proto.TrainArgs(num_steps=8),
                                 eval_args=tfx.proto.EvalArgs(num_steps=5),
                                 custom_config={"max_trials": 2})
    trainer = tfx.components.Trainer(module_file=module_file, examples=transform.outputs["transformed_examples"],
                                     transform_graph=transform.outputs["transform_graph"],
                                     schema=schema_gen.outputs["schema"],
                                     hyperparameters=tuner.outputs["best_hyperparameters"],
                                     train_args=tfx.proto.TrainArgs(num_steps=40),
                                     eval_args=tfx.proto.EvalArgs(num_steps=5))
    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    eval_config = tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(label_key="big_tipper")],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=["payment_type"])],
        metrics_specs=[tfma.MetricsSpec(metrics=[
            tfma.MetricConfig(class_name="ExampleCount"),
            tfma.MetricConfig(
                class_name="BinaryAccuracy",
                threshold=tfma.MetricThreshold(
                    value_threshold=tfma.GenericValueThreshold(lower_bound={"value": 0.3}),
                    change_threshold=tfma.GenericChangeThreshold(direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                                                                 absolute={"value": -0.5}))),
        ])])
    evaluator = tfx.components.Evaluator(examples=example_gen.outputs["examples"], model=trainer.outputs["model"],
                                         baseline_model=model_resolver.outputs["model"], eval_config=eval_config)
    pusher = tfx.components.Pusher(
        model=trainer.outputs["model"], model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_model_dir)))
    components = [example_gen, statistics_gen, schema_gen, example_validator, transform, tuner, trainer,
                  model_resolver, evaluator, pusher]
    return tfx.dsl.Pipeline(pipeline_name=pipeline_name, pipeline_root=pipeline_root, components=components,
                            enable_cache=True,
                            metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
                                "metadata.db"))


tfx.orchestration.LocalDagRunner().run(
    create_pipeline("trips_v1", "pipeline_root", args.data, args.module, args.serving))
