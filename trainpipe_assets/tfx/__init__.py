"""TFX pipelines as they are: stand-ins for `tfx` (both DSL generations) and `tensorflow_model_analysis` that record a
pipeline file, an InteractiveContext session or a notebook, and map it onto trainpipe's settings and jobs
(`trainpipe run-tfx`). The stand-ins are installed only when the real packages are not importable. Nothing in
core/, data/ or model/ imports this package.

In a notebook of your own, `%load_ext trainpipe_assets.tfx` before the TFX imports installs them."""

from __future__ import annotations


def install() -> dict:
    """Serve `tfx` and `tensorflow_model_analysis` where they are missing; says which stand-ins are in use."""
    from trainpipe_assets.tfx.modules import install_tfma, install_tfx

    return {"tfx": install_tfx(), "tensorflow_model_analysis": install_tfma()}


def load_ipython_extension(ipython) -> None:  # `%load_ext trainpipe_assets.tfx`
    used = install()
    served = [name for name, shim in used.items() if shim]
    print(f"trainpipe: stand-ins for {', '.join(served) or 'nothing (the real packages are installed)'}")
