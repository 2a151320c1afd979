"""Evaluator: the `model_evaluation` asset and `model_blessed` check (component), its metrics, plots, label handling
and the blessing rules."""
