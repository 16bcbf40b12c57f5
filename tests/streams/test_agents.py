"""The worker's stages on batches as the consumer hands them over: no broker, topic sends
captured."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock

import orjson
import pytest
from faust.types import TP
from prometheus_client import CollectorRegistry

from detectors.stages import Ingested
from detectors.windows import Partial, Watermark
from streams import records
from streams.app import FETCHED_MAX, StreamWorker, create_app
from streams.faust_kafka import Batch
from streams.files import partition_for
from streams.metrics import Metrics
from streams.settings import Settings
from streams.state import Unit


@pytest.fixture
async def worker() -> AsyncIterator[tuple[StreamWorker, dict[str, list[dict[str, Any]]]]]:
    settings = Settings(
        broker="kafka://127.0.0.1:1",
        app_id="agents",
        store="memory://",
        input_partitions=1,
        partitions=2,
        warmup_windows=3,
        spike_min_count=5,
    )
    stream_worker = create_app(settings, Metrics(CollectorRegistry()))
    sent: dict[str, list[dict[str, Any]]] = {}
    topics = [*stream_worker.dead_letters.values(), stream_worker.partials, stream_worker.alerts]
    for topic in topics:
        box = sent.setdefault(topic.get_topic_name(), [])
        topic.send = AsyncMock(side_effect=lambda *a, _box=box, **k: delivered(_box, k))  # type: ignore[method-assign]
    yield stream_worker, sent


def delivered(box: list[dict[str, Any]], message: dict[str, Any]) -> asyncio.Future[None]:
    """Keep a sent message; what `send` returns, its delivery, is done at once."""
    box.append(message)
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


def event(n: int, minute: float) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"c{n}",
            "ts": f"2026-11-24T00:{int(minute):02d}:{int(minute % 1 * 60):02d}Z",
            "actor_id": f"a{n % 7}",
            "kind": "post",
            "surface": "feed",
        }
    )


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return value or 0.0


def batch(topic: str, first_offset: int, *messages: tuple[bytes, bytes]) -> Batch:
    """One partition's fetch: records with offsets from `first_offset`."""
    records_ = [
        SimpleNamespace(offset=first_offset + i, key=key, value=value, timestamp=None)
        for i, (key, value) in enumerate(messages)
    ]
    return Batch(TP(topic, 0), records_, seeks=0)


async def test_ingest_dead_letters_counts_and_emits_partials(worker: Any) -> None:
    stream_worker, sent = worker
    await stream_worker.ingest(
        batch(
            "content-events",
            0,
            (b"k1", b"{broken"),
            (b"a1", event(1, 0.1)),
            (b"a1", event(1, 0.1)),  # repeated event id
        )
    )
    await stream_worker.ingest(batch("content-events", 3, (b"a2", event(2, 2.0))))  # closes 0, 1
    dead = sent["content-events.dlq"]
    assert len(dead) == 1
    record = orjson.loads(dead[0]["value"])
    assert record["reason"] == "invalid_json"
    assert base64.b64decode(record["value_base64"]) == b"{broken"
    assert dead[0]["key"] == b"k1"

    reports = []
    for s in sent["agents-signal-partials"]:
        report = records.decode_signal_report(s["value"])
        reports.append((s["partition"], report.partials, report.actors, report.mark))
    counts = {p.signal: p.count for _, partials, _, _ in reports for p in partials}
    assert counts == {"content": 1, "content.surface:feed": 1, "content.kind:post": 1}
    for partition, partials, _, _ in reports:  # each signal goes to the partition that owns it
        assert all(partition_for(p.signal.encode(), 2) == partition for p in partials)
    actors = [(partition, a) for partition, _, summaries, _ in reports for a in summaries]
    assert [(a.actor, a.activity.events) for _, a in actors] == [("a1", 1)]  # the window closed
    assert all(partition_for(a.actor.encode(), 2) == partition for partition, a in actors)
    closing = [(partition, mark) for partition, _, _, mark in reports if mark is not None]
    assert {p for p, _ in closing} == {0, 1}  # every stage-2 partition hears the watermark
    t0 = 1795478400.0  # 2026-11-24T00:00Z; each watermark is the latest ts less the lateness
    assert {mark.closed_until for _, mark in closing} == {t0 - 60, t0 + 60}

    registry = stream_worker.metrics.registry
    topic = "content-events"
    assert sample(registry, "abusemon_events_consumed_total", topic=topic) == 4
    assert sample(registry, "abusemon_events_processed_total", topic=topic) == 3
    assert sample(registry, "abusemon_events_duplicate_total", topic=topic) == 1
    assert (
        sample(registry, "abusemon_events_dead_lettered_total", topic=topic, reason="invalid_json")
        == 1
    )


