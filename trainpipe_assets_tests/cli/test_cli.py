import json
import os
import re
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey, DagsterInstance, RunsFilter

from trainpipe_assets.cli import main
from trainpipe_assets.cli.runs import code_location

REPO = Path(__file__).resolve().parents[2]


def test_simulate_writes_one_file_per_day(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRAINPIPE_HOME", str(tmp_path))
    assert main(["simulate", "--days", "3", "--rows-per-day", "20", "--end", "2024-03-03", "--seed", "4"]) == 0
    files = sorted(p.name for p in (tmp_path / "landing").iterdir())
    assert files == ["trips_2024-03-01.csv", "trips_2024-03-02.csv", "trips_2024-03-03.csv"]
    assert (tmp_path / "landing" / files[0]).read_text().count("\n") == 21
    assert "wrote 3 files" in capsys.readouterr().out


def test_bad_arguments_are_reported_without_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRAINPIPE_HOME", str(tmp_path))
    assert main(["simulate", "--days", "0", "--rows-per-day", "5"]) == 2
    assert "trainpipe simulate: error: --days and --rows-per-day must be >= 1" in capsys.readouterr().err


# What a newcomer saw before (issue 19): TensorFlow's C++ log, absl, Python warnings, Dagster's log lines and traces.
NOISE = (
    r"oneDNN custom operations",
    r"cuda drivers|cuInit",
    r"TF_USE_LEGACY_KERAS",
    r"Resource module is not available",
    r"STEP_WORKER_STARTED|STEP_START|DEBUG",
    r"Traceback \(most recent call last\)",
    r"DagsterAssetCheckFailedError",
    r"absl|WARNING:",
)


def run(args, env):
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)


def test_demo_then_history_and_the_ci_command_on_the_same_event_log(tmp_path, monkeypatch, fast_config):
    """What the README promises: `trainpipe demo`, `trainpipe history`, `dagster job execute ... ingest_job`."""
    env = {
        **os.environ,
        "TRAINPIPE_HOME": str(tmp_path / "tp"),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "TRAINPIPE_CONFIG": str(fast_config),
    }
    bin_dir = Path(sys.executable).parent
    demo = run([str(bin_dir / "trainpipe"), "demo", "--days", "2", "--rows-per-day", "150", "--end", "2024-03-02"], env)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    # Quiet: only the demo's own lines; TensorFlow's, absl's and Dagster's output is in the log file it names.
    for noise in NOISE:
        assert not re.search(noise, demo.stdout + demo.stderr), noise
    [log] = re.findall(r"^log \(TensorFlow, Dagster events, tracebacks\): (\S+)$", demo.stdout, re.M)
    assert "STEP_SUCCESS" in Path(log).read_text()  # Dagster's DEBUG events are kept there
    assert "2024-03-02: ok train=" in demo.stdout and "example_anomalies=not checked" in demo.stdout  # no schema
    assert (
        "training_job for the window ending 2024-03-01" in demo.stdout
        and "training_job for the window ending 2024-03-02" in demo.stdout
    )
    assert re.search(r"pushed_model \([\d.]+ s\): version=1", demo.stdout) and "baseline_version=1" in demo.stdout
    assert (
        "serving now: trips_model version" in demo.stdout
        and "dagster dev" in demo.stdout
        and "trainpipe history" in demo.stdout
    )
    assert re.search(r"infra_validation \([\d.]+ s\): infra_blessed=True", demo.stdout)  # each step timed
    assert "batch_predictions: " in demo.stdout and "serving_model_performance: version" in demo.stdout
    assert ':predict with 3 raw eval examples -> HTTP 200 {"predictions": [[' in demo.stdout

    assert re.search(r"\n    trained_model done in [\d.]+ s\n", demo.stdout)  # each step as it finishes
    # The runs were made through the code location, as the UI makes them: on the Overview timeline (the repository
    # label), with the job snapshot the UI loads now (so "Re-execute" does not warn of another version).
    monkeypatch.setenv("TRAINPIPE_HOME", env["TRAINPIPE_HOME"])
    monkeypatch.setenv("TRAINPIPE_CONFIG", env["TRAINPIPE_CONFIG"])
    with DagsterInstance.from_config(str(tmp_path / "dagster")) as instance, code_location(instance) as location:
        runs = instance.get_runs()
        assert {r.job_name for r in runs} == {"ingest_job", "training_job", "batch_inference_job"}
        labelled = instance.get_runs(RunsFilter(tags={".dagster/repository": "__repository__@trainpipe_assets"}))
        assert len(labelled) == len(runs)
        repository = next(iter(location.get_repositories().values()))
        for r in runs:
            assert r.job_snapshot_id == repository.get_full_job(r.job_name).identifying_job_snapshot_id, r.job_name
            assert r.remote_job_origin.location_name == "trainpipe_assets"

    history = run([str(bin_dir / "trainpipe"), "history", "--json"], env)
    assert history.returncode == 0, history.stderr[-2000:]
    models = json.loads(history.stdout)["models"]
    assert [m["partition"] for m in models] == ["2024-03-02", "2024-03-01"]
    assert models[1]["pushed_version"] == 1 and models[0]["baseline_version"] == 1
    table = run([str(bin_dir / "trainpipe"), "history"], env).stdout
    assert table.startswith("serving now: version") and "2024-03-01" in table

    execute = run(
        [
            str(bin_dir / "dagster"),
            "job",
            "execute",
            "-m",
            "trainpipe_assets.definitions",
            "-j",
            "ingest_job",
            "--tags",
            json.dumps({"dagster/partition": "2024-03-01"}),
        ],
        env,
    )
    assert execute.returncode == 0, execute.stderr[-3000:]
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    with DagsterInstance.get() as instance:
        records = instance.fetch_materializations(AssetKey("examples"), limit=10).records
    assert [r.partition_key for r in records].count("2024-03-01") == 2  # once by the demo, once by the CLI


