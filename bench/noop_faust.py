"""A Faust worker that does nothing with its events: the framework's own cost per event.

    ABUSEMON_BROKER=kafka://127.0.0.1:PORT ABUSEMON_METRICS_PORT=9465 python bench/noop_faust.py

The same `faust.App` as the worker (`streams.app.faust_app`: broker, consumer-group timing,
offset reset), one agent per input topic that only iterates `stream.events()` as the worker's
ingest agents do, and `abusemon_events_consumed_total` on `/metrics`, so `bench/throughput.py`
times it exactly as it times the worker.
"""

from __future__ import annotations

from typing import Any

import faust
import prometheus_client
from prometheus_client import CollectorRegistry, Counter

from streams.app import faust_app
from streams.settings import Settings


def main() -> None:
    settings = Settings()
    app = faust_app(settings)
    registry = CollectorRegistry()
    consumed = Counter(
        "events_consumed",
        "Messages read from an input topic.",
        ["topic"],
        namespace="abusemon",
        registry=registry,
    )
    for name in (settings.content_topic, settings.report_topic, settings.labels_topic):
        topic = app.topic(
            name,
            partitions=settings.input_partitions,
            key_serializer="raw",
            value_serializer="raw",
        )
        counter = consumed.labels(name)

        async def noop(stream: Any, counter: Any = counter) -> None:
            async for _ in stream.events():
                counter.inc()

        app.agent(topic, name=f"noop-{name}")(noop)
    prometheus_client.start_http_server(
        settings.metrics_port, addr=settings.metrics_host, registry=registry
    )
    faust.Worker(
        app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False
    ).execute_from_commandline()


if __name__ == "__main__":
    main()
