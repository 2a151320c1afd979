"""The whole pipeline as a user runs it, and training_job alone, against a bare script doing the same tf.Transform,
tuner_fn + tuner.search and run_fn of the same module file, on the Chicago taxi data; all three as subprocesses, so
start-up and imports are counted on every side.

    .venv/bin/python benchmarks/pipeline.py [--days 7] [--train-steps 1000] [--eval-steps 20] [--trials 6]
        [--rounds 1] [--with-pandas] [--keep]

The taxi rows (../shared/datasets/chicago_taxi/data.csv, read, never copied into the repo) are spread over `--days`
days in timestamp order, one CSV per day in a temporary TRAINPIPE_HOME's landing folder, with the label big_tipper =
tips > 0.2 * fare; module file benchmarks/taxi_module.py.

1. whole pipeline: `trainpipe ingest --from D1 --to DN` (one ingest_job run over the days) then
   `dagster job execute -m trainpipe_assets.definitions -j training_job --tags '{"dagster/partition": "DN"}'`;
2. training_job alone: the second command's wall time;
3. bare: benchmarks/bare_pipeline.py on the same CSV files (pandas read, hash split 2:1, tf.Transform on Beam
   analyzing train, tuner_fn + search, run_fn; FnArgs/DataAccessor from trainpipe_assets.module.api).

Printed: the three wall times, the ratios whole/bare (aim <= 1.4) and training_job/bare (aim <= 1.25) marked met or
NOT met, and where the difference goes: each run's steps from the event log (DAGSTER_HOME of the runs,
instance.get_run_step_stats), its start-up (process start to the first step), the time between and after steps, next
to the bare script's own phases; eval accuracy of both models; the load average (2 shared cores). `--rounds N`
repeats both sides N times, alternating which goes first, and shows the best of each (for a busy machine).
`--with-pandas` also runs the older hand-written pandas -> KerasTuner -> Keras script in this process.
"""

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
TAXI = HERE.parents[1] / "shared" / "datasets" / "chicago_taxi" / "data.csv"
END = dt.date(2024, 3, 7)
BATCH = 128


def taxi_frame() -> pd.DataFrame:
    if not TAXI.is_file():
        sys.exit(f"{TAXI} not found: this benchmark needs the shared taxi data next to the checkout")
    frame = pd.read_csv(TAXI, dtype=str, keep_default_na=False)  # the raw text, as the CSV files will carry it

    def number(column):
        return pd.to_numeric(frame[column], errors="coerce")

    frame["big_tipper"] = (number("tips") > 0.2 * number("fare")).astype(int).astype(str)
    order = number("trip_start_timestamp").sort_values(kind="stable").index
    return frame.drop(columns=["tips"]).loc[order].reset_index(drop=True)


def write_days(frame: pd.DataFrame, landing: Path, days: int) -> list[str]:
    landing.mkdir(parents=True)
    keys = []
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), days)):
        day = (END - dt.timedelta(days=days - 1 - i)).isoformat()
        frame.iloc[rows].to_csv(landing / f"taxi_{day}.csv", index=False)
        keys.append(day)
    return keys


def write_config(path: Path, args) -> None:
    path.write_text(f"""
columns: {{}}
label_key: big_tipper
module_file: {HERE / "taxi_module.py"}
custom_config: {{max_trials: {args.trials}}}
window_days: {args.days}
train_steps: {args.train_steps}
eval_steps: {args.eval_steps}
model_name: taxi
evaluation:
  metrics: [accuracy, auc, loss]
  slices: [payment_type]
  thresholds: {{accuracy: {{lower_bound: 0.6}}}}
""")


