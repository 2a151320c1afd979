"""On-demand serving with TF Serving's REST API."""
