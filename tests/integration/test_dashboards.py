"""The Grafana boards against real data: a real Prometheus (Debian package) scrapes a real
worker fed by the simulator on the embedded broker, and the simulator's analysts' labels on
its alerts, with the recording rules loaded, and every query of every panel must return
data. The board files must also be current."""

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

from detectors.events import format_rfc3339
from simulator import Labeler, LabelerConfig, write_files
from streams.broker import free_port
from streams.evaluate import evaluate
from streams.kafka import produce, replay
from tests.conftest import attack_hours

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

    def value(self, expr: str) -> float:
        """The value of a query that returns one sample (0 when it returns none)."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else 0.0

    def wait_for(self, expr: str, expected: float, worker: Any, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        got = self.value(expr)
        while got < expected and time.monotonic() < deadline:
            time.sleep(1)
            got = self.value(expr)
        assert got == expected, f"{expr}: {got}, not {expected}\n{worker.log()}"

    def wait_for_rule_evaluations(self, rounds: int, timeout_s: float = 60) -> None:
        """Until every rule group has been evaluated `rounds` more times than when called
        (the rules are evaluated every 2 s and the worker scraped every second)."""
        seen: dict[str, set[str]] = {}
        deadline = time.monotonic() + timeout_s
        while True:
            url = f"{self.url}/api/v1/rules"
            body = orjson.loads(urllib.request.urlopen(url, timeout=10).read())
            groups = {g["name"]: g["lastEvaluation"] for g in body["data"]["groups"]}
            for name, last in groups.items():
                seen.setdefault(name, set()).add(last)
            if groups and all(len(seen[name]) > rounds for name in groups):
                return
            assert time.monotonic() < deadline, f"rules not evaluated {rounds} times: {seen}"
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)
        self.log.close()


def standing_verdicts(alerts: list[dict[str, Any]], ts: float) -> list[dict[str, Any]]:
    """Verdicts analysts gave on an account and a campaign before they alert (from earlier
    investigations): the account's alerts are raised to critical, the campaign's dropped."""
    actor = next(
        a["entity"]["id"]
        for a in alerts
        if a["detector"] == "actor_anomaly" and a["status"] == "firing"
        and a["severity"] != "critical"
    )  # fmt: skip
    campaign = next(a["entity"]["id"] for a in alerts if a["entity"]["type"] == "campaign")
    return [
        {"label_id": f"standing-{subject_type}", "ts": format_rfc3339(ts),
         "subject_type": subject_type, "subject_id": subject_id, "verdict": verdict,
         "labeler": "dana", "policy": "spam"}
        for subject_type, subject_id, verdict in
        (("actor", actor, "abusive"), ("campaign", campaign, "benign"))
    ]  # fmt: skip


@pytest.fixture
def fed_worker(start_worker: Any, tmp_path: Path) -> Iterator[tuple[Any, Prometheus]]:
    """A worker with an alert store that has processed three simulated hours with every kind
    of attack, a few invalid and late events, and the simulated analysts' verdicts on its
    alerts (some given before the replay, so that alerts are suppressed and escalated),
    scraped all along by Prometheus."""
    events = tmp_path / "events.jsonl"
    # A seed whose account takeover first alerts below critical, for an escalation to show.
    config = attack_hours(seed=5)
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

    worker = start_worker(actor_warmup=100, alert_store=f"sqlite:///{tmp_path}/alerts.db")
    settings = worker.settings
    alerts = evaluate(events, settings).alerts  # the worker's alerts, computed offline
    truth_lines = Path(f"{events}.truth.jsonl").read_bytes().splitlines()
    truth = [orjson.loads(line) for line in truth_lines]
    standing = standing_verdicts(alerts, config.start)
    labels = Labeler(truth, LabelerConfig(noise=0.1, audit_rate=0.5)).labels(alerts)
    consumed = "sum(abusemon_events_consumed_total)"
    prometheus = Prometheus(tmp_path, f"127.0.0.1:{settings.metrics_port}")
    try:
        asyncio.run(produce(settings, [("labels", label) for label in standing]))
        prometheus.wait_for(consumed, len(standing), worker)
        asyncio.run(replay(events, settings))
        prometheus.wait_for(consumed, len(standing) + lines, worker)
        # Every alert message out, published or suppressed, before analysts label them.
        prometheus.wait_for(
            "sum(abusemon_alerts_total) + sum(abusemon_alerts_suppressed_total)",
            len(alerts),
            worker,
        )
        asyncio.run(produce(settings, [("labels", label) for label in labels]))
        prometheus.wait_for(consumed, len(standing) + lines + len(labels), worker)
        prometheus.wait_for_rule_evaluations(2)  # and scrapes, after the last message
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
    # The labels reached the gate: an account escalated, a campaign suppressed, precision and
    # agreement measured, and no write to the store failed.
    assert prometheus.value("sum(abusemon_alerts_escalated_total)") >= 1
    assert prometheus.value("sum(abusemon_alerts_suppressed_total)") >= 1
    assert prometheus.value("count(abusemon_label_precision_ratio)") >= 3
    assert prometheus.value("count(abusemon_label_agreement_kappa)") >= 1
    assert prometheus.value("sum(abusemon_alert_store_failures_total)") == 0
