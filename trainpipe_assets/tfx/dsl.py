"""Stand-ins for TFX's DSL: artifacts, channels, the standard components (with the argument names of
tfx/components/*/component.py), executor specs and the Pipeline (resolvers, the Importer, custom and container
components: dsl_nodes.py). They record what the pipeline file declares; nothing here runs TFX."""

from __future__ import annotations

import inspect
import sys
from typing import Any, Optional


# --- artifacts and channels ---------------------------------------------------------------------------------------
class Artifact:
    TYPE_NAME = "Artifact"

    def __init__(self, uri: str = "", split_names: Optional[list] = None, **properties):
        self.uri = uri
        self.split_names = _split_names(split_names or [])
        self.properties = properties
        for key, value in properties.items():
            setattr(self, key, value)

    @property
    def type_name(self) -> str:
        return self.TYPE_NAME

    def __repr__(self) -> str:
        return f"Artifact(type_name: {self.TYPE_NAME}, uri: {self.uri})"


def _split_names(names: list) -> str:
    return "[" + ",".join(f'"{n}"' for n in names) + "]"


ARTIFACT_TYPES = ("Examples", "ExampleStatistics", "ExampleAnomalies", "Schema", "TransformGraph", "TransformCache",
                  "HyperParameters", "TunerResults", "Model", "ModelRun", "ModelEvaluation", "ModelBlessing",
                  "InfraBlessing", "PushedModel", "InferenceResult", "ExternalArtifact", "String", "Integer",
                  "Float", "Bytes", "Boolean", "JsonValue", "ExamplesDiff")
standard_artifacts = type(sys)("tfx.types.standard_artifacts")
for _name in ARTIFACT_TYPES:
    setattr(standard_artifacts, _name, type(_name, (Artifact,), {"TYPE_NAME": _name}))


class Channel:
    """A typed stream of artifacts: a component's output (`producer`, `output_key`) or a declared Channel(type=...)."""

    def __init__(self, type: type = Artifact, producer=None, output_key: str = "", artifacts=None, **_ignored):  # noqa: A002
        self.type = type
        self.producer = producer
        self.output_key = output_key
        self._artifacts = list(artifacts or [])

    @property
    def type_name(self) -> str:
        return getattr(self.type, "TYPE_NAME", "Artifact")

    def get(self) -> list:
        """InteractiveContext: the artifacts of this output once its component ran (an empty list before)."""
        return list(self._artifacts)

    def future(self):
        return self

    def __repr__(self) -> str:
        owner = self.producer.id if self.producer else "declared"
        return f"Channel({self.type_name}, {owner}.{self.output_key})"


BaseChannel = OutputChannel = Channel


def external_input(uri: str) -> Channel:
    """tfx.utils.dsl_utils.external_input (TFX 0.2x): a folder given as a channel."""
    return Channel(type=standard_artifacts.ExternalArtifact, artifacts=[standard_artifacts.ExternalArtifact(uri=uri)])


# --- components -----------------------------------------------------------------------------------------------------
class BaseNode:
    KIND = "component"
    OUTPUTS: dict[str, str] = {}  # output key -> artifact type name
    PARAMS: tuple = ()  # the keyword arguments TFX's component accepts

    def __init__(self, **kwargs):
        unknown = [k for k in kwargs if k not in self.PARAMS]
        if unknown:
            raise TypeError(f"{type(self).__name__}.__init__() got an unexpected keyword argument {unknown[0]!r} "
                            f"(TFX's {type(self).__name__} takes {', '.join(self.PARAMS)})")
        self.exec_properties = {k: v for k, v in kwargs.items() if not isinstance(v, Channel)}
        self.inputs = {k: v for k, v in kwargs.items() if isinstance(v, Channel)}
        self._id = type(self).__name__
        self.upstream_nodes: list = []
        self.beam_pipeline_args: list = []
        self.outputs = {key: Channel(type=getattr(standard_artifacts, t), producer=self, output_key=key)
                        for key, t in self.OUTPUTS.items()}
        self.declared_at = _caller_line()

    @property
    def id(self) -> str:
        return self._id

    component_id = node_id = id

    def with_id(self, node_id: str):
        self._id = node_id
        return self

    def add_upstream_node(self, node) -> None:
        self.upstream_nodes.append(node)

    def add_upstream_nodes(self, nodes) -> None:
        self.upstream_nodes.extend(nodes)

    def add_downstream_node(self, node) -> None:
        node.upstream_nodes.append(self)

    def with_beam_pipeline_args(self, args):
        self.beam_pipeline_args = list(args)
        return self

    def with_platform_config(self, _config):
        return self

    def with_node_execution_options(self, _options):
        return self

    def param(self, name: str, default: Any = None) -> Any:
        return self.exec_properties.get(name, default)

    def dependencies(self) -> list:
        """The nodes whose outputs this one reads, then those it was told to follow."""
        found = [c.producer for c in self.inputs.values() if c.producer is not None]
        return found + [n for n in self.upstream_nodes if n not in found]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r})"


BaseComponent = BaseBeamComponent = BaseNode


def _caller_line() -> str:
    """`file:line` of the pipeline file's statement that built this node (for warnings and errors)."""
    for frame in inspect.stack()[2:]:
        if "/trainpipe_assets/tfx/" not in frame.filename:
            return f"{frame.filename}:{frame.lineno}"
    return ""


