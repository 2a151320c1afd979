"""Two real `trainpipe serve` processes on one base path, one with micro-batching: concurrent requests are merged and
answered as if alone, and a version pushed while clients are running is picked up by both without a failed request."""

import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from trainpipe_assets.core.example_reader import read_records
from trainpipe_assets.serving.client import http_json
from trainpipe_assets_tests.conftest import DAYS
from trainpipe_assets_tests.serving.helpers import Server, b64, sample, wait_healthy


@pytest.fixture(scope="module")
def servers(pipeline, tmp_path_factory):
    base = tmp_path_factory.mktemp("shared") / "trips_model"
    shutil.copytree(pipeline["home"] / "serving" / "trips_model" / "1", base / "1")
    batched = Server(
        base, "--poll-seconds", "0.5", "--enable-batching", "--max-batch-size", "16", "--batch-timeout-micros", "20000"
    )
    plain = Server(base, "--poll-seconds", "0.5", "--disable-batching")
    wait_healthy(batched, plain)
    examples = read_records([str(pipeline["home"] / "artifacts/examples" / DAYS[0] / "Split-eval" / "*.gz")])[:40]
    yield {"base": base, "batched": batched, "plain": plain, "examples": examples}
    batched.stop()
    plain.stop()


def test_concurrent_requests_are_merged_and_answered_as_alone(servers):
    examples = servers["examples"]
    assert len(examples) == 40
    predict = f"{servers['plain'].root}/v1/models/trips_model:predict"
    alone = [http_json(predict, {"instances": b64([e])}) for e in examples]
    assert all(code == 200 for code, _ in alone)
    bad = {"instances": [{"b64": "bm90IGFuIGV4YW1wbGU="}]}  # "not an example": fails the merged call it lands in
    bodies = [{"instances": b64([e])} for e in examples] + [bad, bad]
    start = threading.Barrier(len(bodies))

    def one(body):
        start.wait()
        return http_json(f"{servers['batched'].root}/v1/models/trips_model:predict", body)

    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(one, bodies))
    assert [code for code, _ in answers] == [200] * len(examples) + [400, 400]
    for (_, merged), (_, single) in zip(answers, alone):
        assert merged["predictions"][0][0] == pytest.approx(single["predictions"][0][0], abs=1e-6)
    text = servers["batched"].metrics()
    calls, of_one = sample(text, "trainpipe_batch_size_count"), sample(text, "trainpipe_batch_size_bucket", le="1.0")
    assert calls - of_one >= 1, text  # at least one signature call ran more than one request
    assert sample(text, "trainpipe_batch_size_sum") >= len(examples)


def test_both_servers_pick_up_a_pushed_version_without_a_failed_request(servers):
    base, roots = servers["base"], [servers["batched"].root, servers["plain"].root]
    body = {"instances": b64(servers["examples"][:1])}
    stop, failures, done = threading.Event(), [], {root: 0 for root in roots}

    def client(root):
        while not stop.is_set():
            code, answer = http_json(f"{root}/v1/models/trips_model:predict", body)  # 0: refused, reset, not JSON
            if code != 200:
                failures.append((root, code, answer))
            done[root] += 1

    clients = [threading.Thread(target=client, args=(root,)) for root in roots for _ in range(2)]
    for thread in clients:
        thread.start()
    time.sleep(0.5)
    shutil.copytree(base / "1", base / ".tmp-2")
    (base / ".tmp-2").rename(base / "2")
    deadline, seen = time.monotonic() + 90, {}
    while time.monotonic() < deadline and len(seen) < len(roots):
        for root in roots:
            status = http_json(f"{root}/v1/models/trips_model")[1]["model_version_status"]
            if status[0]["version"] == "2":
                seen[root] = [s["version"] for s in status]
        time.sleep(0.2)
    stop.set()
    for thread in clients:
        thread.join(timeout=60)
    assert seen == {root: ["2"] for root in roots}  # latest:1, the default policy: 1 is unloaded as 2 swaps in
    assert not failures and all(done.values()), (failures[:3], done)
