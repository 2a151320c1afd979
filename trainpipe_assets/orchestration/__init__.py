"""Jobs, the retraining schedule and the sensors, all built from the settings passed to build_definitions."""
