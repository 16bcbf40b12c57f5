"""Pushing alerts to Alertmanager: the mapping, the queue, retries against a stand-in server,
and delivery through a real Alertmanager to a webhook receiver this test runs."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock

import orjson
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from detectors.alerts import Alert
from detectors.events import format_rfc3339, parse_rfc3339
from streams.alertmanager import AlertmanagerPusher, alert_name, to_alertmanager
from streams.app import StreamWorker, create_app
from streams.broker import free_port
from streams.kafka import produce
from streams.metrics import Metrics, metrics_table
from streams.settings import Settings

ROOT = Path(__file__).parents[2]
T0 = 1_795_000_000.0  # 2026-11-18


def record(
    status: str = "firing",
    severity: str = "warning",
    entity_id: str = "reports.target:u1",
    detector: str = "volume_spike",
    ts: float = T0 + 120,
) -> dict[str, Any]:
    alert = Alert(
        alert_id=f"id-{detector}-{entity_id}",
        detector=detector,
        status=status,
        severity=severity,
        entity_type="signal",
        entity_id=entity_id,
        ts=ts,
        window_start=T0,
        window_end=ts,
        score=9.0,
        threshold=6.0,
        summary=f"Reports against {entity_id}",
    )
    return alert.to_record(emitted_at=ts + 1)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(f"abusemon_{name}", labels) or 0.0


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


# -- the mapping ------------------------------------------------------------------------------
def test_a_firing_alert_has_bounded_labels_its_links_and_expires_ahead() -> None:
    now = T0 + 500
    alert = to_alertmanager(
        record(), now, 3600.0, "https://git.example.com/am/blob/main", "https://ui.example/a/"
    )
    assert alert["labels"] == {
        "alertname": "AbuseMonitorVolumeSpike",
        "detector": "volume_spike",
        "severity": "warning",
        "entity_type": "signal",
        "entity_id": "reports.target:u1",
    }
    assert alert["annotations"] == {
        "summary": "Reports against reports.target:u1",
        "alert_id": "id-volume_spike-reports.target:u1",
        "runbook_url": "https://git.example.com/am/blob/main/docs/runbooks/volume-spike.md",
        "evidence_url": "https://ui.example/a/id-volume_spike-reports.target:u1",
    }
    assert alert["generatorURL"] == alert["annotations"]["evidence_url"]
    assert parse_rfc3339(alert["startsAt"]) == T0
    assert parse_rfc3339(alert["endsAt"]) == now + 3600.0


def test_an_update_also_expires_ahead_and_links_are_optional() -> None:
    alert = to_alertmanager(record(status="update"), T0 + 500, 60.0)
    assert parse_rfc3339(alert["endsAt"]) == T0 + 560
    assert alert["annotations"]["runbook_url"] == "docs/runbooks/volume-spike.md"
    assert "evidence_url" not in alert["annotations"]
    assert "generatorURL" not in alert


def test_a_resolved_alert_ends_at_its_event_time_never_in_the_future() -> None:
    resolved = record(status="resolved", ts=T0 + 900)
    alert = to_alertmanager(resolved, T0 + 5000, 3600.0)
    assert (parse_rfc3339(alert["startsAt"]), parse_rfc3339(alert["endsAt"])) == (T0, T0 + 900)
    alert = to_alertmanager(resolved, T0 + 300, 3600.0)  # event time ahead of the clock
    assert parse_rfc3339(alert["endsAt"]) == T0 + 300


@pytest.mark.parametrize(
    "detector", ["volume_spike", "actor_anomaly", "content_campaign", "report_brigade"]
)
def test_every_detector_has_a_name_and_a_runbook(detector: str) -> None:
    alert = to_alertmanager(record(detector=detector), T0, 60.0)
    assert alert["labels"]["alertname"] == alert_name(detector)
    assert alert["labels"]["alertname"].isalnum()
    assert (ROOT / alert["annotations"]["runbook_url"]).is_file()


def test_settings_disable_pushing_by_default_and_check_the_url_and_timing() -> None:
    assert Settings().alertmanager_url == ""
    assert Settings(alertmanager_url="http://am:9093").alertmanager_url == "http://am:9093"
    with pytest.raises(ValueError, match="http"):
        Settings(alertmanager_url="am:9093")
    with pytest.raises(ValueError, match="less than"):
        Settings(alertmanager_resend_s=600, alertmanager_expire_s=300)


# -- the queue --------------------------------------------------------------------------------
def pusher(url: str = "http://127.0.0.1:1", **options: Any) -> AlertmanagerPusher:
    defaults: dict[str, Any] = {"timeout_s": 2.0, "backoff_s": 0.05, "max_backoff_s": 0.2}
    return AlertmanagerPusher(url, Metrics(CollectorRegistry()), **(defaults | options))


def test_a_full_queue_drops_the_oldest_and_counts_it() -> None:
    am = pusher(queue_size=3)
    for n in range(5):
        am.submit(record(entity_id=f"e{n}"))
    assert [r["entity"]["id"] for r in am.queue] == ["e2", "e3", "e4"]
    assert sample(am.metrics, "alertmanager_queue_dropped_total") == 2
    assert sample(am.metrics, "alertmanager_queue_length") == 3
    assert len(am.open) == 5  # the dropped firing alerts are still sent again with the open ones


def test_an_escalation_ends_the_alert_under_the_old_severity() -> None:
    am = pusher()
    am.submit(record())
    am.submit(record(status="update", severity="critical", ts=T0 + 300))
    assert [(r["status"], r["severity"]) for r in am.queue] == [
        ("firing", "warning"),
        ("resolved", "warning"),
        ("update", "critical"),
    ]
    assert am.queue[1]["ts"] == format_rfc3339(T0 + 300)
    assert [r["severity"] for r in am.open.values()] == ["critical"]
    am.submit(record(status="resolved", severity="critical", ts=T0 + 900))
    assert am.open == {}


def test_backoff_doubles_up_to_its_cap() -> None:
    am = pusher(backoff_s=0.5, max_backoff_s=30.0)
    assert [am.backoff(n) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert am.backoff(10_000) == 30.0


# -- against a stand-in server ----------------------------------------------------------------
class Server:
    """An HTTP server on loopback that records JSON posts and answers with given statuses."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.statuses = statuses or []
        self.posts: list[tuple[str, Any]] = []
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.posts.append((request.path, await request.json()))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    async def start(self) -> Server:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    running = await Server().start()
    yield running
    await running.stop()


