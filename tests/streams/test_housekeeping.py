"""The worker's own upkeep, with fakes for the broker: the dead-letter fallback, rebalances,
the 5-second housekeeping and the precision gauges."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import orjson
import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from faust.types import TP
from prometheus_client import CollectorRegistry

from detectors.coordination import Coordinator
from detectors.events import InvalidEvent
from detectors.labels import LabelGate
from detectors.stages import Detect
from streams.app import SignalState, StreamWorker, create_app
from streams.metrics import Metrics
from streams.settings import Settings
from streams.state import Published, Unit

CONTENT = "content-events"
SIGNALS = "upkeep-signal-partials"  # the app id's


@pytest.fixture
async def worker(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[StreamWorker]:
    settings = Settings(
        broker="kafka://127.0.0.1:1",
        app_id="upkeep",
        store="memory://",
        input_partitions=2,
        partitions=2,
    )
    stream_worker = create_app(settings, Metrics(CollectorRegistry()))
    # The broker's side: checkpoints written, the producer flushed, offsets committed.
    saves = {
        stage: MagicMock(
            pack=MagicMock(return_value=b"packed"),
            seal=MagicMock(return_value=(b"sealed", "digest")),
            write=MagicMock(return_value=10),
        )
        for stage in ("ingest", "signals")
    }
    monkeypatch.setattr(stream_worker, "checkpoints", saves)
    monkeypatch.setattr(stream_worker.app, "producer", SimpleNamespace(flush=AsyncMock()))
    stream_worker._commit_offsets = AsyncMock(return_value=True)  # type: ignore[method-assign]
    yield stream_worker


def unit(topic: str, partition: int, **fields: Any) -> Unit:
    stage = "signals" if topic == SIGNALS else "ingest"
    made = Unit(stage, f"{stage}/{topic}/{partition}".encode(), topic, partition, **fields)
    if stage == "signals":
        config = Settings()
        made.state = SignalState(
            Detect(config.detection(), config.actor_detection(), config.coordination())
        )
    made.last = SimpleNamespace()  # type: ignore[assignment]  # a message has been processed
    return made


async def saved(stream_worker: StreamWorker) -> None:
    """Wait for the checkpoints being written."""
    await asyncio.gather(*(u.saving for u in stream_worker.units.values() if u.saving))


def gauge(stream_worker: StreamWorker, name: str, **labels: str) -> float | None:
    return stream_worker.metrics.registry.get_sample_value(f"abusemon_{name}", labels)


def committed(stream_worker: StreamWorker) -> list[dict[TP, int]]:
    """The offsets committed so far, in order."""
    commit = stream_worker._commit_offsets
    assert isinstance(commit, AsyncMock)
    return [call.args[0] for call in commit.await_args_list]


# -- dead letters ------------------------------------------------------------------------------
async def test_a_dead_letter_the_broker_refuses_goes_again_as_its_head_and_digest(
    worker: StreamWorker,
) -> None:
    sent: list[dict[str, Any]] = []

    async def send(**message: Any) -> asyncio.Future[None]:
        sent.append(message)
        if len(sent) == 1:
            raise MessageSizeTooLargeError()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    worker.dead_letters[CONTENT].send = send  # type: ignore[method-assign,assignment]
    raw = bytes(range(256)) * 1024  # 256 KiB, over the 64 KiB head
    message = SimpleNamespace(offset=41, key=b"k1")
    error = InvalidEvent("too_large", "over the limit")
    await worker.dead_letter(TP(CONTENT, 1), message, raw, error, 0.0)

    first, second = (orjson.loads(m["value"]) for m in sent)
    assert base64.b64decode(first["value_base64"]) == raw and "value_truncated" not in first
    assert base64.b64decode(second["value_base64"]) == raw[:65536]
    assert second["value_truncated"] is True and second["value_bytes"] == len(raw)
    assert second["value_sha256"] == hashlib.sha256(raw).hexdigest()
    assert {k: second[k] for k in ("reason", "topic", "partition", "offset", "key_base64")} == {
        "reason": "too_large",
        "topic": CONTENT,
        "partition": 1,
        "offset": 41,
        "key_base64": base64.b64encode(b"k1").decode(),
    }
    assert [m["key"] for m in sent] == [b"k1", b"k1"]


# -- rebalances --------------------------------------------------------------------------------
async def test_a_revocation_stops_checkpoints_until_the_next_assignment(
    worker: StreamWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = unit(CONTENT, 0, position=50, saved=40, committed=40)
    lost = unit(CONTENT, 1, position=70, saved=60, committed=60)
    worker.units = {TP(CONTENT, 0): kept, TP(CONTENT, 1): lost}
    worker.positions = {TP(CONTENT, 0): 50, TP(CONTENT, 1): 70}
    worker.coordinator = Coordinator(worker.coordination, sources=2)
    worker.published.add(b"an alert published before")
    gate = worker.gate

    await worker._on_revoked(None)
    await worker.checkpoint(kept)
    assert committed(worker) == [] and not worker.checkpoints["ingest"].pack.called  # type: ignore[attr-defined]

    assignment = {TP(CONTENT, 0), TP(SIGNALS, 1)}  # partition 0 of the signals went elsewhere
    monkeypatch.setattr(worker.app.consumer, "assignment", lambda: assignment)
    await worker._on_assigned(None)
    assert worker.units == {TP(CONTENT, 0): kept}
    assert worker.positions == {TP(CONTENT, 0): 50}
    assert kept.resuming and kept.rewinds == 0
    assert worker.liveness.assigned
    assert gauge(worker, "assigned_partitions", topic=CONTENT) == 1
    assert gauge(worker, "assigned_partitions", topic=SIGNALS) == 1
    assert gauge(worker, "assigned_partitions", topic="report-events") == 0
    # Partition 0's coordinator, gate and memory of published alerts go with it.
    assert worker.coordinator is None and worker.gate is not gate
    assert (
        isinstance(worker.gate, LabelGate) and b"an alert published before" not in worker.published
    )

    await worker.checkpoint(kept)
    assert committed(worker) == [{TP(CONTENT, 0): 50}]
    assert (kept.saved, kept.committed) == (50, 50)


async def test_partition_zero_kept_keeps_its_coordinator_gate_and_published_alerts(
    worker: StreamWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    coordinator = worker.coordinator = Coordinator(worker.coordination, sources=2)
    gate, published = worker.gate, worker.published
    monkeypatch.setattr(worker.app.consumer, "assignment", lambda: {TP(SIGNALS, 0)})
    await worker._on_revoked(None)
    await worker._on_assigned(None)
    assert (worker.coordinator, worker.gate, worker.published) == (coordinator, gate, published)
    assert isinstance(published, Published)


# -- checkpoints ------------------------------------------------------------------------------
def held_seal(worker: StreamWorker, stage: str) -> threading.Event:
    """Make the stage's checkpoints wait in their thread until the event is set."""
    release = threading.Event()

    def seal(packed: bytes) -> tuple[bytes, str]:
        assert release.wait(5)
        return b"sealed", "digest"

    worker.checkpoints[stage].seal.side_effect = seal  # type: ignore[attr-defined]
    return release


