"""TF Serving's status and metadata messages (tensorflow-serving-api protos), built once for gRPC and REST alike, and
their REST JSON exactly as TF Serving writes it (tensorflow_serving/model_servers/http_rest_api_util.cc):

* status: GetModelStatusResponse as JSON with every primitive field printed (its fields carry snake_case json_names):
  {"model_version_status": [{"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", ...}}]};
* metadata: {"model_spec": {...}, "metadata": {"signature_def": <SignatureDefMap>}} with proto field names and every
  primitive field printed. TF Serving unpacks the Any holding the SignatureDefMap before writing it, so the REST body
  has no "@type" (the gRPC answer keeps the Any: type.googleapis.com/tensorflow.serving.SignatureDefMap). The
  SignatureDefs are saved_model.pb's own: real tensor names (serving_default_examples:0), DataType enum names
  (DT_FLOAT), and __saved_model_init_op, as TF Serving lists it."""

from __future__ import annotations

from typing import Optional

from trainpipe_assets.serving.codec import ApiError
from trainpipe_assets.serving.model_store import LoadedVersion

SIGNATURE_DEF = "signature_def"


def message_to_dict(message, proto_names: bool = False) -> dict:
    """json_format.MessageToDict with every primitive field printed (C++'s always_print_primitive_fields)."""
    from google.protobuf import json_format

    try:
        return json_format.MessageToDict(
            message, preserving_proto_field_name=proto_names, always_print_fields_with_no_presence=True
        )
    except TypeError:  # protobuf before 5.26 names it differently
        return json_format.MessageToDict(
            message, preserving_proto_field_name=proto_names, including_default_value_fields=True
        )


def fill_model_spec(spec, name: str, version: int, signature_name: Optional[str] = None) -> None:
    spec.name = name
    spec.version.value = version
    if signature_name is not None:
        spec.signature_name = signature_name


def status_response(versions: list[LoadedVersion]):
    import tensorflow  # noqa: F401  (first: see grpc_service)
    from tensorflow_serving.apis import get_model_status_pb2

    response = get_model_status_pb2.GetModelStatusResponse()
    for loaded in versions:
        entry = response.model_version_status.add()
        entry.version = loaded.version
        entry.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        entry.status.SetInParent()  # error_code OK, error_message "": printed, as TF Serving prints them
    return response


def metadata_response(name: str, loaded: LoadedVersion, fields: tuple[str, ...] = (SIGNATURE_DEF,)):
    """GetModelMetadataResponse; TF Serving knows one metadata field, signature_def (anything else is a 400)."""
    import tensorflow  # noqa: F401  (first: see grpc_service)
    from tensorflow_serving.apis import get_model_metadata_pb2

    if not fields:
        raise ApiError(400, "GetModelMetadataRequest must specify at least one metadata_field")
    unknown = sorted(set(fields) - {SIGNATURE_DEF})
    if unknown:
        raise ApiError(400, f"Metadata field {unknown[0]} is not supported (only {SIGNATURE_DEF})")
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    fill_model_spec(response.model_spec, name, loaded.version)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    for key, signature in loaded.signature_defs.items():
        signatures.signature_def[key].CopyFrom(signature)
    response.metadata[SIGNATURE_DEF].Pack(signatures)
    return response


def status_json(response) -> dict:
    return message_to_dict(response)


def metadata_json(response) -> dict:
    from tensorflow_serving.apis import get_model_metadata_pb2

    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[SIGNATURE_DEF].Unpack(signatures)
    return {
        "model_spec": message_to_dict(response.model_spec, proto_names=True),
        "metadata": {SIGNATURE_DEF: message_to_dict(signatures, proto_names=True)},
    }
