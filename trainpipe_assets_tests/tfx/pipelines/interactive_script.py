"""TFX's interactive way, one context.run at a time, ending with context.run(trainer) before the Tuner ran.
Args: DATA_DIR MODULE_FILE."""
import os
import sys

from tfx.components import CsvExampleGen, SchemaGen, StatisticsGen, Trainer, Transform, Tuner
from tfx.components.trainer.executor import GenericExecutor
from tfx.dsl.components.base import executor_spec
from tfx.orchestration.experimental.interactive.interactive_context import InteractiveContext
from tfx.proto import trainer_pb2

data, module = sys.argv[1], sys.argv[2]
context = InteractiveContext(pipeline_name="trips_interactive")
example_gen = CsvExampleGen(input_base=data)
context.run(example_gen)
uri = example_gen.outputs["examples"].get()[0].uri
print("EXAMPLES", uri, sorted(os.listdir(uri)))
statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])
context.run(statistics_gen)
context.show(statistics_gen.outputs["statistics"])
schema_gen = SchemaGen(statistics=statistics_gen.outputs["statistics"])
transform = Transform(examples=example_gen.outputs["examples"], schema=schema_gen.outputs["schema"],
                      module_file=module)
context.run(transform)
print("TRANSFORM", sorted(os.listdir(transform.outputs["transform_graph"].get()[0].uri)))
tuner = Tuner(module_file=module, examples=transform.outputs["transformed_examples"],
              transform_graph=transform.outputs["transform_graph"], train_args=trainer_pb2.TrainArgs(num_steps=8),
              eval_args=trainer_pb2.EvalArgs(num_steps=5), custom_config={"max_trials": 1})
trainer = Trainer(module_file=module, custom_executor_spec=executor_spec.ExecutorClassSpec(GenericExecutor),
                  transformed_examples=transform.outputs["transformed_examples"],
                  transform_graph=transform.outputs["transform_graph"], schema=schema_gen.outputs["schema"],
                  hyperparameters=tuner.outputs["best_hyperparameters"],
                  train_args=trainer_pb2.TrainArgs(num_steps=30), eval_args=trainer_pb2.EvalArgs(num_steps=5))
context.run(trainer)
print("MODEL", sorted(os.listdir(trainer.outputs["model"].get()[0].uri)))
