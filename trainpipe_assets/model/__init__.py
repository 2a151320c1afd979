"""Model components: Transform, Tuner (with its worker processes), Trainer and Evaluator (metrics, blessing)."""
