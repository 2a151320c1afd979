"""Stand-ins for the TFX protos a pipeline file builds (`tfx.proto.*_pb2`, `tfx.v1.proto`): messages that accept the
fields TFX's .proto files declare (tfx/proto/*.proto), nested messages as messages or dicts, and refuse any other
field the way protobuf does (`Protocol message TrainArgs has no "num_step" field.`). They only record values."""

from __future__ import annotations

import types
from typing import Any

_REPEATED = "repeated"  # a repeated scalar field
_MAP = "map"


class Message:
    """A protobuf-like message. `FIELDS`: name -> default scalar, _REPEATED, _MAP, a Message class, or [MessageClass]
    (repeated messages)."""

    FIELDS: dict[str, Any] = {}

    def __init__(self, **fields):
        object.__setattr__(self, "_values", {})
        for name, value in fields.items():
            setattr(self, name, value)

    def __setattr__(self, name: str, value) -> None:
        kind = self._kind(name)
        if isinstance(kind, list):
            value = [_as_message(kind[0], v, name) for v in (value or [])]
        elif isinstance(kind, type) and issubclass(kind, Message):
            value = _as_message(kind, value, name)
        elif kind == _REPEATED:
            value = list(value or [])
        elif kind == _MAP:
            value = dict(value or {})
        self._values[name] = value

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        kind = self._kind(name)
        if name in self._values:
            return self._values[name]
        if isinstance(kind, list) or kind == _REPEATED:
            return self._values.setdefault(name, [])
        if kind == _MAP:
            return self._values.setdefault(name, {})
        if isinstance(kind, type) and issubclass(kind, Message):
            return kind()  # an unset message reads as empty, as in protobuf
        return kind

    def _kind(self, name: str):
        if name not in self.FIELDS:
            raise ValueError(f'Protocol message {type(self).__name__} has no "{name}" field.')
        return self.FIELDS[name]

    def HasField(self, name: str) -> bool:  # noqa: N802 (protobuf's name)
        self._kind(name)
        return name in self._values

    def CopyFrom(self, other: "Message") -> None:  # noqa: N802
        self._values.clear()
        self._values.update(other._values)

    def to_dict(self) -> dict:
        def plain(v):
            if isinstance(v, Message):
                return v.to_dict()
            if isinstance(v, list):
                return [plain(x) for x in v]
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            return v

        return {k: plain(v) for k, v in self._values.items()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()})"

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and self.to_dict() == other.to_dict()


def _as_message(cls: type, value, field: str):
    if value is None or isinstance(value, cls):
        return value
    if isinstance(value, dict):
        return cls(**value)
    if cls.__name__.endswith("Value") and hasattr(value, "value"):  # google.protobuf wrappers
        return cls(value=value.value)
    if cls.__name__.endswith("Value") and isinstance(value, (int, float, bool, str)):
        return cls(value=value)
    raise TypeError(f"field {field}: expected {cls.__name__} (or a dict of its fields), got {type(value).__name__}")


def message(name: str, fields: dict, **nested) -> type:
    cls = type(name, (Message,), {"FIELDS": fields, **nested})
    return cls


def module(name: str, **members) -> types.SimpleNamespace:
    return types.SimpleNamespace(__name__=name, **members)


# --- google.protobuf wrappers (TFMA's thresholds: lower_bound={'value': 0.6}) -------------------------------------
DoubleValue = message("DoubleValue", {"value": 0.0})
BoolValue = message("BoolValue", {"value": False})
Int32Value = message("Int32Value", {"value": 0})

# --- tfx/proto/example_gen.proto ----------------------------------------------------------------------------------
_InputSplit = message("Split", {"name": "", "pattern": ""})
Input = message("Input", {"splits": [_InputSplit]}, Split=_InputSplit)
_SplitConfigSplit = message("Split", {"name": "", "hash_buckets": 0})
SplitConfig = message(
    "SplitConfig", {"splits": [_SplitConfigSplit], "partition_feature_name": ""}, Split=_SplitConfigSplit
)
Output = message("Output", {"split_config": SplitConfig})
CustomConfig = message("CustomConfig", {"custom_config": None})
PAYLOAD_FORMATS = {"FORMAT_UNSPECIFIED": 0, "FORMAT_TF_EXAMPLE": 6, "FORMAT_TF_SEQUENCE_EXAMPLE": 7,
                   "FORMAT_PROTO": 11, "FORMAT_PARQUET": 15}
FILE_FORMATS = {"FILE_FORMAT_UNSPECIFIED": 0, "FORMAT_TFRECORDS_GZIP": 5, "FILE_FORMAT_PARQUET": 16}
example_gen_pb2 = module(
    "example_gen_pb2", Input=Input, Output=Output, SplitConfig=SplitConfig, CustomConfig=CustomConfig,
    PayloadFormat=types.SimpleNamespace(**PAYLOAD_FORMATS), FileFormat=types.SimpleNamespace(**FILE_FORMATS),
    **PAYLOAD_FORMATS, **FILE_FORMATS,
)

