"""StatisticsGen: the `statistics` asset (component), the comparison maths of two statistics (skew, drift, distances;
also used after deployment by monitoring), and their tables and histograms for the UI."""
