"""`abuse-monitor demo` as a newcomer runs it: alerts within about a minute, metrics served."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.broker import free_port

pytestmark = pytest.mark.integration


def test_the_demo_prints_alerts_and_serves_metrics() -> None:
    port = free_port()
    demo = start_demo(port, "--duration", "90")
    metrics = ""
    assert demo.stdout is not None
    lines = [demo.stdout.readline() for _ in range(2)]
    console = next(line.split()[-1] for line in lines if line.startswith("triage console"))
    deadline = time.monotonic() + 60
    while not metrics and time.monotonic() < deadline:
        time.sleep(2)
        try:
            metrics = (
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
                .read()
                .decode()
            )
        except OSError:
            continue
    queue: list[dict[str, object]] = []
    while not queue and time.monotonic() < deadline + 30:
        time.sleep(2)
        queue = api(console, "/api/queue")["items"]
    output, _ = demo.communicate(timeout=150)
    output = "".join(lines) + output
    assert demo.returncode == 0, output
    assert "Traceback" not in output
    families = {f.name for f in text_string_to_metric_families(metrics)}
    assert "abusemon_events_consumed" in families
    first = next(line for line in output.splitlines() if line.startswith("first alert"))
    assert int(first.split()[2]) <= 75, output
    assert output.count(" ALERT ") >= 2, output
    assert output.rstrip().endswith("demo stopped")
    # The worker kept its alerts in the store, and the console served them for triage.
    assert queue and all("priority" in item for item in queue), output


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_demo_stops_its_worker_and_broker_on_a_signal(signum: signal.Signals) -> None:
    metrics_port = free_port()
    demo = start_demo(metrics_port)
    assert demo.stdout is not None
    lines = [demo.stdout.readline() for _ in range(2)]
    banner = next(line for line in lines if line.startswith("broker "))
    broker_port = int(banner.split()[1].rsplit(":", 1)[1])
    deadline = time.monotonic() + 60
    while not accepts(metrics_port) and time.monotonic() < deadline:
        time.sleep(1)
    assert accepts(metrics_port), "the demo's worker never served metrics"
    demo.send_signal(signum)
    output, _ = demo.communicate(timeout=60)
    output = "".join(lines) + output
    assert demo.returncode == 0, output
    assert "Traceback" not in output
    assert output.rstrip().endswith("demo stopped"), output
    # Nothing it started is left running: neither the worker's metrics nor the broker answer.
    assert not accepts(metrics_port)
    assert not accepts(broker_port)


def start_demo(metrics_port: int, *options: str) -> subprocess.Popen[str]:
    ports = ["--metrics-port", str(metrics_port), "--console-port", str(free_port())]
    return subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "demo", *options, *ports],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # As from a terminal: Ctrl-C is not ignored, whatever this process inherited.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def api(login_url: str, path: str) -> dict[str, list[dict[str, object]]]:
    base, _, token = login_url.partition("/#token=")
    request = urllib.request.Request(
        base + path, headers={"Authorization": f"Bearer {urllib.parse.unquote(token)}"}
    )
    try:
        body: dict[str, list[dict[str, object]]] = orjson.loads(
            urllib.request.urlopen(request, timeout=5).read()
        )
    except OSError:
        return {"items": []}
    return body