# --- trainer.proto, tuner.proto, transform.proto, range_config.proto, evaluator.proto ------------------------------
TrainArgs = message("TrainArgs", {"splits": _REPEATED, "num_steps": 0})
EvalArgs = message("EvalArgs", {"splits": _REPEATED, "num_steps": 0})
trainer_pb2 = module("trainer_pb2", TrainArgs=TrainArgs, EvalArgs=EvalArgs)
TuneArgs = message("TuneArgs", {"num_parallel_trials": 0})
tuner_pb2 = module("tuner_pb2", TuneArgs=TuneArgs)
SplitsConfig = message("SplitsConfig", {"analyze": _REPEATED, "transform": _REPEATED})
transform_pb2 = module("transform_pb2", SplitsConfig=SplitsConfig)
StaticRange = message("StaticRange", {"start_span_number": 0, "end_span_number": 0})
RollingRange = message("RollingRange", {"start_span_number": 0, "num_spans": 0})
RangeConfig = message("RangeConfig", {"static_range": StaticRange, "rolling_range": RollingRange})
range_config_pb2 = module("range_config_pb2", StaticRange=StaticRange, RollingRange=RollingRange,
                          RangeConfig=RangeConfig)
SingleSlicingSpec = message("SingleSlicingSpec", {"column_for_slicing": _REPEATED})
FeatureSlicingSpec = message("FeatureSlicingSpec", {"specs": [SingleSlicingSpec]})
evaluator_pb2 = module("evaluator_pb2", SingleSlicingSpec=SingleSlicingSpec, FeatureSlicingSpec=FeatureSlicingSpec)

# --- pusher.proto -------------------------------------------------------------------------------------------------
VERSIONING = {"AUTO": 0, "UNIX_TIMESTAMP": 1}
_Filesystem = message("Filesystem", {"base_directory": "", "versioning": 0})
PushDestination = message("PushDestination", {"filesystem": _Filesystem}, Filesystem=_Filesystem)
pusher_pb2 = module("pusher_pb2", PushDestination=PushDestination, Versioning=types.SimpleNamespace(**VERSIONING),
                    **VERSIONING)

# --- infra_validator.proto ----------------------------------------------------------------------------------------
TensorFlowServing = message("TensorFlowServing", {"image_name": "", "tags": _REPEATED, "digests": _REPEATED})
LocalDockerConfig = message("LocalDockerConfig", {"client_base_url": "", "client_api_version": "",
                                                  "client_timeout_seconds": 0, "host_ip_address": ""})
KubernetesConfig = message("KubernetesConfig", {"service_account_name": "", "active_deadline_seconds": 0,
                                                "serving_pod_overrides": None})
ServingSpec = message("ServingSpec", {"tensorflow_serving": TensorFlowServing, "local_docker": LocalDockerConfig,
                                      "kubernetes": KubernetesConfig, "model_name": ""})
ValidationSpec = message("ValidationSpec", {"max_loading_time_seconds": 0, "num_tries": 0})
TensorFlowServingRequestSpec = message("TensorFlowServingRequestSpec", {"tag_set": _REPEATED,
                                                                        "signature_names": _REPEATED})
RequestSpec = message("RequestSpec", {"tensorflow_serving": TensorFlowServingRequestSpec, "split_name": "",
                                      "num_examples": 0, "make_warmup": False})
infra_validator_pb2 = module(
    "infra_validator_pb2", ServingSpec=ServingSpec, TensorFlowServing=TensorFlowServing,
    LocalDockerConfig=LocalDockerConfig, KubernetesConfig=KubernetesConfig, ValidationSpec=ValidationSpec,
    RequestSpec=RequestSpec, TensorFlowServingRequestSpec=TensorFlowServingRequestSpec,
)

# --- bulk_inferrer.proto ------------------------------------------------------------------------------------------
BulkModelSpec = message("ModelSpec", {"model_signature_name": _REPEATED, "tag": _REPEATED})
DataSpec = message("DataSpec", {"example_splits": _REPEATED})
PredictOutputCol = message("PredictOutputCol", {"output_key": "", "output_column": ""})
PredictOutput = message("PredictOutput", {"output_columns": [PredictOutputCol]})
ClassifyOutput = message("ClassifyOutput", {"label_column": "", "score_column": ""})
RegressOutput = message("RegressOutput", {"value_column": ""})
OutputColumnsSpec = message("OutputColumnsSpec", {"signature_name": "", "classify_output": ClassifyOutput,
                                                  "regress_output": RegressOutput, "predict_output": PredictOutput})
OutputExampleSpec = message("OutputExampleSpec", {"output_columns_spec": [OutputColumnsSpec]})
bulk_inferrer_pb2 = module(
    "bulk_inferrer_pb2", ModelSpec=BulkModelSpec, DataSpec=DataSpec, OutputExampleSpec=OutputExampleSpec,
    OutputColumnsSpec=OutputColumnsSpec, ClassifyOutput=ClassifyOutput, RegressOutput=RegressOutput,
    PredictOutput=PredictOutput, PredictOutputCol=PredictOutputCol,
)

PB2_MODULES = {
    "example_gen_pb2": example_gen_pb2, "trainer_pb2": trainer_pb2, "tuner_pb2": tuner_pb2,
    "transform_pb2": transform_pb2, "range_config_pb2": range_config_pb2, "evaluator_pb2": evaluator_pb2,
    "pusher_pb2": pusher_pb2, "infra_validator_pb2": infra_validator_pb2, "bulk_inferrer_pb2": bulk_inferrer_pb2,
}


def v1_proto_names() -> dict:
    """What `tfx.v1.proto` exports (tfx/v1/proto/__init__.py): the messages of every pb2 module by their own name."""
    names: dict = {}
    for pb2 in PB2_MODULES.values():
        names.update({k: v for k, v in vars(pb2).items() if not k.startswith("_")})
    names.pop("ModelSpec")
    names["ModelSpec"] = BulkModelSpec
    return names
