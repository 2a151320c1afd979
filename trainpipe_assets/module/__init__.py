"""The user's module file: TFX's FnArgs contract, loading by path, and the `tfx` import shim."""