async def test_a_checkpoint_reads_the_state_at_once_and_is_written_while_the_unit_goes_on(
    worker: StreamWorker,
) -> None:
    store = worker.checkpoints["ingest"]
    u = unit(CONTENT, 0, position=50, saved=40, committed=40, due=0.0)
    worker.units = {TP(CONTENT, 0): u}
    release = held_seal(worker, "ingest")

    await worker._checkpoint_due(u)
    store.pack.assert_called_once_with(u.state)  # type: ignore[attr-defined]
    writing = u.saving
    assert writing is not None and not writing.done()
    u.position, u.due = 60, 0.0  # the unit goes on, and is due again
    await worker._checkpoint_due(u)
    await worker.checkpoint(u, wait=False)
    assert store.pack.call_count == 1, "one checkpoint of a unit at a time"  # type: ignore[attr-defined]
    assert committed(worker) == [] and u.saved == 40
    assert gauge(worker, "checkpoint_pause_seconds_count", stage="ingest") == 1
    assert not gauge(worker, "checkpoint_seconds_count", stage="ingest")  # not written yet

    release.set()
    await writing
    store.write.assert_called_once_with(u, 50, b"sealed", "digest", u.last)  # type: ignore[attr-defined]
    assert committed(worker) == [{TP(CONTENT, 0): 50}], "to the offset of the state read"
    assert (u.saved, u.committed, u.saving) == (50, 50, None)
    assert gauge(worker, "checkpoint_seconds_count", stage="ingest") == 1


async def test_a_checkpoint_revoked_while_written_is_not_and_forgets_no_alert(
    worker: StreamWorker,
) -> None:
    store = worker.checkpoints["signals"]
    zero = unit(SIGNALS, 0, position=9, saved=5, committed=5)
    worker.units = {TP(SIGNALS, 0): zero}
    worker.published.since_checkpoint = [b"before"]
    release = held_seal(worker, "signals")

    await worker.checkpoint(zero, wait=False)
    writing = zero.saving
    assert writing is not None and worker.published.since_checkpoint == []
    worker.published.since_checkpoint.append(b"after")  # published while it is written
    await worker._on_revoked(None)
    release.set()
    await writing
    assert not store.write.called and not store.forget.called  # type: ignore[attr-defined]
    assert committed(worker) == [] and zero.saved == 5 and zero.saving is None
    assert worker.published.since_checkpoint == [b"before", b"after"]


