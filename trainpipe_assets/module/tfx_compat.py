"""Serve the `tfx` import paths TFX module files use, when the real TFX is not installed (it has no Python 3.11 wheels).

from tfx import v1 as tfx                                        # tfx.components.FnArgs / TunerFnResult / DataAccessor
from tfx.components.trainer.fn_args_utils import FnArgs, DataAccessor
from tfx.components.trainer.executor import TrainerFnArgs
from tfx.components.tuner.component import TunerFnResult

The stand-in is trainpipe_assets/tfx's (the whole DSL, so a module file and a pipeline file share one `tfx`).
"""

from __future__ import annotations

from trainpipe_assets.tfx.modules import SHIM_MARKER  # noqa: F401  (kept for callers that check it)


def install() -> bool:
    """Register the stand-in modules unless a real TFX is importable; returns True when the shim is in use."""
    from trainpipe_assets.tfx.modules import install_tfx

    return install_tfx()
