"""The import paths of `tfx` and `tensorflow_model_analysis` that pipeline files, notebooks and module files use, in
both generations (the 1.x module paths of TFX's examples and `from tfx import v1 as tfx`), served by the stand-ins
when the real packages are not importable. Registered in sys.modules; importing them loads no TensorFlow."""

from __future__ import annotations

import importlib.util
import sys
import types

SHIM_MARKER = "__trainpipe_shim__"


def _module(name: str, **attrs) -> types.ModuleType:
    module = sys.modules.get(name)
    if module is None or not getattr(module, SHIM_MARKER, False):
        module = types.ModuleType(name, f"trainpipe's stand-in for {name} (the real package is not installed)")
        module.__path__ = []  # a package: submodules resolve through sys.modules
        setattr(module, SHIM_MARKER, True)
        sys.modules[name] = module
    module.__dict__.update(attrs)
    parent, _, leaf = name.rpartition(".")
    if parent:
        setattr(_module(parent), leaf, module)
    return module


def _absent(name: str) -> bool:
    if name in sys.modules:
        return bool(getattr(sys.modules[name], SHIM_MARKER, False))
    return importlib.util.find_spec(name) is None


def install_tfx() -> bool:
    """Serve `tfx` unless the real TFX is importable; True when the stand-in is in use."""
    if not _absent("tfx"):
        return False
    if getattr(sys.modules.get("tfx"), "__trainpipe_complete__", False):
        return True
    from trainpipe_assets.module.api import DataAccessor, FnArgs, TrainerFnArgs, TunerFnResult
    from trainpipe_assets.tfx import dsl, dsl_nodes, protos, runners
    from trainpipe_assets.tfx.interactive import InteractiveContext, export_to_pipeline
    from trainpipe_assets.tfx.proto_utils import json_to_proto, proto_to_json

    fn = {"FnArgs": FnArgs, "TunerFnResult": TunerFnResult, "DataAccessor": DataAccessor}
    standard = {c.__name__: c for c in dsl.STANDARD}
    _module("tfx", __version__="1.16.0+trainpipe")
    # tfx.components (1.x) and the homes of each component and of the module-file contract
    _module("tfx.components", **standard, **fn)
    _module("tfx.components.example_gen.csv_example_gen.component", CsvExampleGen=dsl.CsvExampleGen)
    _module("tfx.components.example_gen.import_example_gen.component", ImportExampleGen=dsl.ImportExampleGen)
    _module("tfx.components.trainer.fn_args_utils", FnArgs=FnArgs, DataAccessor=DataAccessor)
    _module("tfx.components.trainer.executor", TrainerFnArgs=TrainerFnArgs, FnArgs=FnArgs,
            GenericExecutor=dsl.GenericExecutor, Executor=dsl.EstimatorExecutor)
    _module("tfx.components.trainer.component", Trainer=dsl.Trainer)
    _module("tfx.components.tuner.component", TunerFnResult=TunerFnResult, Tuner=dsl.Tuner)
    _module("tfx.components.evaluator.component", Evaluator=dsl.Evaluator)
    _module("tfx.components.pusher.component", Pusher=dsl.Pusher)
    _module("tfx.components.transform.component", Transform=dsl.Transform)
    spec = {"ExecutorClassSpec": dsl.ExecutorClassSpec, "ExecutorSpec": dsl.ExecutorSpec}
    _module("tfx.components.base.executor_spec", **spec)  # the old home
    _module("tfx.dsl.components.base.executor_spec", **spec)
    _module("tfx.dsl.components.base.base_component", BaseComponent=dsl.BaseComponent)
    _module("tfx.dsl.components.base.base_node", BaseNode=dsl.BaseNode)
    # resolvers, importer, custom components
    _module("tfx.dsl.components.common.resolver", Resolver=dsl_nodes.Resolver,
            ResolverStrategy=dsl_nodes.ResolverStrategy)
    _module("tfx.dsl.components.common.importer", Importer=dsl_nodes.Importer)
    _module("tfx.dsl.experimental.latest_blessed_model_resolver",
            LatestBlessedModelResolver=dsl_nodes.LatestBlessedModelResolver)
    _module("tfx.dsl.experimental.latest_artifacts_resolver",
            LatestArtifactsResolver=dsl_nodes.LatestArtifactsResolver)
    _module("tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy",
            LatestBlessedModelStrategy=dsl_nodes.LatestBlessedModelStrategy)
    _module("tfx.dsl.input_resolution.strategies.latest_artifact_strategy",
            LatestArtifactStrategy=dsl_nodes.LatestArtifactStrategy)
    _module("tfx.dsl.input_resolution.strategies.span_range_strategy",
            SpanRangeStrategy=dsl_nodes.SpanRangeStrategy)
    annotations = {n: _Annotation(n) for n in ("InputArtifact", "OutputArtifact", "Parameter", "OutputDict",
                                                "BeamComponentParameter", "AsyncOutputArtifact")}
    _module("tfx.dsl.component.experimental.annotations", **annotations)
    _module("tfx.dsl.component.experimental.decorators", component=dsl_nodes.component)
    _module("tfx.dsl.component.experimental.container_component",
            create_container_component=dsl_nodes.create_container_component)
    _module("tfx.dsl.component.experimental.placeholders", InputValuePlaceholder=str, InputUriPlaceholder=str,
            OutputUriPlaceholder=str)
    # orchestration
    _module("tfx.orchestration.pipeline", Pipeline=dsl.Pipeline)
    _module("tfx.orchestration.metadata", sqlite_metadata_connection_config=dsl.sqlite_metadata_connection_config)
    _module("tfx.orchestration.data_types", RuntimeParameter=dsl.RuntimeParameter)
    _module("tfx.orchestration.beam.beam_dag_runner", BeamDagRunner=runners.BeamDagRunner)
    _module("tfx.orchestration.local.local_dag_runner", LocalDagRunner=runners.LocalDagRunner)
    _module("tfx.orchestration.airflow.airflow_dag_runner", AirflowDagRunner=runners.AirflowDagRunner,
            AirflowPipelineConfig=runners.AirflowPipelineConfig)
    _module("tfx.orchestration.kubeflow.kubeflow_dag_runner", KubeflowDagRunner=runners.KubeflowDagRunner,
            KubeflowDagRunnerConfig=runners.KubeflowDagRunnerConfig,
            get_default_kubeflow_metadata_config=runners.get_default_kubeflow_metadata_config)
    _module("tfx.orchestration.kubeflow.v2.kubeflow_v2_dag_runner", KubeflowV2DagRunner=runners.KubeflowV2DagRunner,
            KubeflowV2DagRunnerConfig=runners.KubeflowV2DagRunnerConfig)
    _module("tfx.orchestration.experimental.interactive.interactive_context", InteractiveContext=InteractiveContext)
    _module("tfx.orchestration.experimental.interactive.export_templates", export_to_pipeline=export_to_pipeline)
    # protos, types, utils
    for name, pb2 in protos.PB2_MODULES.items():
        _module(f"tfx.proto.{name}", **{k: v for k, v in vars(pb2).items() if not k.startswith("__")})
    artifacts = {n: getattr(dsl.standard_artifacts, n) for n in dsl.ARTIFACT_TYPES}
    _module("tfx.types.standard_artifacts", **artifacts)
    _module("tfx.types.channel", Channel=dsl.Channel, BaseChannel=dsl.BaseChannel)
    _module("tfx.types.artifact", Artifact=dsl.Artifact)
    _module("tfx.types", Channel=dsl.Channel, BaseChannel=dsl.BaseChannel, Artifact=dsl.Artifact)
    _module("tfx.utils.dsl_utils", external_input=dsl.external_input)
    _module("tfx.utils.proto_utils", json_to_proto=json_to_proto, proto_to_json=proto_to_json)
    _install_v1(fn, standard, artifacts, annotations, InteractiveContext)
    sys.modules["tfx"].__trainpipe_complete__ = True
    return True