@pytest.fixture
async def run() -> AsyncIterator[Callable[[AlertmanagerPusher], asyncio.Task[None]]]:
    tasks: list[asyncio.Task[None]] = []

    def start(am: AlertmanagerPusher) -> asyncio.Task[None]:
        tasks.append(asyncio.create_task(am.run()))
        return tasks[-1]

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_server_error_is_retried_until_accepted(server: Server, run: Any) -> None:
    server.statuses = [503, 500]
    am = pusher(server.url)
    run(am)
    am.submit(record())
    await until(lambda: sample(am.metrics, "alertmanager_alerts_pushed_total") == 1)
    assert [path for path, _ in server.posts] == ["/api/v2/alerts"] * 3
    assert server.posts[0][1][0]["labels"] == server.posts[2][1][0]["labels"]
    assert sample(am.metrics, "alertmanager_push_failures_total", reason="server_error") == 2
    assert sample(am.metrics, "alertmanager_queue_length") == 0


async def test_a_rejected_batch_is_dropped_and_counted(server: Server, run: Any) -> None:
    server.statuses = [400]
    am = pusher(server.url)
    run(am)
    am.submit(record(entity_id="bad"))
    await until(lambda: len(server.posts) == 1)
    am.submit(record(entity_id="good"))
    await until(lambda: sample(am.metrics, "alertmanager_alerts_pushed_total") == 1)
    assert [body[0]["labels"]["entity_id"] for _, body in server.posts] == ["bad", "good"]
    assert sample(am.metrics, "alertmanager_push_failures_total", reason="rejected") == 1


async def test_open_alerts_are_sent_again_until_resolved(server: Server, run: Any) -> None:
    am = pusher(server.url, resend_s=0.2, expire_s=60.0)
    am.submit(record(entity_id="open"))
    am.submit(record(entity_id="closed"))
    am.submit(record(entity_id="closed", status="resolved", ts=T0 + 600))
    run(am)
    await until(lambda: len(server.posts) >= 3)
    resent = [alert for _, body in server.posts[1:3] for alert in body]
    assert [a["labels"]["entity_id"] for a in resent] == ["open", "open"]
    assert resent[0]["endsAt"] < resent[1]["endsAt"]  # pushed ahead each time


async def test_stopping_sends_what_is_queued_once(server: Server) -> None:
    am = pusher(server.url, resend_s=3600.0)
    task = asyncio.create_task(am.run())
    await asyncio.sleep(0.1)  # the session is open and the sender waits
    am.submit(record(entity_id="last"))
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert [body[0]["labels"]["entity_id"] for _, body in server.posts] == ["last"]


@contextmanager
def network_watched() -> Iterator[list[str]]:
    """Within the block every attempt to reach the network is refused and named in the list."""
    attempts: list[str] = []

    def refuse(name: str) -> Callable[..., Any]:
        def refused(*args: Any, **kwargs: Any) -> Any:
            attempts.append(name)
            raise OSError(f"{name} refused in this test")

        return refused

    with pytest.MonkeyPatch.context() as patch:
        for name in ("connect", "connect_ex", "send", "sendall", "sendto"):
            patch.setattr(socket.socket, name, refuse(f"socket.{name}"))
        for name in ("getaddrinfo", "create_connection"):
            patch.setattr(socket, name, refuse(name))
        yield attempts


