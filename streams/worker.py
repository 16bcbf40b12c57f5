"""`abuse-monitor worker`: the Faust worker plus its HTTP endpoint (metrics and probes)."""

from __future__ import annotations

import faust
import prometheus_client
from prometheus_client import CollectorRegistry, ProcessCollector

from streams.app import create_app
from streams.http import serve
from streams.metrics import Metrics
from streams.runtime import tune_gc
from streams.settings import Settings


def run_worker(settings: Settings) -> None:
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    worker = create_app(settings, Metrics(registry))
    serve(registry, worker.liveness, settings.metrics_host, settings.metrics_port)
    tune_gc()
    faust.Worker(
        worker.app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False
    ).execute_from_commandline()