async def test_stage_two_closes_windows_and_publishes_alerts(worker: Any) -> None:
    stream_worker, sent = worker
    source = "report-events:0"
    first = Ingested(source, mark=Watermark("reports", source, 1, 0.0))
    reports = [report for _, report in records.closed_reports(first, 1)]
    for minute in range(12):
        count = 60 if minute == 10 else 2
        partial = Partial(source, "reports.target:u9", minute * 60.0, count, ("r1",))
        mark = Watermark("reports", source, 1, (minute + 1) * 60.0)
        ingested = Ingested(source, partials=[partial], mark=mark)
        reports.extend(report for _, report in records.closed_reports(ingested, 1))
    # Two fetches of the internal topic's partition 0.
    topic = stream_worker.settings.signal_topic
    await stream_worker.detect(batch(topic, 0, *((b"", r) for r in reports[:5])))
    await stream_worker.detect(batch(topic, 5, *((b"", r) for r in reports[5:])))
    alerts = [orjson.loads(s["value"]) for s in sent["alerts"]]
    assert [a["status"] for a in alerts] == ["firing"]
    assert alerts[0]["entity"] == {"type": "signal", "id": "reports.target:u9"}
    assert sent["alerts"][0]["key"] == b"reports.target:u9"
    assert alerts[0]["evidence"]["observed"] == 60
    registry = stream_worker.metrics.registry
    assert sample(registry, "abusemon_windows_closed_total", group="reports") == 12
    assert (
        sample(
            registry,
            "abusemon_alerts_total",
            detector="volume_spike",
            severity="critical",
            status="firing",
        )
        == 1
    )
    # Per-account series stay out of metric labels.
    assert (
        registry.get_sample_value("abusemon_signal_observed_rate", {"signal": "reports.target:u9"})
        is None
    )


GROUPS = ("content", "reports")


def marks(topic: str, offset: int, until: float, groups: tuple[str, ...] = GROUPS) -> Batch:
    """The groups' watermarks to `until`, for stage-2 partition 1 (from 0.0 at offset 0)."""
    messages = []
    for group in groups:
        name = {"content": "content-events:0", "reports": "report-events:0"}[group]
        ingested = Ingested(name, mark=Watermark(group, name, 1, until))
        if offset == 0:
            ingested.first_mark = Watermark(group, name, 1, 0.0)
        messages += [(b"", raw) for p, raw in records.closed_reports(ingested, 2) if p == 1]
    records_ = [
        SimpleNamespace(offset=offset + i, key=key, value=value, timestamp=None)
        for i, (key, value) in enumerate(messages)
    ]
    return Batch(TP(topic, 1), records_, seeks=0)


