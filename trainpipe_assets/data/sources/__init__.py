"""Where a day's raw rows come from."""
