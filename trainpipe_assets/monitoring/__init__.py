"""After deployment: the serving model scored on labelled days (serving_model_performance) and the traffic it served
(served_traffic: captured requests decoded, their statistics and skew against training, live labels)."""
