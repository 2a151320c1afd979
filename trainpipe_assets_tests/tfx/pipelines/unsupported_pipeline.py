"""A pipeline with what has no counterpart here: a custom @component whose output the Trainer reads (an error), a
container component and ExampleDiff (warnings), on a Kubeflow runner (a warning). Flags: --data --module."""
import sys

from tfx import v1 as tfx
from tfx.dsl.component.experimental.annotations import OutputArtifact
from tfx.dsl.component.experimental.decorators import component

data, module = sys.argv[1], sys.argv[2]


@component
def MakeHyperparameters(hyperparameters: OutputArtifact[tfx.types.standard_artifacts.HyperParameters]):
    pass


example_gen = tfx.components.CsvExampleGen(input_base=data)
statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
schema_gen = tfx.components.SchemaGen(statistics=statistics_gen.outputs["statistics"])
transform = tfx.components.Transform(examples=example_gen.outputs["examples"], schema=schema_gen.outputs["schema"],
                                     module_file=module)
made = MakeHyperparameters()
trainer = tfx.components.Trainer(module_file=module, examples=transform.outputs["transformed_examples"],
                                 transform_graph=transform.outputs["transform_graph"],
                                 hyperparameters=made.outputs["hyperparameters"])
notify = tfx.dsl.experimental.create_container_component(name="Notify", image="busybox", command=["echo"])(
    model=trainer.outputs["model"])
diff = tfx.components.ExampleDiff(examples_test=example_gen.outputs["examples"],
                                  examples_base=example_gen.outputs["examples"])
tfx.orchestration.experimental.KubeflowV2DagRunner(config=None).run(tfx.dsl.Pipeline(
    pipeline_name="unsupported", pipeline_root="root",
    components=[example_gen, statistics_gen, schema_gen, transform, made, trainer, notify, diff]))
