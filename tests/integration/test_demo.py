"""`abuse-monitor demo` as a newcomer runs it: alerts within about a minute, metrics served."""

from __future__ import annotations

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
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "demo",
            "--duration",
            "90",
            "--metrics-port",
            str(port),
            "--console-port",
            str(free_port()),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
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


def api(login_url: str, path: str) -> dict[str, list[dict[str, object]]]:
    base, _, token = login_url.partition("/?token=")
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
