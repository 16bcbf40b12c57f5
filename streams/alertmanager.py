"""Alert records pushed to Prometheus Alertmanager's v2 API, without holding up the stream.

`submit` only puts a record in a bounded queue (the oldest is dropped when it is full); `run`,
a background task, posts the queue in batches to `POST /api/v2/alerts`, retrying with capped
exponential backoff while Alertmanager is unreachable or answers 5xx. A 4xx is logged and
the batch dropped. Open alerts are posted again every `resend_s`, each time with `endsAt`
`expire_s` ahead, so Alertmanager keeps an alert while it is open and ends it by itself if
its resolution is lost. See docs/alertmanager.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any

import aiohttp

from detectors.events import format_rfc3339, parse_rfc3339
from streams.metrics import Metrics
from streams.settings import Settings

log = logging.getLogger("abuse_monitor.alertmanager")

ALERTS_PATH = "/api/v2/alerts"


def alert_name(detector: str) -> str:
    """The Alertmanager alert name of a detector.

    >>> alert_name("volume_spike")
    'AbuseMonitorVolumeSpike'
    """
    return "AbuseMonitor" + "".join(part.capitalize() for part in detector.split("_"))


def runbook_url(detector: str, base_url: str = "") -> str:
    """The runbook of a detector, under `base_url`.

    >>> runbook_url("report_brigade", "https://git.example.com/abuse-monitor/blob/main/")
    'https://git.example.com/abuse-monitor/blob/main/docs/runbooks/report-brigade.md'
    """
    page = f"docs/runbooks/{detector.replace('_', '-')}.md"
    return f"{base_url.rstrip('/')}/{page}" if base_url else page


def to_alertmanager(
    record: dict[str, Any],
    now: float,
    expire_s: float,
    runbook_base_url: str = "",
    evidence_base_url: str = "",
) -> dict[str, Any]:
    """The Alertmanager v2 alert of an alert record (`Alert.to_record`), posted at `now`.

    Labels are bounded but for `entity_id`, which tells the entities of one detector apart
    (Alertmanager identifies an alert by its labels). A resolved record ends the alert at its
    `ts` (never later than now); any other ends `expire_s` after now unless posted again.
    """
    detector = record["detector"]
    if record["status"] == "resolved":
        ends = min(parse_rfc3339(record["ts"]), now)
    else:
        ends = now + expire_s
    starts = min(parse_rfc3339(record["window"]["start"]), ends)
    annotations = {
        "summary": record["summary"],
        "alert_id": record["alert_id"],
        "runbook_url": runbook_url(detector, runbook_base_url),
    }
    alert: dict[str, Any] = {
        "labels": {
            "alertname": alert_name(detector),
            "detector": detector,
            "severity": record["severity"],
            "entity_type": record["entity"]["type"],
            "entity_id": record["entity"]["id"],
        },
        "annotations": annotations,
        "startsAt": format_rfc3339(starts),
        "endsAt": format_rfc3339(ends),
    }
    if evidence_base_url:
        annotations["evidence_url"] = evidence_base_url + record["alert_id"]
        alert["generatorURL"] = annotations["evidence_url"]
    return alert


class AlertmanagerPusher:
    """Pushes alert records to one Alertmanager; `submit` never waits, `run` does the sending."""

    def __init__(
        self,
        url: str,
        metrics: Metrics,
        *,
        timeout_s: float = 5.0,
        resend_s: float = 300.0,
        expire_s: float = 3600.0,
        runbook_base_url: str = "",
        evidence_base_url: str = "",
        queue_size: int = 10_000,
        batch_size: int = 64,
        max_open: int = 10_000,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.endpoint = url.rstrip("/") + ALERTS_PATH
        self.metrics = metrics
        self.timeout_s = timeout_s
        self.resend_s = resend_s
        self.expire_s = expire_s
        self.runbook_base_url = runbook_base_url
        self.evidence_base_url = evidence_base_url
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.max_open = max_open
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.queue: deque[dict[str, Any]] = deque()
        self.open: dict[str, dict[str, Any]] = {}  # alert_id: its latest firing or update
        self.in_flight: list[dict[str, Any]] = []
        self.wake = asyncio.Event()
        self.next_resend = time.monotonic() + resend_s

    # -- the stream's side ------------------------------------------------------------------
    def submit(self, record: dict[str, Any]) -> None:
        """Queue one alert record for Alertmanager; returns at once."""
        previous = self.open.pop(record["alert_id"], None)
        if previous is not None and previous["severity"] != record["severity"]:
            # The severity is a label, so an escalation is another Alertmanager alert: end
            # the one under the old severity.
            self._enqueue(previous | {"status": "resolved", "ts": record["ts"]})
        if record["status"] != "resolved":
            self.open[record["alert_id"]] = record
            if len(self.open) > self.max_open:
                del self.open[next(iter(self.open))]  # the least recently updated
        self._enqueue(record)

    def _enqueue(self, record: dict[str, Any]) -> None:
        if len(self.queue) >= self.queue_size:
            self.queue.popleft()
            self.metrics.alertmanager_dropped.inc()
        self.queue.append(record)
        self.metrics.alertmanager_queue.set(len(self.queue))
        self.wake.set()

    # -- the sender -------------------------------------------------------------------------
    async def run(self) -> None:
        """Send until cancelled; then try once to send what is left, and close."""
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            try:
                while True:
                    await self._wait_for_work()
                    if time.monotonic() >= self.next_resend:
                        self.next_resend = time.monotonic() + self.resend_s
                        await self._send(session, list(self.open.values()))
                    while self.queue:
                        batch = [
                            self.queue.popleft()
                            for _ in range(min(self.batch_size, len(self.queue)))
                        ]
                        self.metrics.alertmanager_queue.set(len(self.queue))
                        await self._send(session, batch)
            except asyncio.CancelledError:
                await self._flush(session)
                raise

    async def _wait_for_work(self) -> None:
        if self.queue:
            return
        self.wake.clear()
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, self.next_resend - time.monotonic())):
                await self.wake.wait()

    async def _send(self, session: aiohttp.ClientSession, records: list[dict[str, Any]]) -> None:
        """Post `records` in batches, each retried with backoff until Alertmanager answers."""
        for start in range(0, len(records), self.batch_size):
            self.in_flight = records[start : start + self.batch_size]
            attempt = 0
            while not await self._post(session, self.in_flight):
                await asyncio.sleep(self.backoff(attempt))
                attempt += 1
            self.in_flight = []

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after the `attempt`-th failure in a row (from 0): doubling, capped."""
        return min(self.max_backoff_s, self.backoff_s * 2.0 ** min(attempt, 32))

    async def _post(self, session: aiohttp.ClientSession, records: list[dict[str, Any]]) -> bool:
        """One POST; True when done with the batch (accepted, or rejected for good)."""
        now = time.time()
        body = [
            to_alertmanager(r, now, self.expire_s, self.runbook_base_url, self.evidence_base_url)
            for r in records
        ]
        try:
            async with session.post(self.endpoint, json=body) as response:
                if response.status < 300:
                    self.metrics.alertmanager_pushed.inc(len(records))
                    return True
                detail = (await response.text())[:500]
                if response.status < 500:
                    self.metrics.alertmanager_failures.labels("rejected").inc()
                    log.error("Alertmanager rejected %d alerts: %s", len(records), detail)
                    return True
                reason = "server_error"
        except TimeoutError:
            reason, detail = "timeout", f"no answer in {self.timeout_s} s"
        except aiohttp.ClientError as error:
            reason, detail = "unreachable", str(error)
        self.metrics.alertmanager_failures.labels(reason).inc()
        log.warning(
            "pushing %d alerts to Alertmanager failed (%s): %s", len(records), reason, detail
        )
        return False

    async def _flush(self, session: aiohttp.ClientSession) -> None:
        """One attempt at what is in flight and queued, when stopping."""
        left = self.in_flight + list(self.queue)
        self.queue.clear()
        self.in_flight = []
        for start in range(0, len(left), self.batch_size):
            if not await self._post(session, left[start : start + self.batch_size]):
                log.warning("stopping: %d alert records not pushed", len(left) - start)
                break
        self.metrics.alertmanager_queue.set(0)


def pusher_from_settings(settings: Settings, metrics: Metrics) -> AlertmanagerPusher:
    return AlertmanagerPusher(
        settings.alertmanager_url,
        metrics,
        timeout_s=settings.alertmanager_timeout_s,
        resend_s=settings.alertmanager_resend_s,
        expire_s=settings.alertmanager_expire_s,
        runbook_base_url=settings.runbook_base_url,
        evidence_base_url=settings.evidence_base_url,
    )
