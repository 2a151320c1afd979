"""A TFX notebook as a book writes it (nbformat 4, written here), run through `trainpipe run-tfx notebook.ipynb`:
`%%writefile` cells write the module file, components are built with InteractiveContext and run one `context.run`
at a time, outputs are read through `.uri`, and it ends with `context.run(trainer)` before the Tuner ran. Also the
documented one line for a notebook of one's own, `%load_ext trainpipe_assets.tfx`, without IPython."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap

from trainpipe_assets.core.settings import DEFAULT_MODULE_FILE
from trainpipe_assets.data.sample_data import write_days
from trainpipe_assets_tests.tfx.test_run_tfx import clean_env


def notebook(*cells: tuple[str, str]) -> str:
    """nbformat 4 JSON of (cell_type, source) cells, sources split into lines as Jupyter saves them."""
    def cell(kind: str, source: str) -> dict:
        lines = textwrap.dedent(source).strip("\n").splitlines(keepends=True)
        common = {"cell_type": kind, "metadata": {}, "source": lines}
        return {**common, "execution_count": None, "outputs": []} if kind == "code" else common

    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "cells": [cell(k, s) for k, s in cells],
                       "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                   "language": "python"}}}, indent=1)


MODULE = DEFAULT_MODULE_FILE.read_text()

CELLS = [
    ("markdown", "# Trips: TFX one component at a time\nThe module file is written by the next cells."),
    ("code", """
     !pip install -U tfx
     %matplotlib inline
     %load_ext trainpipe_assets.tfx
     """),
    ("code", """
     import os
     _data_root = os.path.join(os.getcwd(), 'data')
     _module_file = 'trips_module.py'
     """),
    ("code", "%%writefile {_module_file}\n" + MODULE),
    ("code", """
     import tensorflow as tf
     from tfx.components import CsvExampleGen, SchemaGen, StatisticsGen, Trainer, Transform, Tuner
     from tfx.components.trainer.executor import GenericExecutor
     from tfx.dsl.components.base import executor_spec
     from tfx.orchestration.experimental.interactive.interactive_context import InteractiveContext
     from tfx.proto import trainer_pb2

     context = InteractiveContext()
     """),
    ("code", """
     example_gen = CsvExampleGen(input_base=_data_root)
     context.run(example_gen)
     """),
    ("code", """
     artifact = example_gen.outputs['examples'].get()[0]
     print('SPLITS', artifact.split_names)
     train_uri = os.path.join(artifact.uri, 'Split-train')
     tfrecord_filenames = [os.path.join(train_uri, name) for name in os.listdir(train_uri)]
     dataset = tf.data.TFRecordDataset(tfrecord_filenames, compression_type='GZIP')
     for tfrecord in dataset.take(1):
         example = tf.train.Example()
         example.ParseFromString(tfrecord.numpy())
         print('FIRST TRAIN EXAMPLE', sorted(example.features.feature))
     print('TRAIN RECORDS', sum(1 for _ in dataset))
     """),
    ("code", """
     statistics_gen = StatisticsGen(examples=example_gen.outputs['examples'])
     context.run(statistics_gen)
     context.show(statistics_gen.outputs['statistics'])
     """),
    ("code", """
     schema_gen = SchemaGen(statistics=statistics_gen.outputs['statistics'], infer_feature_shape=False)
     context.run(schema_gen)
     schema_uri = schema_gen.outputs['schema'].get()[0].uri
     with open(os.path.join(schema_uri, 'schema.pbtxt')) as f:
         print('SCHEMA FEATURES', f.read().count('feature {'))
     """),
    ("code", "%%bash\nls -la\n"),
    ("code", """
     transform = Transform(examples=example_gen.outputs['examples'], schema=schema_gen.outputs['schema'],
                           module_file=_module_file)
     context.run(transform)
     os.listdir(transform.outputs['transform_graph'].get()[0].uri)
     """),
    ("code", """
     tuner = Tuner(module_file=_module_file, examples=transform.outputs['transformed_examples'],
                   transform_graph=transform.outputs['transform_graph'],
                   train_args=trainer_pb2.TrainArgs(num_steps=8), eval_args=trainer_pb2.EvalArgs(num_steps=5),
                   custom_config={'max_trials': 1})
     trainer = Trainer(module_file=_module_file,
                       custom_executor_spec=executor_spec.ExecutorClassSpec(GenericExecutor),
                       transformed_examples=transform.outputs['transformed_examples'],
                       schema=schema_gen.outputs['schema'],
                       transform_graph=transform.outputs['transform_graph'],
                       hyperparameters=tuner.outputs['best_hyperparameters'],
                       train_args=trainer_pb2.TrainArgs(num_steps=30),
                       eval_args=trainer_pb2.EvalArgs(num_steps=5))
     context.run(trainer)
     """),
    ("code", """
     model_uri = trainer.outputs['model'].get()[0].uri
     print('MODEL', sorted(os.listdir(model_uri)))
     print('SERVING', sorted(os.listdir(os.path.join(model_uri, 'Format-Serving'))))
     display(tuner.outputs['best_hyperparameters'].get()[0])
     """),
]


def printed(out: str, label: str) -> str:
    """What the notebook printed after `label` (its first such line)."""
    return next(line for line in out.splitlines() if line.startswith(label + " "))[len(label) + 1:]


def test_a_notebook_runs_cell_by_cell_with_writefile_and_the_tuner_before_the_trainer(tmp_path):
    write_days(tmp_path / "data", 2, 240, end=dt.date(2024, 3, 2), seed=6)
    path = tmp_path / "trips.ipynb"
    path.write_text(notebook(*CELLS))
    command = [sys.executable, "-m", "trainpipe_assets.cli", "run-tfx", str(path), "--home", "home"]  # no `--`
    result = subprocess.run(command, cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=900)
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-4000:]
    assert "log (TensorFlow, Dagster events, tracebacks): home/logs/run-tfx-" in out, out[:500]  # --home after FILE
    # the magics: skipped with one note each, the extension loaded, the module file written where the cell said
    assert "cell 1 line 1: skipped '!pip'" in out and "cell 1 line 2: skipped '%matplotlib'" in out
    assert "skipped the cell magic '%%bash'" in out
    assert "trainpipe: stand-ins for tfx, tensorflow_model_analysis" in out
    assert "trips.ipynb cell 3: wrote trips_module.py" in out
    assert (tmp_path / "trips_module.py").read_text() == MODULE
    # one component at a time, outputs read through .uri
    assert "ExecutionResult(component_id='CsvExampleGen', succeeded=True" in out  # the cell's value, as Jupyter shows
    assert 'SPLITS ["train","eval"]' in out
    first = printed(out, "FIRST TRAIN EXAMPLE")
    assert "'big_tipper'" in first and "'fare'" in first
    records = int(printed(out, "TRAIN RECORDS"))
    assert 250 < records < 400, "a folder without a span pattern is one span: both files, ~2/3 of them in train"
    assert printed(out, "SCHEMA FEATURES") == "8"  # the 8 columns
    assert "statistics -- http://127.0.0.1:3000/assets/statistics" in out
    assert "'transform_fn'" in out and "'transformed_metadata'" in out  # the last expression's value
    # context.run(trainer) before the Tuner ran: the Tuner first, in the same training run
    assert "context.run(Trainer): first Tuner, not run yet" in out
    assert "best_hyperparameters: mode=tuned, num_trials=1" in out
    model = printed(out, "MODEL")
    assert "'Format-Serving'" in model and "'model_run'" in model
    assert "'saved_model.pb'" in printed(out, "SERVING")
    assert "Artifact(type_name: HyperParameters, uri: " in out
    settings = (tmp_path / "home" / "interactive.trainpipe.yaml").read_text()
    assert str(tmp_path / "trips_module.py") in settings and "train_steps: 30" in settings


def test_load_ext_line_serves_tfx_without_ipython(tmp_path):
    """`%load_ext trainpipe_assets.tfx` calls load_ipython_extension; IPython is not installed here, so call it as
    IPython would in a plain interpreter, then import what a notebook imports."""
    code = textwrap.dedent("""
        import importlib.util, sys
        from trainpipe_assets.tfx import load_ipython_extension
        load_ipython_extension(None)
        from tfx import v1 as tfx
        from tfx.components import CsvExampleGen
        from tfx.orchestration.experimental.interactive.interactive_context import InteractiveContext
        import tensorflow_model_analysis as tfma
        assert tfx.orchestration.experimental.InteractiveContext is InteractiveContext
        assert CsvExampleGen(input_base='data').outputs['examples'].type_name == 'Examples'
        print('EVAL', tfma.EvalConfig(model_specs=[tfma.ModelSpec(label_key='y')]).model_specs[0].label_key)
        print('IPYTHON', importlib.util.find_spec('IPython') is not None)
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "trainpipe: stand-ins for tfx, tensorflow_model_analysis" in result.stdout
    assert "EVAL y" in result.stdout


