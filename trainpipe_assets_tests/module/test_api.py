import subprocess
import sys
import textwrap

import tensorflow as tf
import tensorflow_transform as tft
from tfx_bsl.public import tfxio

from trainpipe_assets.module import tfx_compat
from trainpipe_assets.module.api import DataAccessor, FnArgs, TrainerFnArgs, TunerFnResult
from trainpipe_assets_tests.helpers import DAYS


def test_fn_args_has_tfx_fields_and_aliases():
    args = FnArgs(
        train_files=["a/*.gz"],
        eval_files=["b/*.gz"],
        train_steps=10,
        eval_steps=2,
        schema_path="s.pbtxt",
        transform_graph_path="tg",
        serving_model_dir="serve",
        model_run_dir="run",
        hyperparameters={"values": {}},
        custom_config={"k": 1},
        working_dir="w",
    )
    assert args.schema_file == "s.pbtxt" and args.transform_output == "tg"
    assert callable(args.data_accessor.tf_dataset_factory)
    assert TrainerFnArgs is FnArgs
    assert TunerFnResult(tuner="t", fit_kwargs={"x": 1}).fit_kwargs == {"x": 1}
    assert DataAccessor._fields[:1] == ("tf_dataset_factory",)


def test_the_tfx_import_paths_of_module_files_resolve_to_ours():
    assert tfx_compat.install()
    from tfx import v1 as tfx
    from tfx.components.trainer.executor import TrainerFnArgs as executor_args
    from tfx.components.trainer.fn_args_utils import DataAccessor as accessor
    from tfx.components.trainer.fn_args_utils import FnArgs as fn_args
    from tfx.components.tuner.component import TunerFnResult as result

    assert tfx.components.FnArgs is FnArgs and tfx.components.TunerFnResult is TunerFnResult
    assert tfx.components.DataAccessor is DataAccessor
    assert (executor_args, fn_args, accessor, result) == (FnArgs, FnArgs, DataAccessor, TunerFnResult)


def test_a_real_tfx_is_used_when_installed(tmp_path):
    real = tmp_path / "tfx"
    real.mkdir()
    (real / "__init__.py").write_text("REAL = True\n")
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(tmp_path)!r})
        from trainpipe_assets.module import tfx_compat
        assert tfx_compat.install() is False
        import tfx; assert tfx.REAL
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_tf_dataset_factory_reads_transformed_examples(pipeline):
    graph = pipeline["home"] / "artifacts" / "transform_graph" / DAYS[-1]
    output = tft.TFTransformOutput(str(graph))
    files = [str(graph / "Split-eval" / "*.gz")]
    options = tfxio.TensorFlowDatasetOptions(batch_size=16, label_key="big_tipper", num_epochs=1, shuffle=False)
    dataset = FnArgs().data_accessor.tf_dataset_factory(files, options, output.transformed_metadata.schema)
    batches = list(dataset)
    features, label = batches[0]
    assert "big_tipper" not in features and label.shape[0] == 16
    assert set(features) == set(output.transformed_feature_spec()) - {"big_tipper"}
    rows = sum(int(labels.shape[0]) for _, labels in batches)
    assert rows == sum(1 for _ in tf.data.TFRecordDataset(tf.io.gfile.glob(files[0]), "GZIP"))
