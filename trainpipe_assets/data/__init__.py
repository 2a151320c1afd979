"""Data components: ExampleGen with its sources and split rule, StatisticsGen, SchemaGen and ExampleValidator."""