def test_notebook_cells_as_jupyter_runs_them(tmp_path, capsys):
    """The notebook runner alone (no pipeline): appending %%writefile -a with $name, assigned shell output, a cell's
    last value, and an error located at its cell and line."""
    from trainpipe_assets.tfx.notebook import run_notebook

    path = tmp_path / "nb" / "scratch.ipynb"
    path.parent.mkdir()
    path.write_text(notebook(
        ("code", "name = 'notes.txt'\nfiles = !ls -la\n"),
        ("code", "%%writefile $name\nfirst\n"),
        ("code", "%%writefile -a {name}\nsecond\n"),
        ("code", "print('FILES', files)\nlen(open(name).read().splitlines())\n"),
        ("code", "x = 1\nraise KeyError('in the notebook')\n"),
    ))
    try:
        run_notebook(path)
    except KeyError as e:
        import traceback

        where = traceback.extract_tb(e.__traceback__)[-1]
        assert where.filename == f"{path}#cell5" and where.lineno == 2
    else:
        raise AssertionError("the cell's error propagates")
    out = capsys.readouterr().out
    assert (path.parent / "notes.txt").read_text() == "first\nsecond\n"
    assert "scratch.ipynb cell 1 line 2: skipped '!ls'" in out
    assert "cell 2: wrote notes.txt" in out and "cell 3: appended to notes.txt" in out
    assert "FILES []\n2\n" in out  # the last expression's value, as Jupyter's Out[4]