async def test_a_checkpoint_the_broker_fails_is_logged_and_taken_again_when_due(
    worker: StreamWorker, caplog: pytest.LogCaptureFixture
) -> None:
    u = unit(CONTENT, 1, position=50, saved=40, committed=40, due=0.0)
    worker.units = {TP(CONTENT, 1): u}
    worker.app.producer.flush = AsyncMock(side_effect=KafkaTimeoutError())  # type: ignore[method-assign]

    with caplog.at_level(logging.ERROR, logger="abuse_monitor"):
        await worker.checkpoint(u)
    assert "checkpoint of content-events/1 failed" in caplog.text
    assert gauge(worker, "checkpoint_failures_total", stage="ingest") == 1
    assert (u.saved, u.saving) == (40, None) and committed(worker) == []
    worker.app.producer.flush = AsyncMock()  # type: ignore[method-assign]
    u.due = 0.0
    await worker._checkpoint_due(u)
    await saved(worker)
    assert committed(worker) == [{TP(CONTENT, 1): 50}]


async def test_a_stage_two_partition_is_checkpointed_off_its_windows_closes(
    worker: StreamWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stage-2 partition's messages come when a window closes, and its checkpoint would
    hold the close up: the housekeeping takes its checkpoint when stage 2 is idle, one
    partition a tick; after a message only once it is half an interval overdue."""
    store = worker.checkpoints["signals"]
    interval = worker.settings.checkpoint_s
    zero = unit(SIGNALS, 0, position=9, saved=5, committed=5, due=time.time() - 1)
    one = unit(SIGNALS, 1, position=7, saved=5, committed=5, due=time.time() - 1)
    worker.units = {TP(SIGNALS, 0): zero, TP(SIGNALS, 1): one}
    monkeypatch.setattr(worker.app.consumer, "assignment", set)

    await worker._checkpoint_due(zero)
    assert not store.pack.called, "due, but its message is a close"  # type: ignore[attr-defined]
    await worker._periodic()
    assert not store.pack.called, "stage 2 is busy"  # type: ignore[attr-defined]

    worker.stage_two_idle.set()
    await worker._periodic()
    await saved(worker)
    assert (zero.saved, one.saved) == (9, 5), "one a tick"
    await worker._periodic()
    await saved(worker)
    assert one.saved == 7

    zero.position, zero.due = 12, time.time() - interval / 2 - 1
    worker.stage_two_idle.clear()
    await worker._checkpoint_due(zero)
    await saved(worker)
    assert zero.saved == 12, "half an interval overdue: at its message"


# -- housekeeping ------------------------------------------------------------------------------
async def test_housekeeping_checkpoints_quiet_units_commits_and_measures_lag(
    worker: StreamWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    quiet = unit(CONTENT, 0, position=50, saved=40, committed=40, due=0.0)
    busy = unit(CONTENT, 1, position=80, saved=40, committed=40, due=0.0, busy=True)
    restored = unit(SIGNALS, 1, position=30, saved=30, committed=20)
    not_due = unit(SIGNALS, 0, position=9, saved=5, committed=5, due=float("inf"))
    worker.units = {TP(CONTENT, 0): quiet, TP(CONTENT, 1): busy, TP(SIGNALS, 1): restored}
    worker.units[TP(SIGNALS, 0)] = not_due
    worker.labels_read = {TP("labels", 0): 7}
    worker.positions = {TP(CONTENT, 0): 50, TP(CONTENT, 1): 80}
    highwater = {TP(CONTENT, 0): 60, TP(CONTENT, 1): 85, TP(SIGNALS, 0): 99}
    monkeypatch.setattr(worker.app.consumer, "assignment", lambda: set(highwater))
    monkeypatch.setattr(worker.app.consumer, "highwater", highwater.get)
    worker.liveness.ticked = 0.0

    await worker._periodic()
    await saved(worker)
    assert sorted(committed(worker), key=str) == sorted(
        [{TP(CONTENT, 0): 50}, {TP(SIGNALS, 1): 30}, {TP("labels", 0): 7}], key=str
    )
    assert (quiet.saved, quiet.committed) == (50, 50)
    assert (busy.saved, not_due.saved) == (40, 5)  # mid-message, and not due yet
    assert restored.committed == 30 and worker.labels_read == {}
    assert worker.liveness.live()
    assert gauge(worker, "consumer_lag_messages", topic=CONTENT) == (60 - 50) + (85 - 80)
    assert gauge(worker, "consumer_lag_messages", topic=SIGNALS) is None  # not an input


async def test_precision_gauges_of_detectors_without_verdicts_any_more_are_removed(
    worker: StreamWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    precision = {"volume_spike": (0.5, 4), "actor_anomaly": (1.0, 2)}
    monkeypatch.setattr(worker.gate, "precision", lambda: precision)
    worker._label_gauges()
    assert gauge(worker, "label_precision_ratio", detector="actor_anomaly") == 1.0
    assert gauge(worker, "label_verdicts_in_window", detector="volume_spike") == 4
    del precision["actor_anomaly"]  # its verdicts have left the window
    worker._label_gauges()
    assert gauge(worker, "label_precision_ratio", detector="actor_anomaly") is None
    assert gauge(worker, "label_verdicts_in_window", detector="actor_anomaly") is None
    assert gauge(worker, "label_precision_ratio", detector="volume_spike") == 0.5