def test_ingest_a_range_of_days_is_one_run_and_training_leaves_the_bad_day_out(tmp_path, fast_config):
    """`trainpipe ingest --from --to` over 10 days: ONE ingest_job run writes 10 partitions of examples, statistics
    and example_anomalies; the day whose file is bad fails only its own verdict (the command names it, without a
    traceback), and the next training_job leaves exactly that day out, saying why."""
    env = {**os.environ, "TRAINPIPE_HOME": str(tmp_path / "tp"), "DAGSTER_HOME": str(tmp_path / "dagster")}
    env["TRAINPIPE_CONFIG"] = str(fast_config)
    trainpipe = str(Path(sys.executable).parent / "trainpipe")
    simulate = [trainpipe, "simulate", "--days", "10", "--rows-per-day", "60", "--end", "2024-03-10", "--seed", "2"]
    assert run(simulate, env).returncode == 0
    bad = "2024-03-08"
    (tmp_path / "tp" / "landing" / f"trips_{bad}.csv").write_text("trip_start_hour\n1\n")  # lacks columns
    done = run([trainpipe, "ingest", "--from", "2024-03-01", "--to", "2024-03-10"], env)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr[-2000:]
    days = [f"2024-03-{d:02d}" for d in range(1, 11)]
    for day in days:
        assert re.search(rf"  {day}: ok train=\d+ eval=\d+ rejected=0 example_anomalies=not checked", out) or day == bad
    assert f"{bad}: FAILED" in out and "header lacks expected columns" in out
    assert "9 of 10 days ingested and valid" in out and f"failed: ['{bad}']" in out
    for noise in NOISE:
        assert not re.search(noise, out + done.stderr), noise
    with DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        [ingest] = instance.get_runs()  # one run for the whole range
        assert ingest.tags["dagster/asset_partition_range_start"] == days[0]
        for asset in ("examples", "statistics", "example_anomalies"):
            records = instance.fetch_materializations(AssetKey(asset), limit=100).records
            assert sorted(r.partition_key for r in records) == days and {r.run_id for r in records} == {ingest.run_id}
        # The next training window (the 7 days ending 2024-03-10) uses every day but the bad one.
        from trainpipe_assets.definitions import build_definitions
        from trainpipe_assets_tests.helpers import make_config, metadata_of, run_job

        defs = build_definitions(make_config(tmp_path / "tp", fast_config))
        training = run_job(defs, "training_job", days[-1], instance)
        excluded = metadata_of(training, "schema")["excluded_days"].value
        assert list(excluded) == [bad] and "its input could not be read" in excluded[bad]
        assert metadata_of(training, "trained_model")["example_partitions"].value == [d for d in days[3:] if d != bad]