def prepare_home(args, home: Path) -> tuple[dict, list[str]]:
    """TRAINPIPE_HOME with the settings file and the landing CSVs; the environment the commands run with."""
    (home / "dagster").mkdir(parents=True)
    (home / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    write_config(home / "taxi.yaml", args)
    days = write_days(taxi_frame(), home / "landing", args.days)
    env = {
        **os.environ,
        "TRAINPIPE_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "TRAINPIPE_CONFIG": str(home / "taxi.yaml"),
    }
    return env, days


def timed(command: list[str], env: dict, cwd: Path, log: Path) -> dict:
    """Run a command to its end; its wall time, start and end (epoch seconds). Output goes to `log`."""
    with log.open("w") as out:
        launched = time.time()
        started = time.perf_counter()
        done = subprocess.run(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}); its output:\n{log.read_text()[-4000:]}")
    return {"wall": wall, "launched": launched, "ended": launched + wall, "log": log}


def run_pipeline(env: dict, days: list[str], home: Path) -> dict:
    ingest = timed(
        [str(BIN / "trainpipe"), "ingest", "--from", days[0], "--to", days[-1]], env, home, home / "ingest.log"
    )
    tags = json.dumps({"dagster/partition": days[-1]})
    training = timed(
        [
            str(BIN / "dagster"),
            "job",
            "execute",
            "-m",
            "trainpipe_assets.definitions",
            "-j",
            "training_job",
            "--tags",
            tags,
        ],
        env,
        home,
        home / "training_job.log",
    )
    return {"ingest": ingest, "training": training}


def read_runs(pipeline: dict, dagster_home: Path) -> None:
    """Each command's run from the event log: step durations, run start/end, materialization metadata."""
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    from dagster import DagsterEventType, DagsterInstance, RunsFilter

    with DagsterInstance.get() as instance:
        for name, job in (("ingest", "ingest_job"), ("training", "training_job")):
            runs = instance.get_runs(RunsFilter(job_name=job))
            assert len(runs) == 1, f"{job}: {len(runs)} runs, expected one"
            run_id = runs[0].run_id
            stats = sorted(instance.get_run_step_stats(run_id), key=lambda s: s.start_time)
            records = instance.all_logs(run_id)
            events = [(r.timestamp, r.dagster_event) for r in records if r.dagster_event is not None]
            run_start = next(t for t, e in events if e.event_type == DagsterEventType.RUN_START)
            run_end = next(
                t for t, e in events if e.event_type in (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE)
            )
            metadata = {}
            for _, e in events:
                if e.is_step_materialization:
                    metadata.setdefault(e.asset_key.to_user_string(), {}).update(
                        {k: v.value for k, v in e.event_specific_data.materialization.metadata.items()}
                    )
            pipeline[name].update(
                run_id=run_id,
                steps={s.step_key: s.end_time - s.start_time for s in stats},
                first_step=stats[0].start_time,
                last_step=stats[-1].end_time,
                run_start=run_start,
                run_end=run_end,
                metadata=metadata,
            )


def run_bare(args, env: dict, home: Path, root: Path) -> dict:
    out = root / "bare"
    command = [
        sys.executable,
        str(HERE / "bare_pipeline.py"),
        "--csv-dir",
        str(home / "landing"),
        "--module-file",
        str(HERE / "taxi_module.py"),
        "--out",
        str(out),
        "--train-steps",
        str(args.train_steps),
        "--eval-steps",
        str(args.eval_steps),
        "--trials",
        str(args.trials),
    ]
    bare_env = {k: v for k, v in env.items() if k not in ("TRAINPIPE_HOME", "DAGSTER_HOME", "TRAINPIPE_CONFIG")}
    result = timed(command, bare_env, root, root / "bare.log")
    report = json.loads([line for line in result["log"].read_text().splitlines() if line.startswith("{")][-1])
    return {**result, **report, "out": out}


def bare_accuracy(home: Path, bare: dict) -> float:
    """After the timings: the bare SavedModel's serving_default on the raw eval rows (the bare script's own split)."""
    sys.path.insert(0, str(HERE))
    import bare_pipeline

    table, split = bare_pipeline.read_rows(home / "landing")
    records = np.array(bare_pipeline.encode(table), dtype=object)
    labels = table.filter(pa_mask(split == 1))["big_tipper"].to_numpy(zero_copy_only=False)
    return bare_pipeline.accuracy(bare["out"] / "model" / "serving_model_dir", records[split == 1].tolist(), labels)


