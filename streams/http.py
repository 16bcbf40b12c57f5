"""The worker's HTTP endpoint: Prometheus metrics and the probes an orchestrator uses.

- `/metrics`: the registry, in Prometheus text format.
- `/healthz` (liveness): 200 while the worker's event loop runs its periodic timer; 503
  when it has not for `stale_s` (a stuck loop), so the orchestrator restarts it.
- `/readyz` (readiness): 200 once the worker has joined its consumer group and received
  its partitions, and while it is live; 503 before. It stays 200 while the brokers are
  unreachable: the worker keeps its partitions and resumes when they are back
  (docs/runbooks/broker-unavailable.md).

`abuse-monitor worker --processes N` serves the same paths from its supervisor, for all its
worker processes (streams/supervisor.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app


class Probes(Protocol):
    """What the probes ask: a worker's `Liveness`, or a supervisor's view of its workers."""

    def live(self) -> bool: ...

    def ready(self) -> bool: ...


class Liveness:
    """What the probes read: when the loop last ticked, and whether partitions arrived."""

    def __init__(self, stale_s: float = 60.0) -> None:
        self.stale_s = stale_s
        self.ticked = time.monotonic()
        self.assigned = False

    def tick(self) -> None:
        self.ticked = time.monotonic()

    def live(self) -> bool:
        return time.monotonic() - self.ticked < self.stale_s

    def ready(self) -> bool:
        return self.assigned and self.live()


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # probes every few seconds would flood the log


def application(registry: CollectorRegistry, liveness: Probes) -> Callable[..., Iterable[bytes]]:
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in ("/healthz", "/readyz"):
            ok = liveness.live() if path == "/healthz" else liveness.ready()
            start_response(
                "200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")]
            )
            return [b"ok\n" if ok else b"not ready\n"]
        return metrics(environ, start_response)  # type: ignore[no-any-return]

    return app


def serve(registry: CollectorRegistry, liveness: Probes, host: str, port: int) -> WSGIServer:
    """Serve in a daemon thread; returns the server (its `shutdown()` stops it)."""
    server = make_server(
        host,
        port,
        application(registry, liveness),
        server_class=_Server,
        handler_class=_QuietHandler,
    )
    threading.Thread(target=server.serve_forever, daemon=True, name="http").start()
    return server
