"""The worker's alert store failing: the stream goes on, failed writes wait in a bounded
backlog and are written when the store is back (a PostgreSQL server stopped and started
again, a SQLite file locked by another process)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock

import pytest
from prometheus_client import CollectorRegistry

import streams.app
from detectors.alerts import Alert
from streams.app import StreamWorker, create_app
from streams.metrics import Metrics
from streams.settings import Settings
from streams.store import open_store
from tests.postgres import PostgresServer
from tests.streams.test_alertmanager import record


def worker(store_url: str) -> StreamWorker:
    settings = Settings(broker="kafka://127.0.0.1:1", app_id="store-outage", alert_store=store_url)
    stream_worker = create_app(settings, Metrics(CollectorRegistry()))
    stream_worker.alerts.send = AsyncMock()  # type: ignore[method-assign]
    return stream_worker


def alerts(*entities: str) -> list[Alert]:
    return [Alert.from_record(record(entity_id=entity)) for entity in entities]


def value(stream_worker: StreamWorker, name: str) -> float:
    found = stream_worker.metrics.registry.get_sample_value(f"abusemon_{name}")
    return found or 0.0


def stored(url: str) -> set[str]:
    store = open_store(url)
    try:
        return {a["entity"]["id"] for a in store.alerts(limit=100)}
    finally:
        store.close()


async def test_writes_wait_while_postgresql_is_down_and_are_written_when_it_is_back() -> None:
    server = PostgresServer().start()
    try:
        url = f"{server.url}/postgres"
        stream_worker = worker(url)
        await stream_worker.emit(alerts("a1"))
        server.stop()
        await stream_worker.emit(alerts("a2", "a3"))
        assert stream_worker.alerts.send.call_count == 3  # the stream goes on
        # The first write failed; the next went to the backlog without trying.
        assert value(stream_worker, "alert_store_failures_total") == 1
        assert value(stream_worker, "alert_store_backlog") == 2
        stream_worker.retry_store()  # still down: one more try, one more failure
        assert value(stream_worker, "alert_store_failures_total") == 2
        assert value(stream_worker, "alert_store_backlog") == 2
        server.start()
        stream_worker.retry_store()  # a new connection, and the backlog written oldest first
        assert value(stream_worker, "alert_store_backlog") == 0
        await stream_worker.emit(alerts("a4"))
        assert stored(url) == {"a1", "a2", "a3", "a4"}
        assert value(stream_worker, "alert_store_dropped_total") == 0
        assert stream_worker.store is not None
        stream_worker.store.close()
    finally:
        server.remove()


async def test_a_write_postgresql_refuses_is_set_aside_not_retried_ahead_of_others(
    postgres_url: str,
) -> None:
    stream_worker = worker(postgres_url)
    await stream_worker.emit(alerts("a1", "u\x00evil", "a2"))  # a NUL: PostgreSQL's DataError
    assert value(stream_worker, "alert_store_backlog") == 0
    assert (
        stream_worker.metrics.registry.get_sample_value(
            "abusemon_alert_store_rejected_total", {"kind": "alert"}
        )
        == 1
    )
    assert value(stream_worker, "alert_store_failures_total") == 0
    stream_worker.store_backlog.append(("alert", alerts("u\x00evil")[0].to_record(0.0)))
    stream_worker.store_backlog.append(("alert", alerts("a3")[0].to_record(0.0)))
    stream_worker.retry_store()  # as after an outage: the bad one at the head is set aside
    assert value(stream_worker, "alert_store_backlog") == 0
    assert stored(postgres_url) == {"a1", "a2", "a3"}
    assert stream_worker.store is not None
    stream_worker.store.close()


async def test_writes_wait_while_a_sqlite_file_is_locked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    stream_worker = worker(url)
    other = sqlite3.connect(tmp_path / "alerts.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # a backup, another process: the writer times out
    try:
        await stream_worker.emit(alerts("a1", "a2"))
        assert stream_worker.alerts.send.call_count == 2
        assert value(stream_worker, "alert_store_failures_total") == 1
        assert value(stream_worker, "alert_store_backlog") == 2
    finally:
        other.execute("COMMIT")
        other.close()
    stream_worker.retry_store()
    assert value(stream_worker, "alert_store_backlog") == 0
    assert stored(url) == {"a1", "a2"}


async def test_the_backlog_drops_the_oldest_beyond_its_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    stream_worker = worker(url)
    monkeypatch.setattr(streams.app, "STORE_BACKLOG_MAX", 2)
    real_open = streams.app.open_store

    def unavailable(url: str) -> Any:
        raise OSError("store unreachable")

    assert stream_worker.store is not None
    stream_worker.store.close()
    stream_worker.store = None  # as after a failure: the next write opens it anew
    monkeypatch.setattr(streams.app, "open_store", unavailable)
    await stream_worker.emit(alerts("a1", "a2", "a3", "a4"))
    assert value(stream_worker, "alert_store_backlog") == 2
    assert value(stream_worker, "alert_store_dropped_total") == 2
    monkeypatch.setattr(streams.app, "open_store", real_open)
    stream_worker.retry_store()
    assert stored(url) == {"a3", "a4"}