def _component(name: str, outputs: dict, params: str, kind: str = "component") -> type:
    return type(name, (BaseNode,), {"OUTPUTS": outputs, "PARAMS": tuple(params.split()), "KIND": kind})


_EXAMPLE_GEN = "input_base input_config output_config range_config custom_config input custom_executor_spec"
CsvExampleGen = _component("CsvExampleGen", {"examples": "Examples"}, _EXAMPLE_GEN)
ImportExampleGen = _component("ImportExampleGen", {"examples": "Examples"}, _EXAMPLE_GEN + " payload_format")
FileBasedExampleGen = _component("FileBasedExampleGen", {"examples": "Examples"}, _EXAMPLE_GEN)
BigQueryExampleGen = _component("BigQueryExampleGen", {"examples": "Examples"}, "query input_config output_config "
                                "range_config custom_config")
StatisticsGen = _component("StatisticsGen", {"statistics": "ExampleStatistics"},
                           "examples schema stats_options exclude_splits input_data")
SchemaGen = _component("SchemaGen", {"schema": "Schema"}, "statistics infer_feature_shape exclude_splits stats")
ImportSchemaGen = _component("ImportSchemaGen", {"schema": "Schema"}, "schema_file")
ExampleValidator = _component("ExampleValidator", {"anomalies": "ExampleAnomalies"},
                              "statistics schema exclude_splits custom_validation_config stats")
Transform = _component(
    "Transform", {"transform_graph": "TransformGraph", "transformed_examples": "Examples",
                  "updated_analyzer_cache": "TransformCache"},
    "examples schema module_file preprocessing_fn splits_config analyzer_cache materialize disable_analyzer_cache "
    "force_tf_compat_v1 custom_config disable_statistics stats_options_updater_fn input_data",
)
Tuner = _component("Tuner", {"best_hyperparameters": "HyperParameters", "tuner_results": "TunerResults"},
                   "examples schema transform_graph base_model module_file tuner_fn train_args eval_args tune_args "
                   "custom_config")
Trainer = _component("Trainer", {"model": "Model", "model_run": "ModelRun"},
                     "statistics examples transformed_examples transform_graph transform_output schema base_model "
                     "hyperparameters module_file run_fn trainer_fn train_args eval_args custom_config "
                     "custom_executor_spec")
Evaluator = _component("Evaluator", {"evaluation": "ModelEvaluation", "blessing": "ModelBlessing"},
                       "examples model baseline_model feature_slicing_spec fairness_indicator_thresholds "
                       "example_splits eval_config schema module_file module_path model_exports")
ModelValidator = _component("ModelValidator", {"blessing": "ModelBlessing"}, "examples model")
InfraValidator = _component("InfraValidator", {"blessing": "InfraBlessing"},
                            "model serving_spec examples request_spec validation_spec")
Pusher = _component("Pusher", {"pushed_model": "PushedModel"},
                    "model model_blessing infra_blessing push_destination custom_config custom_executor_spec "
                    "model_export")
BulkInferrer = _component("BulkInferrer", {"inference_result": "InferenceResult", "output_examples": "Examples"},
                          "examples model model_blessing data_spec model_spec output_example_spec")
ExampleDiff = _component("ExampleDiff", {"examples_diff": "ExamplesDiff"},
                         "examples_test examples_base config include_split_pairs")
DistributionValidator = _component("DistributionValidator", {"anomalies": "ExampleAnomalies"},
                                   "statistics baseline_statistics config include_split_pairs custom_validation_config")

STANDARD = (CsvExampleGen, ImportExampleGen, FileBasedExampleGen, BigQueryExampleGen, StatisticsGen, SchemaGen,
            ImportSchemaGen, ExampleValidator, Transform, Tuner, Trainer, Evaluator, ModelValidator, InfraValidator,
            Pusher, BulkInferrer, ExampleDiff, DistributionValidator)


class ExecutorClassSpec:
    def __init__(self, executor_class=None, **_):
        self.executor_class = executor_class


ExecutorSpec = ExecutorClassSpec
GenericExecutor = type("GenericExecutor", (), {"__doc__": "TFX's Trainer executor running run_fn (the default)."})
EstimatorExecutor = type("Executor", (), {"__doc__": "TFX's Estimator-based Trainer executor (trainer_fn)."})


class Pipeline:
    def __init__(self, pipeline_name: str, pipeline_root: str = "", components=None, enable_cache: bool = False,
                 metadata_connection_config=None, beam_pipeline_args=None, execution_mode=None, **others):
        self.pipeline_name = pipeline_name
        self.pipeline_root = str(pipeline_root)
        self.components = list(components or [])
        self.enable_cache = enable_cache
        self.metadata_connection_config = metadata_connection_config
        self.beam_pipeline_args = list(beam_pipeline_args or [])
        self.others = others
        self.declared_at = _caller_line()


def sqlite_metadata_connection_config(path: str) -> dict:
    return {"sqlite": {"filename_uri": str(path)}}


class RuntimeParameter:
    def __init__(self, name: str, ptype=None, default=None, description: str = ""):
        self.name, self.ptype, self.default = name, ptype, default
