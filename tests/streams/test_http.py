"""The worker's HTTP endpoint: metrics, liveness and readiness, served for real on loopback."""

from __future__ import annotations

import urllib.error
import urllib.request

from prometheus_client import CollectorRegistry, Counter

from streams.broker import free_port
from streams.http import Liveness, serve


def status(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_probes_follow_the_worker_and_metrics_are_served() -> None:
    registry = CollectorRegistry()
    Counter("probe_test", "A counter.", registry=registry).inc(3)
    liveness = Liveness(stale_s=60.0)
    port = free_port()
    server = serve(registry, liveness, "127.0.0.1", port)
    base = f"http://127.0.0.1:{port}"
    try:
        assert status(f"{base}/healthz")[0] == 200
        assert status(f"{base}/readyz")[0] == 503  # no partitions yet
        liveness.assigned = True
        assert status(f"{base}/readyz")[0] == 200
        code, body = status(f"{base}/metrics")
        assert code == 200 and "probe_test_total 3.0" in body
        liveness.ticked -= 120  # the loop has not ticked for two minutes: stuck
        assert status(f"{base}/healthz")[0] == 503
        assert status(f"{base}/readyz")[0] == 503
        liveness.tick()
        assert status(f"{base}/healthz")[0] == 200
    finally:
        server.shutdown()