def test_a_single_run_backfill_through_dagsters_cli(tmp_path):
    """`dagster asset materialize --partition-range`: Dagster's own single-run backfill of the ingest assets."""
    env = {**os.environ, "TRAINPIPE_HOME": str(tmp_path / "tp"), "DAGSTER_HOME": str(tmp_path / "dagster")}
    env.pop("TRAINPIPE_CONFIG", None)
    bin_dir = Path(sys.executable).parent
    simulate = [str(bin_dir / "trainpipe"), "simulate", "--days", "3", "--rows-per-day", "40", "--end", "2024-03-03"]
    assert run(simulate, env).returncode == 0
    (tmp_path / "dagster").mkdir()
    materialize = [str(bin_dir / "dagster"), "asset", "materialize", "-m", "trainpipe_assets.definitions"]
    materialize += ["--select", "examples,statistics,example_anomalies", "--partition-range", "2024-03-01...2024-03-03"]
    done = run(materialize, env)
    assert done.returncode == 0, done.stderr[-3000:]
    with DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        [backfill] = instance.get_runs()
        for asset in ("examples", "statistics", "example_anomalies"):
            records = instance.fetch_materializations(AssetKey(asset), limit=100).records
            assert sorted(r.partition_key for r in records) == ["2024-03-01", "2024-03-02", "2024-03-03"]
            assert {r.run_id for r in records} == {backfill.run_id}
        # each day has its own metadata: its own row count and its own path
        paths = {r.partition_key: r.asset_materialization.metadata["path"].value for r in records}
        assert all(paths[day].endswith(f"example_anomalies/{day}") for day in paths)


def started_step(instance) -> bool:
    """A step of the unfinished run has started: the signal lands while a day's work is in flight."""
    runs = [r for r in instance.get_runs(limit=1) if not r.is_finished]
    if not runs:
        return False
    events = [e.dagster_event for e in instance.all_logs(runs[0].run_id) if e.is_dagster_event]
    return any(e.event_type_value == "STEP_START" for e in events)


def test_ingest_stops_on_a_signal_with_its_run_canceled_and_refuses_unbounded_ranges(tmp_path):
    """SIGINT or SIGTERM stops `trainpipe ingest` in the step in flight: the run is CANCELED (not failed), the command
    says which days were judged and exits 130 / 143. A range past --max-days is refused; days without data are not
    ingested (once `--to 9999-12-31` made thousands of failed runs)."""
    import signal
    import time

    env = {**os.environ, "TRAINPIPE_HOME": str(tmp_path / "tp"), "DAGSTER_HOME": str(tmp_path / "dagster")}
    env.pop("TRAINPIPE_CONFIG", None)
    trainpipe = str(Path(sys.executable).parent / "trainpipe")
    simulate = [trainpipe, "simulate", "--days", "5", "--rows-per-day", "100000", "--end", "2024-03-05", "--seed", "2"]
    assert run(simulate, env).returncode == 0
    refused = run([trainpipe, "ingest", "--from", "2024-03-01", "--to", "9999-12-31"], env)
    assert refused.returncode == 2 and "is more than --max-days 366" in refused.stderr
    for signum, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        command = [trainpipe, "ingest", "--from", "2024-02-20", "--to", "2024-03-05", "--max-days", "20"]
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not started_step(instance):
                time.sleep(0.05)
            process.send_signal(signum)
            out, err = process.communicate(timeout=120)
            assert process.returncode == code, out + err[-2000:]
            assert f"stopped by {signal.Signals(signum).name}" in out and "not finished" in out
            assert "10 day(s) of the range have no file" in out  # 2024-02-20 .. 02-29: not ingested
            latest = instance.get_runs(limit=1)[0]
            assert latest.status.value == "CANCELED"
            assert latest.tags["dagster/asset_partition_range_start"] == "2024-03-01"
