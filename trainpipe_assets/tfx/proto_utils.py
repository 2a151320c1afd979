"""tfx.utils.proto_utils as pipeline files use it: JSON text <-> the stand-in messages."""

from __future__ import annotations

import json


def json_to_proto(json_str: str, proto):
    proto.CopyFrom(type(proto)(**json.loads(json_str)))
    return proto


def proto_to_json(proto) -> str:
    return json.dumps(proto.to_dict(), sort_keys=True)
