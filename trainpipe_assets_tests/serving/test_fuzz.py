"""Issue 27's fuzz test: a seeded generator throws random JSON bodies (well-formed or not, in odd encodings, with
shapes near and over the limits) and random TensorProtos (any dtype number, negative and huge dims, values that do not
match their shape) at a real capturing `trainpipe serve` process, REST and gRPC, for about 20 s. No answer may be a
5xx or INTERNAL / UNKNOWN, the server's resident memory stays bounded, and it still serves and stops cleanly."""

import base64
import json
import os
import random
import time
import urllib.error
import urllib.request

import grpc
import pytest
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from trainpipe_assets_tests.serving.helpers import Server, wait_healthy
from trainpipe_assets_tests.serving.hostile_models import resident_bytes, save_shapes

SEED = int(os.environ.get("TRAINPIPE_FUZZ_SEED", "27"))
SECONDS = 20.0
MB = 1 << 20
SIGNATURES = ["serving_default", "wide", "texts", "nope", ""]
KEYS = ["examples", "x", "s", "other"]
DIMS = [-5, -1, 0, 1, 2, 3, 7, 100, 1000, 10**6, 2**31, 2**40, 2**62]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    save_shapes(root / "shapes" / "1")
    limits = ("--max-body-bytes", "200000", "--max-decoded-bytes", "4000000", "--max-instances-per-request", "1000")
    server = Server(root / "shapes", *limits, "--capture-dir", str(root / "capture"), name="shapes", grpc=True)
    wait_healthy(server)
    channel = grpc.insecure_channel(server.grpc)
    yield {"server": server, "stub": prediction_service_pb2_grpc.PredictionServiceStub(channel)}
    channel.close()
    server.stop()


def leaf(rng: random.Random):
    return rng.choice(
        [
            lambda: rng.randint(-(2**70), 2**70),
            lambda: rng.randint(-3, 3),
            lambda: rng.uniform(-1e6, 1e6),
            lambda: rng.choice([float("nan"), float("inf"), 1e308]),
            lambda: "".join(rng.choice('aé€\x00\ud7ff"\\{[') for _ in range(rng.randint(0, 8))),
            lambda: {"b64": base64.b64encode(rng.randbytes(rng.randint(0, 8))).decode()},
            lambda: {"b64": "not base64!"},
            lambda: rng.choice([True, False, None]),
        ]
    )()


def tensor(rng: random.Random, rank: int, budget: int = 40_000):
    """A rectangular (or, once in a while, ragged) nested list of one kind of leaf, of at most `budget` leaves."""
    if rank == 0:
        return leaf(rng)
    size = min(rng.choice([0, 1, 2, 3, 50, 400]), budget)
    make = leaf if rng.random() < 0.1 else None
    value = tensor(rng, rank - 1, budget // max(size, 1)) if make is None else make(rng)
    items = [value] * size
    if items and rng.random() < 0.1:
        items[-1] = tensor(rng, max(rank - 2, 0))  # ragged
    return items


def json_body(rng: random.Random) -> bytes:
    body = {}
    for key in rng.sample(["instances", "inputs", "signature_name", "examples", "context", "junk"], rng.randint(0, 3)):
        if key == "signature_name":
            body[key] = rng.choice(SIGNATURES + [7, None])
        elif key == "inputs" and rng.random() < 0.5:
            body[key] = {rng.choice(KEYS): tensor(rng, rng.randint(0, 4)) for _ in range(rng.randint(0, 2))}
        else:
            body[key] = tensor(rng, rng.randint(0, 4))
    text = json.dumps(body, ensure_ascii=rng.random() < 0.5)
    form = rng.random()
    if form < 0.1:
        return text.encode("utf-16")
    if form < 0.2:
        return b"\xef\xbb\xbf" + text.encode()
    if form < 0.3:
        return text.encode()[: rng.randint(0, len(text))]  # cut short
    if form < 0.35:
        return rng.randbytes(rng.randint(0, 300))
    return text.encode("utf-8", "surrogatepass")


def rest(root: str, rng: random.Random) -> int:
    route = rng.choice([":predict", ":predict", ":predict", ":classify", ":regress", "/versions/1:predict"])
    body = json_body(rng)[:190_000]  # within --max-body-bytes: a larger one is refused before it is all sent
    request = urllib.request.Request(f"{root}/v1/models/shapes{route}", body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def proto(rng: random.Random) -> predict_pb2.PredictRequest:
    message = predict_pb2.PredictRequest()
    message.model_spec.name = rng.choice(["shapes", "shapes", "shapes", "other"])
    message.model_spec.signature_name = rng.choice(SIGNATURES)
    for key in rng.sample(KEYS, rng.randint(0, 2)):
        t = message.inputs[key]
        t.dtype = rng.choice([1, 1, 3, 7, 7, 9, 10, 14, 19, 20, 21, 23, 0, 99, 9999, -1])
        for _ in range(rng.randint(0, 4)):
            t.tensor_shape.dim.add(size=rng.choice(DIMS))
        if rng.random() < 0.3:
            t.tensor_shape.unknown_rank = True
        values = rng.randint(0, 5)
        fill = rng.choice(["string_val", "float_val", "int_val", "int64_val", "bool_val", "tensor_content", "half_val"])
        if fill == "string_val":
            t.string_val.extend(rng.randbytes(rng.choice([0, 1, 10, 1000, 50_000])) for _ in range(values))
        elif fill == "tensor_content":
            t.tensor_content = rng.randbytes(rng.choice([0, 1, 3, 4, 8, 64, 4096]))
        elif fill == "float_val":
            t.float_val.extend(rng.uniform(-10, 10) for _ in range(values))
        elif fill == "bool_val":
            t.bool_val.extend(rng.random() < 0.5 for _ in range(values))
        else:
            getattr(t, fill).extend(rng.randint(0, 2**15) for _ in range(values))
    if rng.random() < 0.1:
        message.output_filter.append(rng.choice(["outputs", "sums", "nope"]))
    return message


def test_random_bodies_and_tensors_never_fail_the_server(served):
    server, stub = served["server"], served["stub"]
    rng = random.Random(SEED)
    before = resident_bytes(server.proc.pid)
    deadline, codes, peak = time.monotonic() + SECONDS, {}, before
    while time.monotonic() < deadline:
        status = rest(server.root, rng)
        assert 200 <= status < 500, status
        codes[status] = codes.get(status, 0) + 1
        message = proto(rng)
        try:
            stub.Predict(message, timeout=60)
            code = grpc.StatusCode.OK
        except grpc.RpcError as e:
            code = e.code()
            assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), (message, e)
        codes[code.name] = codes.get(code.name, 0) + 1
        peak = max(peak, resident_bytes(server.proc.pid))
    print(f"seed {SEED}: {codes}; resident {before / MB:.0f} MB, peak +{(peak - before) / MB:.0f} MB")
    assert sum(codes.values()) > 100 and codes.get(200) and codes.get("INVALID_ARGUMENT")
    assert peak - before < 200 * MB
    assert urllib.request.urlopen(f"{server.root}/healthz", timeout=30).status == 200
    assert "Traceback" not in server.output()
