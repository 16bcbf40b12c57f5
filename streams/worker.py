"""`abuse-monitor worker`: the Faust worker plus its HTTP endpoint (metrics and probes)."""

from __future__ import annotations

import logging

import faust
import prometheus_client
from prometheus_client import CollectorRegistry, ProcessCollector

from streams.app import create_app
from streams.http import serve
from streams.metrics import Metrics
from streams.runtime import time_collections, tune_gc
from streams.settings import Settings
from streams.topics import prepare_before_start


class _Worker(faust.Worker):
    """Faust's worker without its start-up progress spinner. At log levels `warning` and
    `error` Faust would draw one, and for it set the root logger to DEBUG for the life of the
    process: every debug call of Faust and aiokafka (several per message sent or received)
    then made a log record, passed it through the redaction of `streams.logs` and dropped it
    at the handler, about 5% of the worker's time. Without the spinner the root logger keeps
    the configured level; what is printed is the same."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None
        super().on_setup_root_logger(logger, level)


def run_worker(settings: Settings) -> None:
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    worker = create_app(settings, Metrics(registry))
    serve(registry, worker.liveness, settings.metrics_host, settings.metrics_port)
    # Before Faust subscribes: a subscription to a missing topic lets the broker create it.
    prepare_before_start(settings, tick=worker.liveness.tick)
    tune_gc()
    time_collections(worker.metrics.gc_pause)
    _Worker(
        worker.app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False
    ).execute_from_commandline()