def _install_v1(fn, standard, artifacts, annotations, interactive_context) -> None:
    from trainpipe_assets.tfx import dsl, dsl_nodes, protos, runners

    public = {k: v for k, v in standard.items() if k not in ("FileBasedExampleGen", "ModelValidator")}
    _module("tfx.v1.components", **public, **fn)
    _module("tfx.v1.dsl", Pipeline=dsl.Pipeline, Resolver=dsl_nodes.Resolver, Channel=dsl.Channel,
            Importer=dsl_nodes.Importer, Artifact=dsl.Artifact)
    _module("tfx.v1.dsl.components", component=dsl_nodes.component, **annotations)
    _module("tfx.v1.dsl.experimental", LatestBlessedModelStrategy=dsl_nodes.LatestBlessedModelStrategy,
            LatestArtifactStrategy=dsl_nodes.LatestArtifactStrategy, SpanRangeStrategy=dsl_nodes.SpanRangeStrategy,
            ResolverStrategy=dsl_nodes.ResolverStrategy, RuntimeParameter=dsl.RuntimeParameter,
            create_container_component=dsl_nodes.create_container_component)
    _module("tfx.v1.orchestration", LocalDagRunner=runners.LocalDagRunner)
    _module("tfx.v1.orchestration.metadata", sqlite_metadata_connection_config=dsl.sqlite_metadata_connection_config)
    _module("tfx.v1.orchestration.experimental", KubeflowV2DagRunner=runners.KubeflowV2DagRunner,
            KubeflowV2DagRunnerConfig=runners.KubeflowV2DagRunnerConfig,
            KubeflowDagRunner=runners.KubeflowDagRunner, KubeflowDagRunnerConfig=runners.KubeflowDagRunnerConfig,
            get_default_kubeflow_metadata_config=runners.get_default_kubeflow_metadata_config,
            InteractiveContext=interactive_context)
    _module("tfx.v1.proto", **protos.v1_proto_names())
    _module("tfx.v1.types", Channel=dsl.Channel, BaseChannel=dsl.BaseChannel, BaseComponent=dsl.BaseComponent,
            BaseNode=dsl.BaseNode)
    _module("tfx.v1.types.standard_artifacts", **artifacts)
    _module("tfx.v1.utils")


def install_tfma() -> bool:
    """Serve `tensorflow_model_analysis` (EvalConfig and its parts) unless the real TFMA is importable."""
    if not _absent("tensorflow_model_analysis"):
        return False
    from trainpipe_assets.tfx import tfma

    names = {k: v for k, v in vars(tfma.config).items()}
    _module("tensorflow_model_analysis", **names, config=tfma.config, metrics=tfma.metrics,
            __version__="0.46.0+trainpipe")
    _module("tensorflow_model_analysis.proto.config_pb2", **names)
    _module("tensorflow_model_analysis.metrics", **vars(tfma.metrics))
    return True


class _Annotation:
    """InputArtifact[Examples], Parameter[int], OutputDict(...): accepted, not interpreted."""

    def __init__(self, name: str):
        self.name = name

    def __getitem__(self, item):
        return self

    def __call__(self, *args, **kwargs):
        return self
