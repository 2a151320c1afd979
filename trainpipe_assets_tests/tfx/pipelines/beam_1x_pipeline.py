"""A pipeline in TFX 1.x's module paths, as 13 of TFX's own examples write it: BeamDagRunner, ImportSchemaGen,
trainer_pb2/pusher_pb2, a LatestBlessedModelResolver, InfraValidator, and an EvalConfig whose label is the transformed
big_tipper_xf (preprocessing_function_names, as TFX's taxi example's label is). Flags: --data --schema --serving
--module."""
import os

import absl.app
import absl.flags
import tensorflow_model_analysis as tfma
from tfx.components import (
    CsvExampleGen,
    Evaluator,
    ExampleValidator,
    ImportSchemaGen,
    InfraValidator,
    Pusher,
    StatisticsGen,
    Trainer,
    Transform,
)
from tfx.components.trainer.executor import GenericExecutor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.components.common import resolver
from tfx.dsl.experimental import latest_blessed_model_resolver
from tfx.orchestration import metadata, pipeline
from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner
from tfx.proto import infra_validator_pb2, pusher_pb2, trainer_pb2
from tfx.types import Channel
from tfx.types.standard_artifacts import Model, ModelBlessing

FLAGS = absl.flags.FLAGS
absl.flags.DEFINE_string("data", None, "CSV folder")
absl.flags.DEFINE_string("schema", None, "schema.pbtxt")
absl.flags.DEFINE_string("serving", None, "push destination")
absl.flags.DEFINE_string("module", None, "module file")


def _create_pipeline(pipeline_name, pipeline_root, data_root, schema_file, module_file, serving_model_dir,
                     metadata_path, beam_pipeline_args):
    example_gen = CsvExampleGen(input_base=data_root)
    statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = ImportSchemaGen(schema_file=schema_file)
    example_validator = ExampleValidator(statistics=statistics_gen.outputs["statistics"],
                                         schema=schema_gen.outputs["schema"])
    transform = Transform(examples=example_gen.outputs["examples"], schema=schema_gen.outputs["schema"],
                          module_file=module_file)
    trainer = Trainer(module_file=module_file, custom_executor_spec=executor_spec.ExecutorClassSpec(GenericExecutor),
                      transformed_examples=transform.outputs["transformed_examples"],
                      schema=schema_gen.outputs["schema"], transform_graph=transform.outputs["transform_graph"],
                      train_args=trainer_pb2.TrainArgs(num_steps=30), eval_args=trainer_pb2.EvalArgs(num_steps=5),
                      custom_config={"max_trials": 1})
    model_resolver = resolver.Resolver(
        strategy_class=latest_blessed_model_resolver.LatestBlessedModelResolver,
        model=Channel(type=Model), model_blessing=Channel(type=ModelBlessing)).with_id("latest_blessed_model_resolver")
    eval_config = tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name="serving_default", label_key="big_tipper_xf",
                                    preprocessing_function_names=["transform_features"])],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=["company"])],
        metrics_specs=[tfma.MetricsSpec(
            thresholds={"binary_accuracy": tfma.config.MetricThreshold(
                value_threshold=tfma.GenericValueThreshold(lower_bound={"value": 0.99}))})])
    evaluator = Evaluator(examples=example_gen.outputs["examples"], model=trainer.outputs["model"],
                          baseline_model=model_resolver.outputs["model"], eval_config=eval_config)
    infra_validator = InfraValidator(
        model=trainer.outputs["model"], examples=example_gen.outputs["examples"],
        serving_spec=infra_validator_pb2.ServingSpec(tensorflow_serving=infra_validator_pb2.TensorFlowServing(
            tags=["latest"]), local_docker=infra_validator_pb2.LocalDockerConfig()),
        validation_spec=infra_validator_pb2.ValidationSpec(max_loading_time_seconds=60, num_tries=2),
        request_spec=infra_validator_pb2.RequestSpec(
            tensorflow_serving=infra_validator_pb2.TensorFlowServingRequestSpec(), num_examples=3))
    pusher = Pusher(model=trainer.outputs["model"], model_blessing=evaluator.outputs["blessing"],
                    infra_blessing=infra_validator.outputs["blessing"],
                    push_destination=pusher_pb2.PushDestination(
                        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=serving_model_dir)))
    return pipeline.Pipeline(
        pipeline_name=pipeline_name, pipeline_root=pipeline_root,
        components=[example_gen, statistics_gen, schema_gen, example_validator, transform, trainer, model_resolver,
                    evaluator, infra_validator, pusher],
        enable_cache=True, metadata_connection_config=metadata.sqlite_metadata_connection_config(metadata_path),
        beam_pipeline_args=beam_pipeline_args)


def main(_):
    BeamDagRunner().run(_create_pipeline(
        "trips_beam", "pipeline_root", FLAGS.data, FLAGS.schema, FLAGS.module, FLAGS.serving,
        os.path.join("metadata", "metadata.db"), ["--direct_running_mode=in_memory", "--direct_num_workers=1",
                                                   "--runner=DataflowRunner"]))


if __name__ == "__main__":
    absl.app.run(main)
