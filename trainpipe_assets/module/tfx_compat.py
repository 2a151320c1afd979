"""Serve the `tfx` import paths TFX module files use, when the real TFX is not installed (it has no Python 3.11 wheels).

from tfx import v1 as tfx                                        # tfx.components.FnArgs / TunerFnResult / DataAccessor
from tfx.components.trainer.fn_args_utils import FnArgs, DataAccessor
from tfx.components.trainer.executor import TrainerFnArgs
from tfx.components.tuner.component import TunerFnResult
"""

from __future__ import annotations

import importlib.util
import sys
import types

from trainpipe_assets.module.api import DataAccessor, FnArgs, TrainerFnArgs, TunerFnResult

SHIM_MARKER = "__trainpipe_shim__"


def _package(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name, "trainpipe's stand-in for TFX (TFX is not installed)")
    module.__path__ = []  # a package, so submodule imports resolve through sys.modules
    module.__dict__.update(attrs)
    setattr(module, SHIM_MARKER, True)
    sys.modules[name] = module
    return module


def install() -> bool:
    """Register the stand-in modules unless a real TFX is importable; returns True when the shim is in use."""
    if "tfx" in sys.modules:
        return getattr(sys.modules["tfx"], SHIM_MARKER, False)
    if importlib.util.find_spec("tfx") is not None:
        return False
    names = {"FnArgs": FnArgs, "TunerFnResult": TunerFnResult, "DataAccessor": DataAccessor}
    v1 = _package("tfx.v1", components=_package("tfx.v1.components", **names))
    fn_args_utils = _package("tfx.components.trainer.fn_args_utils", FnArgs=FnArgs, DataAccessor=DataAccessor)
    executor = _package("tfx.components.trainer.executor", TrainerFnArgs=TrainerFnArgs, FnArgs=FnArgs)
    trainer = _package("tfx.components.trainer", fn_args_utils=fn_args_utils, executor=executor)
    tuner = _package(
        "tfx.components.tuner", component=_package("tfx.components.tuner.component", TunerFnResult=TunerFnResult)
    )
    components = _package("tfx.components", trainer=trainer, tuner=tuner, **names)
    _package("tfx", v1=v1, components=components)
    return True