@contextlib.contextmanager
def quiet_stderr(log: Path):
    saved = os.dup(2)
    with log.open("w") as out:
        os.dup2(out.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def pa_mask(values):
    import pyarrow as pa

    return pa.array(values)


def run_by_hand(args) -> dict:
    """What a user writes without a pipeline: pandas preprocessing, KerasTuner, Keras."""
    import keras_tuner
    import tensorflow as tf

    from trainpipe_assets.module import tfx_compat

    tfx_compat.install()
    sys.path.insert(0, str(HERE))
    import taxi_module as tm

    start = time.perf_counter()
    raw = taxi_frame()
    frame = raw.apply(lambda c: pd.to_numeric(c, errors="coerce") if c.name not in tm.VOCAB_FEATURES else c)
    is_train = np.random.default_rng(0).uniform(size=len(frame)) < 2 / 3
    train, test = frame[is_train], frame[~is_train]

    def features(part: pd.DataFrame) -> dict:
        out = {}
        for key in tm.DENSE_FLOAT_FEATURES:

            def logged(frame, key=key):
                return np.log1p(frame[key].fillna(0).clip(lower=0))

            mean, std = logged(train).mean(), logged(train).std()
            out[tm.xf(key)] = ((logged(part) - mean) / std).to_numpy(np.float32)
        for key in tm.BUCKET_FEATURES:
            edges = np.quantile(train[key].fillna(0), np.linspace(0, 1, tm.BUCKET_COUNT + 1)[1:-1])
            out[tm.xf(key)] = np.searchsorted(edges, part[key].fillna(0), side="right").astype(np.int64)
        for key, size in tm.CATEGORICAL_INT_FEATURES.items():
            out[tm.xf(key)] = part[key].fillna(0).clip(0, size - 1).astype(np.int64).to_numpy()
        for key in tm.VOCAB_FEATURES:
            vocab = {v: i for i, v in enumerate(train[key].fillna("").value_counts().index[: tm.VOCAB_SIZE])}
            out[tm.xf(key)] = part[key].fillna("").map(vocab).fillna(tm.VOCAB_SIZE).astype(np.int64).to_numpy()
        return out

    def dataset(part, repeat=True):
        ds = tf.data.Dataset.from_tensor_slices((features(part), part["big_tipper"].to_numpy(np.int64)))
        return (ds.shuffle(10_000, seed=0).repeat() if repeat else ds).batch(BATCH)

    tuner_steps = max(1, round(args.train_steps * 0.2))
    with tempfile.TemporaryDirectory() as work:
        tuner = keras_tuner.RandomSearch(
            tm.build_model,
            max_trials=args.trials,
            hyperparameters=tm.hyperparameter_space(),
            objective=keras_tuner.Objective("val_binary_accuracy", "max"),
            directory=work,
            project_name="hand",
            seed=1,
        )
        tuner.search(
            dataset(train),
            validation_data=dataset(test),
            steps_per_epoch=tuner_steps,
            validation_steps=args.eval_steps,
            verbose=0,
        )
        hp = tuner.get_best_hyperparameters(1)[0]
    model = tm.build_model(hp)
    model.fit(
        dataset(train),
        steps_per_epoch=args.train_steps,
        validation_data=dataset(test),
        validation_steps=args.eval_steps,
        verbose=0,
    )
    _, accuracy = model.evaluate(dataset(test, repeat=False), verbose=0)
    return {"wall": time.perf_counter() - start, "accuracy": accuracy}


BARE_PHASE = {  # the pipeline step that does the bare script's phase
    "examples": "read_split_encode",
    "transform_graph": "transform",
    "best_hyperparameters": "tuning",
    "trained_model": "training",
}
AIM_WHOLE, AIM_TRAINING = 1.4, 1.25


def verdict(ratio: float, aim: float) -> str:
    return f"(aim <= {aim}: {'met' if ratio <= aim else 'NOT met'})"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def report(args, days, pipeline: dict, bare: dict, loads: list[str], hand: dict | None) -> None:
    ingest, training = pipeline["ingest"], pipeline["training"]
    whole = ingest["wall"] + training["wall"]
    rows = bare["rows"]
    print(
        f"taxi: {args.days} days ({days[0]} .. {days[-1]}, {rows['train'] + rows['eval']} rows), module "
        f"benchmarks/taxi_module.py, {args.trials} tuning trials x {max(1, round(args.train_steps * 0.2))} steps, "
        f"{args.train_steps} train steps, eval_steps {args.eval_steps}"
    )
    print(
        f"machine: {os.cpu_count()} cores shared with other users; load average (1/5/15 min) at the start "
        f"{loads[0]}, after each side {' | '.join(loads[1:])}"
    )
    print()
    print(f"{'':48}{'wall s':>8}{'/ bare':>8}")
    print(
        f"{'(1) whole pipeline':48}{whole:8.1f}{whole / bare['wall']:8.2f}   {verdict(whole / bare['wall'], AIM_WHOLE)}"
    )
    print(f"{'      trainpipe ingest --from --to (one run)':48}{ingest['wall']:8.1f}")
    print(f"{'      dagster job execute -j training_job':48}{training['wall']:8.1f}")
    ratio = training["wall"] / bare["wall"]
    print(f"{'(2) training_job alone':48}{training['wall']:8.1f}{ratio:8.2f}   {verdict(ratio, AIM_TRAINING)}")
    print(f"{'(3) bare script (tf.Transform + tuner_fn + run_fn)':48}{bare['wall']:8.1f}")
    if hand:
        print(f"{'    hand-written pandas script (in-process)':48}{hand['wall']:8.1f}")

    phases = bare["phases"]
    bare_startup = bare["process_start"] - bare["launched"] + phases["imports"]
    bare_exit = bare["ended"] - bare["work_done"]
    print("\nwhere the time goes (s)                          pipeline      bare    extra")

    def line(label, mine, theirs=0.0, note=""):
        print(f"  {label:46}{mine:8.1f}{theirs:10.1f}{mine - theirs:9.1f}" + (f"   {note}" if note else ""))

    extra = {}
    bare_of = {step: phases[phase] for step, phase in BARE_PHASE.items()}
    bare_of["schema"] = bare_startup  # schema loads the module file: TensorFlow, tf.Transform, KerasTuner imported
    notes = {"schema": "(loads the module file: TF, tf.Transform, KerasTuner imports; bare: Python start + imports)"}
    for name, run in (("ingest", ingest), ("training_job", training)):
        startup = run["first_step"] - run["launched"]
        into_run = run["run_start"] - run["launched"]
        between = (run["last_step"] - run["first_step"]) - sum(run["steps"].values())
        after = run["ended"] - run["last_step"]
        theirs_after = bare_exit if name == "training_job" else 0.0  # the bare script's one exit
        print(f"  {name} command:")
        line(
            "  start-up to the first step", startup, 0.0, f"(to RUN_START {into_run:.1f}: Python, Dagster, definitions)"
        )
        for step, seconds in run["steps"].items():
            theirs = bare_of.get(step, 0.0)
            meta = run["metadata"].get(step, {})
            note = notes.get(step, "")
            if meta.get("user_code_seconds") is not None:
                note = f"(user code {meta['user_code_seconds']:.1f})"
            if step == "infra_validation" and "load_seconds" in meta:
                note = f"(sandbox server started and loaded the model in {meta['load_seconds']:.1f})"
            line(f"  {step}", seconds, theirs, note)
            extra[step] = seconds - theirs
        line("  between steps (Dagster events, IO managers)", between)
        line("  after the last step (run end, process exit)", after, theirs_after)
        extra[f"{name} start-up + exit + between steps"] = startup + between + after - theirs_after
    print("  bare phases: " + ", ".join(f"{k} {v:.1f}" for k, v in phases.items()) + f", exit {bare_exit:.1f}")

    def grouped(keys):
        return sum(v for k, v in extra.items() if any(k.startswith(p) for p in keys))

    groups = [
        ("run start-up, exit, between steps (both commands)", ["ingest start-up", "training_job start-up"]),
        ("examples vs the bare read/split/encode", ["examples"]),
        ("statistics + example_anomalies (+ examples_valid)", ["statistics", "example_anomalies"]),
        ("schema (module file imports) vs the bare imports", ["schema"]),
        ("transform_graph vs tf.Transform", ["transform_graph"]),
        ("best_hyperparameters vs tuner.search", ["best_hyperparameters"]),
        ("trained_model vs run_fn", ["trained_model"]),
        ("model_evaluation (+ model_blessed)", ["model_evaluation"]),
        ("infra_validation (+ infra_blessed): sandbox server", ["infra_validation"]),
        ("pushed_model", ["pushed_model"]),
    ]
    print(f"\nwhole - bare = {whole - bare['wall']:.1f} s:")
    counted = 0.0
    for label, keys in groups:
        value = grouped(keys)
        counted += value
        print(f"  {label:54}{value:7.1f}")
    if abs(whole - bare["wall"] - counted) > 0.05:
        print(f"  {'(rounding)':54}{whole - bare['wall'] - counted:7.1f}")
    ev = pipeline["training"]["metadata"].get("model_evaluation", {})
    print(
        f"\neval accuracy: pipeline {ev.get('candidate_accuracy', float('nan')):.4f}, bare {bare['accuracy']:.4f}"
        + (f", pandas script {hand['accuracy']:.4f}" if hand else "")
        + "   (always 'no' 0.775)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--train-steps", type=int, default=1000)
    parser.add_argument("--eval-steps", type=int, default=20)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=1, help="repeat both sides, alternating; the best counts")
    parser.add_argument("--with-pandas", action="store_true", help="also the older hand-written pandas script")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, homes) and print it")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    try:
        pipelines, bares, loads = [], [], [load()]
        for i in range(args.rounds):  # alternate which side runs first; each round has homes of its own
            here = root / f"round-{i + 1}"
            env, days = prepare_home(args, here / "home")
            sides = [
                lambda: pipelines.append(run_pipeline(env, days, here / "home")),
                lambda: bares.append(run_bare(args, env, here / "home", here)),
            ]
            for side in sides if i % 2 == 0 else sides[::-1]:
                side()
                loads.append(load())
            read_runs(pipelines[-1], here / "home" / "dagster")
            pipelines[-1]["home"], bares[-1]["home"] = here / "home", here / "home"
        pipeline = min(pipelines, key=lambda p: p["ingest"]["wall"] + p["training"]["wall"])
        bare = min(bares, key=lambda b: b["wall"])
        with quiet_stderr(root / "accuracy.log"):  # TensorFlow's start-up lines
            bare["accuracy"] = bare_accuracy(bare["home"], bare)
        hand = run_by_hand(args) if args.with_pandas else None
        report(args, days, pipeline, bare, loads, hand)
        if args.rounds > 1:
            walls = [
                f"{p['ingest']['wall'] + p['training']['wall']:.1f}/{b['wall']:.1f}" for p, b in zip(pipelines, bares)
            ]
            print(f"rounds (whole/bare s): {', '.join(walls)}; the best of each side is shown")
        if args.keep:
            print(
                f"\nkept: {root} (round-*/bare.log, round-*/home/{{ingest,training_job}}.log, home/logs, home/dagster)"
            )
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