async def test_a_close_proposes_its_candidates_before_its_actor_windows_close(worker: Any) -> None:
    """The coordinator's campaigns wait for every partition's coordination index, not for
    its actor windows: those close after, when nothing else is fetched or before the
    partition's next message, and the partition is not checkpointed in between."""
    stream_worker, sent = worker
    topic = stream_worker.settings.signal_topic
    proposals = sent.setdefault(topic, [])

    def closing(offset: int, until: float) -> Batch:
        return marks(topic, offset, until)

    def clocks() -> list[tuple[float | None, float | None]]:
        told = [records.decode_signal_report(m["value"]) for m in proposals]
        return [(r.coordination_closed_until, r.actors_closed_until) for r in told]

    await stream_worker.detect(closing(0, 0.0))
    await stream_worker.detect(closing(2, 120.0))
    unit = stream_worker.units[TP(topic, 1)]
    assert clocks()[-1] == (120.0, 0.0), "the index closed, the actor windows not yet"
    assert 1 in stream_worker.unfinished and unit.busy
    stream_worker.checkpoint = AsyncMock()  # type: ignore[method-assign]
    unit.due = 0.0
    await stream_worker._checkpoint_due(unit)
    assert not stream_worker.checkpoint.await_count, "no checkpoint of a half-closed partition"
    await stream_worker._finish(1)
    assert clocks()[-1] == (120.0, 120.0) and not unit.busy
    stream_worker.checkpoint.assert_awaited_once_with(unit, wait=False)  # due, whole again
    await stream_worker.detect(closing(4, 180.0))
    await stream_worker.detect(closing(6, 240.0))  # the close before it finished first
    assert clocks()[-3:] == [(180.0, 120.0), (180.0, 180.0), (240.0, 180.0)]
    assert all(m["partition"] == 0 for m in proposals), "to the coordinator"
    # With nothing fetched, stage 2 sends off what it sent so far, then finishes the close.
    flush = stream_worker.app.producer.flush = AsyncMock()
    loop = asyncio.create_task(stream_worker._signal_loop())
    await asyncio.wait_for(stream_worker.stage_two_idle.wait(), 5)
    loop.cancel()
    assert flush.await_count == 1 and clocks()[-1] == (240.0, 240.0)
    assert not stream_worker.unfinished


async def test_a_batch_that_moves_the_watermark_sends_its_reports_off_at_once(
    worker: Any,
) -> None:
    """Sends wait for the event loop, which stage 1's next batches would keep busy."""
    stream_worker, sent = worker
    flush = stream_worker.app.producer.flush = AsyncMock()
    await stream_worker.ingest(batch("content-events", 0, (b"a1", event(1, 0.1))))
    assert flush.await_count == 1, "the first watermark"
    await stream_worker.ingest(batch("content-events", 1, (b"a1", event(2, 0.2))))
    assert flush.await_count == 1, "the same watermark: nothing closed, nothing sent"
    await stream_worker.ingest(batch("content-events", 2, (b"a2", event(3, 2.0))))
    assert flush.await_count == 2 and sent["agents-signal-partials"]


async def test_a_watermark_that_closes_no_actor_window_leaves_nothing_to_finish(
    worker: Any,
) -> None:
    """Each source's watermark reaches every stage-2 partition, and most close nothing
    there: only the last to pass a window leaves its actor windows for stage 2 to finish."""
    stream_worker, _ = worker
    topic = stream_worker.settings.signal_topic
    await stream_worker.detect(marks(topic, 0, 0.0))
    unit = stream_worker.units[TP(topic, 1)]
    await stream_worker.detect(marks(topic, 2, 120.0, ("content",)))  # reports still at 0
    assert 1 not in stream_worker.unfinished and not unit.busy
    await stream_worker.detect(marks(topic, 3, 120.0, ("reports",)))  # both past 120 now
    assert 1 in stream_worker.unfinished and unit.busy
    await stream_worker._finish(1)
    assert unit.state.detect.actors.closed_until == 120.0 and 1 not in stream_worker.unfinished


async def test_the_first_checkpoints_of_the_partitions_are_spread_over_the_interval(
    worker: Any,
) -> None:
    """A checkpoint holds the event loop while it encodes the state: the partitions' come in
    turn over the interval, not one after the other."""
    stream_worker, _ = worker
    interval = stream_worker.settings.checkpoint_s
    now = time.time()
    dues = [stream_worker._signal_unit(p).due - now for p in range(2)]
    assert interval * 0.5 <= dues[1] < dues[0] <= interval + 1
    assert dues[0] - dues[1] > interval * 0.2


