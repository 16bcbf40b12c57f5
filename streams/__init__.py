"""Everything that knows Kafka, Faust and Prometheus: the worker, its settings and the CLI."""
