"""Real `trainpipe serve` processes for the serving tests: start several at once, then wait for all of them."""

import base64
import http.client
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

import pytest
from prometheus_client.parser import text_string_to_metric_families

from trainpipe_assets.serving.client import free_port, http_json


def post_raw(url: str, body) -> tuple[int, dict]:
    """POST bytes as they are, which http_json cannot (it sends JSON): malformed or oversized bodies. A list of
    chunks goes with chunked transfer encoding, so without a content-length."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        chunked = isinstance(body, list)
        connection.request("POST", parts.path, body=iter(body) if chunked else body, encode_chunked=chunked)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus text exposition, e.g. sample(text, "trainpipe_batch_size_count")."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    raise KeyError(f"no sample {name}{labels or ''} in:\n{text}")


def b64(records):
    return [{"b64": base64.b64encode(r).decode()} for r in records]


class Server:
    """`trainpipe serve` on `base` as model `name`, or (base None) on the models of a --model-config-file in `args`;
    with grpc, also on a gRPC port (self.grpc is its host:port)."""

    def __init__(self, base: Optional[Path], *args: str, name: str = "trips_model", grpc: bool = False):
        port = free_port()
        self.root = f"http://127.0.0.1:{port}"
        self.grpc = None
        if grpc:
            grpc_port = next(p for p in iter(free_port, None) if p != port)
            self.grpc, args = f"127.0.0.1:{grpc_port}", (*args, "--grpc-port", str(grpc_port))
        model = [] if base is None else ["--model-name", name, "--model-base-path", str(base)]
        # Output to a file, not a pipe nobody reads (a full pipe would block the server).
        self.log = Path(tempfile.mkstemp(prefix=f"trainpipe-serve-{port}-", suffix=".log")[1])
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "trainpipe"),
                    "serve",
                    *model,
                    "--port",
                    str(port),
                    *args,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def metrics(self) -> str:
        return urllib.request.urlopen(f"{self.root}/metrics", timeout=30).read().decode()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_healthy(*servers: Server, seconds: float = 90) -> None:
    pending, deadline = list(servers), time.monotonic() + seconds
    while pending and time.monotonic() < deadline and all(s.proc.poll() is None for s in pending):
        for server in list(pending):
            if http_json(f"{server.root}/healthz")[0] == 200:  # 0 while nothing listens yet
                pending.remove(server)
        time.sleep(0.25)
    if pending:
        for server in servers:
            server.stop()
        pytest.fail("server did not become healthy: " + pending[0].output()[-2000:])


def wait_for(condition, what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds} s: {what}")
        time.sleep(0.2)


def save_scorer(path: Path) -> None:
    """A TF1-style SavedModel at `path` with classify (serving_default) and regress ("regression") signatures on
    serialized tf.Examples with a float feature x: scores [1 - s, s] for classes ["no", "yes"], s = sigmoid(2x);
    regression 2x."""
    import tensorflow as tf

    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        serialized = tf.compat.v1.placeholder(tf.string, [None], name="tf_example")
        x = tf.io.parse_example(serialized, {"x": tf.io.FixedLenFeature([1], tf.float32)})["x"]
        score = tf.sigmoid(2.0 * x)
        scores = tf.concat([1.0 - score, score], axis=1)
        classes = tf.tile(tf.constant([["no", "yes"]]), [tf.shape(scores)[0], 1])
        builder = tf.compat.v1.saved_model.Builder(str(path))
        builder.add_meta_graph_and_variables(
            session,
            ["serve"],
            signature_def_map={
                "serving_default": tf.compat.v1.saved_model.classification_signature_def(serialized, classes, scores),
                "regression": tf.compat.v1.saved_model.regression_signature_def(serialized, 2.0 * x),
            },
        )
        builder.save()


def save_echo(path: Path) -> None:
    """A TF2 SavedModel at `path` whose serving_default takes text (string) and x (float32 [n, 2]) and returns the
    text as "label" and as "label_bytes", and the sum of x as "total"."""
    import tensorflow as tf

    class Echo(tf.Module):
        @tf.function(
            input_signature=[tf.TensorSpec([None], tf.string, name="text"), tf.TensorSpec([None, 2], tf.float32)]
        )
        def serve(self, text, x):
            return {"label": text, "label_bytes": text, "total": tf.reduce_sum(x, axis=1)}

    module = Echo()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})


def model_config(models: dict) -> str:
    """A ModelServerConfig text: {name: (base_path, extra text inside config {})}."""
    configs = "".join(
        f'  config {{\n    name: "{name}"\n    base_path: "{base}"\n    model_platform: "tensorflow"\n'
        f"    {extra}\n  }}\n"
        for name, (base, extra) in models.items()
    )
    return f"model_config_list {{\n{configs}}}\n"