async def test_a_resumed_partition_that_skipped_past_its_state_is_read_again(
    worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The consumer resumes at offset 12 while the state is at 10: the partition is sought
    back to 10 once, the messages read before that seek are dropped, and the one at 10 is
    the next admitted. If reading again cannot bring it back, the gap is counted."""
    stream_worker, _ = worker
    seek = AsyncMock()
    monkeypatch.setattr(stream_worker.app.consumer, "seek", seek)
    registry = stream_worker.metrics.registry
    unit = Unit("ingest", b"ingest/t/0", "t", 0, position=10, saved=10, resuming=True)

    assert not await stream_worker._admit(unit, 12, "t")
    seek.assert_awaited_once_with(TP("t", 0), 10)
    assert not await stream_worker._admit(unit, 13, "t")  # read before the seek
    assert seek.await_count == 1
    assert not await stream_worker._admit(unit, 7, "t")  # held by the state already
    assert await stream_worker._admit(unit, 10, "t")
    assert not unit.resuming
    assert sample(registry, "abusemon_partition_rewinds_total", topic="t") == 1
    assert sample(registry, "abusemon_messages_replayed_total", topic="t") == 1

    unit = Unit("ingest", b"ingest/t/0", "t", 0, position=10, resuming=True, rewinds=3)
    assert await stream_worker._admit(unit, 12, "t")  # rewinds spent: a gap of 2
    assert sample(registry, "abusemon_state_gap_messages_total", topic="t") == 2


async def test_a_full_input_queue_holds_partitions_and_never_the_internal_topic(
    worker: Any,
) -> None:
    stream_worker, _ = worker
    held: list[TP] = []
    dropped: list[TP] = []
    content = stream_worker.settings.content_topic
    signal_topic = stream_worker.settings.signal_topic
    assigned = {TP(content, 0), TP(content, 1), TP(signal_topic, 0)}
    stream_worker.app.consumer = SimpleNamespace(
        on_buffer_full=held.append, on_buffer_drop=dropped.append, assignment=lambda: assigned
    )
    full = FETCHED_MAX
    for i in range(full):
        await stream_worker._fetched(batch(content, i, (b"k", event(i, 1))))
    assert held == []
    # Beyond the bound: the batch is queued (the fetch loop does not wait) and its partition
    # is left out of the fetches; a partition revoked since is not fetched again.
    await stream_worker._fetched(Batch(TP(content, 1), [], seeks=0))
    await stream_worker._fetched(Batch(TP(content, 2), [], seeks=0))
    assert held == [TP(content, 1), TP(content, 2)]
    assert stream_worker.fetched.qsize() == full + 2
    await stream_worker._fetched(batch(signal_topic, 0, (b"k", b"{}")))
    assert stream_worker.fetched_signals.qsize() == 1 and len(held) == 2
    # Stage 1 takes batches; at half the bound, the held partitions are fetched again.
    while stream_worker.fetched.qsize() > full // 2 + 1:
        await stream_worker._next_input()
    assert dropped == []
    await stream_worker._next_input()
    assert dropped == [TP(content, 1)] and not stream_worker.held


async def test_stage_two_measures_each_hop_from_the_message_timestamp(worker: Any) -> None:
    stream_worker, _ = worker
    source = "report-events:0"
    ingested = Ingested(source, mark=Watermark("reports", source, 1, 0.0))
    [(_, report)] = records.closed_reports(ingested, 1)
    written = time.time() - 2.0  # written two seconds ago
    topic = stream_worker.settings.signal_topic
    taken = batch(topic, 0, (b"", report), (b"", report))
    for record in taken.records:
        record.timestamp = int(written * 1000)
    replayed = batch(topic, 1, (b"", report))  # offset 1 again: held already, not a hop
    replayed.records[0].timestamp = int(written * 1000)
    await stream_worker.detect(taken)
    await stream_worker.detect(replayed)
    registry = stream_worker.metrics.registry
    assert sample(registry, "abusemon_internal_hop_seconds_count") == 2
    assert sample(registry, "abusemon_internal_hop_seconds_sum") >= 2 * 1.99
    assert sample(registry, "abusemon_internal_hop_seconds_bucket", le="1.0") == 0


async def test_the_group_consumer_waits_at_the_broker_as_long_as_set() -> None:
    """Faust gives its group consumer a fetch wait of 1.5 s whatever its settings. The
    embedded broker answers a fetch of several partitions only about halfway to that
    deadline, however early a message comes, and each hop of a window's close through the
    internal topic waited for it (docs/scaling.md, bench/fetch_wait.py)."""
    settings = Settings(fetch_max_wait_s=0.05)
    app = create_app(settings, Metrics(CollectorRegistry())).app
    consumer = app.consumer._new_consumer_thread()._create_worker_consumer(app.transport)
    try:
        # aiokafka builds its fetcher from this when the consumer starts.
        assert consumer._fetch_max_wait_ms == 50
    finally:
        await consumer.stop()
