"""The Grafana boards against real data: a real Prometheus (Debian package) scrapes a real
worker fed by the simulator on the embedded broker, with the recording rules loaded, and
every query of every panel must return data. The board files must also be current."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from simulator import SimConfig, write_files
from streams.broker import free_port
from streams.kafka import replay

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"

sys.path.insert(0, str(GRAFANA))
import dashboards  # noqa: E402


def test_the_board_files_are_generated_from_the_code() -> None:
    for name, build in dashboards.BOARDS.items():
        assert (GRAFANA / "dashboards" / name).read_text() == dashboards.render(build), name


def panel_queries() -> list[tuple[str, str, str]]:
    """(board, panel, PromQL) for every target, the template variable set to `content`."""
    out = []
    for name in dashboards.BOARDS:
        board = json.loads((GRAFANA / "dashboards" / name).read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                expr = target["expr"].replace("$signal", "content")
                out.append((board["title"], panel["title"], expr))
    return out


class Prometheus:
    def __init__(self, workdir: Path, target: str) -> None:
        binary = shutil.which("prometheus")
        assert binary, "prometheus is needed (Debian package prometheus; .ci/run installs it)"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # The recording rules as deployed, evaluated every 2 s rather than 30 s.
        rules = workdir / "rules.yml"
        rules.write_text(RULES.read_text().replace("interval: 30s", "interval: 2s"))
        config = workdir / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 2s}\n"
            f"rule_files: [{rules}]\n"
            "scrape_configs:\n"
            f"  - {{job_name: abuse-monitor, static_configs: [{{targets: ['{target}']}}]}}\n"
        )
        self.log = (workdir / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/-/ready", timeout=1).read()
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("prometheus did not become ready")

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        body = orjson.loads(urllib.request.urlopen(url, timeout=10).read())
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)
        self.log.close()


@pytest.fixture
def fed_worker(start_worker: Any, tmp_path: Path) -> Iterator[tuple[Any, Prometheus]]:
    """A worker that has processed three simulated hours with every kind of attack, a few
    invalid and late events, scraped all along by Prometheus."""
    events = tmp_path / "events.jsonl"
    config = SimConfig(
        seed=11, duration_s=3 * 3600.0, rate=1.5, actors=3000,
        first_attack_s=5400.0, attack_every_s=1500.0,
    )  # fmt: skip
    write_files(events, config)
    extra = [
        {"topic": "content-events", "value": {"event_id": f"bad{i}", "kind": "post"}}
        for i in range(3)
    ] + [
        {"topic": "content-events", "value": {
            "event_id": f"late{i}", "ts": "2026-11-01T00:01:00Z", "actor_id": "u1", "kind": "post"}}
        for i in range(2)
    ]  # fmt: skip
    with events.open("ab") as out:
        out.write(b"".join(orjson.dumps(line) + b"\n" for line in extra))
    lines = sum(1 for _ in events.open())

    worker = start_worker(actor_warmup=100)
    prometheus = Prometheus(tmp_path, f"127.0.0.1:{worker.settings.metrics_port}")
    try:
        asyncio.run(replay(events, worker.settings))
        deadline = time.monotonic() + 180
        consumed = 0.0
        while time.monotonic() < deadline:
            result = prometheus.query("sum(abusemon_events_consumed_total)")
            consumed = float(result[0]["value"][1]) if result else 0.0
            if consumed >= lines:
                break
            time.sleep(1)
        assert consumed == lines, worker.log()
        time.sleep(8)  # a few more scrapes and rule evaluations after the last event
        yield worker, prometheus
    finally:
        prometheus.stop()


def test_every_panel_of_every_board_shows_data(fed_worker: tuple[Any, Prometheus]) -> None:
    worker, prometheus = fed_worker
    queries = panel_queries()
    assert len(queries) >= 20
    empty = [(board, title, expr) for board, title, expr in queries if not prometheus.query(expr)]
    assert not empty, "panels with no data:\n" + "\n".join(map(str, empty)) + worker.log()
    # The signal variable lists the aggregate signals, never per-account ones.
    signals = {r["metric"]["signal"] for r in prometheus.query("abusemon_signal_observed_rate")}
    assert "content" in signals and not any(":u" in s for s in signals)