def test_submit_does_not_touch_the_network() -> None:
    am = pusher("http://192.0.2.1:9093")  # TEST-NET-1: nothing answers there
    with network_watched() as attempts:
        for n in range(1000):
            am.submit(record(entity_id=f"e{n}"))
    assert attempts == []
    assert len(am.queue) == 1000


# -- against a real Alertmanager ----------------------------------------------------------------
ALERTMANAGER_CONFIG = """
route:
  receiver: webhook
  group_by: [alertname, detector, severity]
  group_wait: 200ms
  group_interval: 500ms
  repeat_interval: 1h
receivers:
  - name: webhook
    webhook_configs:
      - url: {webhook}
        send_resolved: true
"""


class Alertmanager:
    """`prometheus-alertmanager` on loopback, clustering off, routing everything to a webhook."""

    def __init__(self, directory: Path, webhook: str, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = directory / "alertmanager.yml"
        self.config.write_text(ALERTMANAGER_CONFIG.format(webhook=webhook))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 15.0) -> Alertmanager:
        binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        assert binary, "Alertmanager is needed (Debian package prometheus-alertmanager)"
        log = open(self.directory / "alertmanager.log", "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={self.config}",
                f"--storage.path={self.directory / 'data'}",
                "--cluster.listen-address=",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/-/ready", timeout=1).read()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    log_text = (self.directory / "alertmanager.log").read_text()
                    raise RuntimeError(f"Alertmanager did not start:\n{log_text}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Callable[..., Alertmanager]]:
    started: list[Alertmanager] = []

    def make(webhook: str, port: int | None = None) -> Alertmanager:
        started.append(Alertmanager(tmp_path, webhook, port))
        return started[-1]

    yield make
    for running in started:
        running.stop()


def notifications(webhook: Server) -> list[tuple[str, dict[str, Any]]]:
    """(status, alert) for every alert in every notification the webhook received."""
    return [(alert["status"], alert) for _, body in webhook.posts for alert in body["alerts"]]


@pytest.mark.integration
async def test_firing_and_resolved_reach_a_receiver_through_alertmanager(
    server: Server, alertmanager: Callable[..., Alertmanager], run: Any
) -> None:
    manager = alertmanager(f"{server.url}/hook").start()
    am = pusher(manager.url, evidence_base_url="https://ui.example/a/")
    run(am)
    am.submit(record(entity_id="reports.target:u1", ts=time.time()))
    am.submit(record(entity_id="reports.target:u2", ts=time.time()))
    await until(lambda: len(notifications(server)) >= 2)
    (_, first), (_, second) = notifications(server)[:2]
    assert {first["labels"]["entity_id"], second["labels"]["entity_id"]} == {
        "reports.target:u1",
        "reports.target:u2",
    }
    assert first["labels"]["alertname"] == "AbuseMonitorVolumeSpike"
    assert first["labels"].keys() == {
        "alertname",
        "detector",
        "severity",
        "entity_type",
        "entity_id",
    }
    assert first["annotations"]["runbook_url"] == "docs/runbooks/volume-spike.md"
    assert first["annotations"]["evidence_url"].startswith("https://ui.example/a/id-")
    assert parse_rfc3339(first["startsAt"]) == T0
    assert server.posts[0][1]["groupLabels"] == {
        "alertname": "AbuseMonitorVolumeSpike",
        "detector": "volume_spike",
        "severity": "warning",
    }

    am.submit(record(entity_id="reports.target:u1", status="resolved", ts=time.time() - 1))
    await until(lambda: ("resolved", "reports.target:u1") in ids(notifications(server)))
    assert ("resolved", "reports.target:u2") not in ids(notifications(server))


def ids(found: list[tuple[str, dict[str, Any]]]) -> set[tuple[str, str]]:
    return {(status, alert["labels"]["entity_id"]) for status, alert in found}


@pytest.mark.integration
async def test_an_escalation_leaves_one_active_alert_in_alertmanager(
    server: Server, alertmanager: Callable[..., Alertmanager], run: Any
) -> None:
    manager = alertmanager(f"{server.url}/hook").start()
    am = pusher(manager.url)
    run(am)
    am.submit(record(ts=time.time()))
    am.submit(record(status="update", severity="critical", ts=time.time()))
    await until(lambda: sample(am.metrics, "alertmanager_alerts_pushed_total") == 3)

    def active() -> list[dict[str, Any]]:
        url = f"{manager.url}/api/v2/alerts?active=true&silenced=false&inhibited=false"
        found: list[dict[str, Any]] = orjson.loads(urllib.request.urlopen(url, timeout=5).read())
        return found

    alerts = await asyncio.to_thread(active)
    assert [a["labels"]["severity"] for a in alerts] == ["critical"]


@pytest.mark.integration
async def test_alerts_queued_while_alertmanager_is_down_are_delivered_when_it_is_up(
    server: Server, alertmanager: Callable[..., Alertmanager], run: Any
) -> None:
    manager = alertmanager(f"{server.url}/hook")  # its port, with nothing listening yet
    am = pusher(manager.url)
    run(am)
    with network_watched() as attempts:
        am.submit(record(ts=time.time()))  # returns at once: the sender delivers it later
    assert attempts == [] and len(am.queue) == 1
    await until(
        lambda: sample(am.metrics, "alertmanager_push_failures_total", reason="unreachable") >= 3
    )
    assert sample(am.metrics, "alertmanager_alerts_pushed_total") == 0
    await asyncio.to_thread(manager.start)
    await until(lambda: ids(notifications(server)) == {("firing", "reports.target:u1")})
    assert sample(am.metrics, "alertmanager_alerts_pushed_total") == 1


# -- in the worker ------------------------------------------------------------------------------
async def test_the_worker_submits_every_published_alert_when_enabled() -> None:
    def worker(**options: Any) -> StreamWorker:
        settings = Settings(broker="kafka://127.0.0.1:1", app_id="am", **options)
        stream_worker = create_app(settings, Metrics(CollectorRegistry()))
        stream_worker.alerts.send = AsyncMock()  # type: ignore[method-assign]
        return stream_worker

    assert worker().pusher is None  # off by default
    stream_worker = worker(alertmanager_url="http://127.0.0.1:1")
    assert stream_worker.pusher is not None
    alert = Alert.from_record(record())
    await stream_worker.emit([alert, replace(alert, status="resolved")])
    published = [orjson.loads(c.kwargs["value"]) for c in stream_worker.alerts.send.call_args_list]
    assert list(stream_worker.pusher.queue) == published
    assert [r["status"] for r in published] == ["firing", "resolved"]


def reports(minutes: int, spike_minute: int) -> Iterator[tuple[str, dict[str, str]]]:
    """Two reports a minute against each of a few accounts, and a burst against `victim`."""
    for minute in range(minutes):
        ts = format_rfc3339(T0 + minute * 60 + 1)
        for target in ("victim", "t1", "t2", "t3", "t4"):
            burst = 60 if target == "victim" and minute == spike_minute else 2
            for n in range(burst):
                reporter = f"r{target}{n}"
                event_id = f"{minute}-{reporter}"
                yield (
                    "report-events",
                    {
                        "event_id": event_id,
                        "ts": ts,
                        "reporter_id": reporter,
                        "target_actor_id": target,
                        "reason": "spam",
                    },
                )


@pytest.mark.integration
async def test_a_worker_pushes_its_alerts_to_alertmanager(
    server: Server, alertmanager: Callable[..., Alertmanager], start_worker: Any
) -> None:
    manager = alertmanager(f"{server.url}/hook").start()
    worker = await asyncio.to_thread(start_worker, warmup_windows=3, alertmanager_url=manager.url)
    await produce(worker.settings, reports(minutes=14, spike_minute=10))
    await until(
        lambda: ("firing", "reports.target:victim") in ids(notifications(server)), timeout_s=60
    )
    pushed = [
        a for s, a in notifications(server) if a["labels"]["entity_id"] == "reports.target:victim"
    ]
    assert pushed[0]["labels"]["detector"] == "volume_spike"
    pushed_total = [
        sample.value
        for family in text_string_to_metric_families(worker.metrics_text())
        for sample in family.samples
        if sample.name == "abusemon_alertmanager_alerts_pushed_total"
    ]
    assert pushed_total and pushed_total[0] >= 1
    await asyncio.to_thread(worker.stop)  # the pusher stops with the worker, cleanly
    assert "Traceback" not in worker.log(), worker.log()


def test_the_docs_name_real_metrics_settings_and_defaults() -> None:
    text = (ROOT / "docs" / "alertmanager.md").read_text()
    exported = metrics_table()
    named = set(re.findall(r"\babusemon_[a-z_]+", text))
    assert named and all(f"`{name}`" in exported for name in named), named
    settings = {f"ABUSEMON_{field.upper()}" for field in Settings.model_fields}
    mentioned = set(re.findall(r"ABUSEMON_[A-Z_]+", text))
    assert mentioned and mentioned <= settings, mentioned - settings
    am = pusher()
    assert (am.queue_size, am.batch_size) == (10_000, 64)
    assert "(10 000 records)" in text and "batches of up to 64" in text
