"""Pure-Python detection: event models, event-time windows, River detectors, alert decisions.

Nothing in this package knows Kafka, Faust or Prometheus; `streams/` drives it online and
`abuse-monitor evaluate` drives it offline over a file, through the same code.
"""
