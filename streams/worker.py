"""`abuse-monitor worker`: the Faust worker plus the Prometheus endpoint."""

from __future__ import annotations

import faust
import prometheus_client
from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server

from streams.app import create_app
from streams.metrics import Metrics
from streams.settings import Settings


def run_worker(settings: Settings) -> None:
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    worker = create_app(settings, Metrics(registry))
    start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)
    faust.Worker(
        worker.app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False
    ).execute_from_commandline()
