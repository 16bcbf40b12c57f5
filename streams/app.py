"""The Faust application: topics, the two stages' tasks and the sinks they write to.

Two stages, so that no signal funnels through one partition:

    content-events / report-events / labels ─stage 1─▶ <app>-signal-partials (by signal)
         │ invalid ─▶ <topic>.dlq                    │        ▲ candidates, alerts and
                                              stage 2 ──┘   labels, to partition 0
                                 partition 0: label gate ──▶ alerts (keyed by entity id)

Both stages read their topics a partition's fetch at a time (streams/faust_kafka.py), each
in a task of its own. Stage 1 validates every message (bad ones go to the dead-letter topic
with the original bytes and a reason), drops repeated event ids, counts events per signal and
summarises each actor's activity in event-time windows, one `detectors.stages.Ingest` per
input partition. When a partition's watermark passes a window, its partial counts go to the
partition that owns each signal, its actor summaries to the partition that owns each actor,
and a watermark mark to every partition. Stage 2 (`detectors.stages.Detect`) adds the
partials up, closes windows once every source partition has passed them, runs the spike
detectors and the actor population model, and publishes alerts. Coordination rows (text
buckets, new domains, reported accounts) go to the partition owning each key; when a
partition closes windows it sends its campaign and brigade candidates to partition 0, whose
coordinator folds them into campaigns and brigades once every partition has closed a window.
Every alert leaves through the label gate on partition 0, which also gets every label: it
drops alerts on entities analysts labelled benign, escalates those on actors labelled abusive,
adds the learnt priority, and keeps precision per detector; alerts and labels are also written
to the alert and label store when one is configured.

The state of each partition, in both stages, is checkpointed into changelog-backed tables,
and the partition's offset is committed to the checkpoint's once it is flushed
(streams/state.py): a worker that restarts or takes a partition over resumes from the
checkpoint and replays the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, cast

import faust
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError
from faust.types import TP, EventT
from faust.types.tuples import Message

from detectors.actors import ActorsClosed
from detectors.alerts import Alert
from detectors.codec import registered
from detectors.coordination import Candidate, Coordinator
from detectors.events import InvalidEvent, Label, format_rfc3339, parse_event
from detectors.labels import LabelGate
from detectors.pipeline import GROUP_TOPICS, Closed, SignalProcessor
from detectors.signals import group, is_per_account
from detectors.stages import Detect, Detected, Ingest
from detectors.windows import Watermark
from streams import faust_kafka, records
from streams.alertmanager import AlertmanagerPusher, pusher_from_settings
from streams.http import Liveness
from streams.metrics import Metrics, labeler_pseudonym
from streams.settings import Settings
from streams.state import Checkpoints, Published, Unit
from streams.store import BadRecord, Store, open_store

log = logging.getLogger("abuse_monitor")

# Alert and label writes kept while the store fails, retried every 5 s; the oldest are dropped
# beyond this many.
STORE_BACKLOG_MAX = 10_000
# Batches of input records held between the fetch and stage 1: beyond this many, the input
# partitions stop being fetched until stage 1 is down to half of it.
FETCHED_MAX = 16
# A resumed partition that skipped past its state's offset is read again from there: up to
# this many times, each given this long to bring the message back.
MAX_REWINDS = 3
REWIND_WAIT_S = 10.0


@registered(version=1)  # in checkpoints (detectors/codec.py)
@dataclass
class SignalState:
    """What stage 2 holds for one partition of the signal topic; partition 0 also holds the
    coordinator, the label gate and the alert messages it published."""

    detect: Detect
    coordinator: Coordinator | None = None
    gate: LabelGate | None = None
    published: Published | None = None


@dataclass
class Unfinished:
    """A stage-2 partition's close with its actor windows still to close."""

    unit: Unit
    detected: Detected


def _event_of(app: faust.App, tp: TP, record: Any) -> EventT[Any]:
    """A Faust event for a record read in a batch: checkpoints go to its partition's
    changelog (streams/state.py)."""
    message = Message(
        tp.topic,
        tp.partition,
        record.offset,
        (record.timestamp or 0) / 1000.0,
        getattr(record, "timestamp_type", 0),
        getattr(record, "headers", None) or [],
        record.key,
        record.value,
        None,
        tp=tp,
    )
    return faust.Event(app, record.key, record.value, None, message)


def create_app(settings: Settings, metrics: Metrics) -> StreamWorker:
    worker = StreamWorker(faust_app(settings), settings, metrics)
    worker.register()
    return worker


def faust_app(settings: Settings) -> faust.App:
    """The Faust app with the worker's broker, consumer and producer settings, no agents
    (the stages read their topics in batches).

    Its Kafka transport is `streams.faust_kafka`'s, which keeps changelog-backed state
    across a crash (docs/state.md)."""
    app = faust_kafka.App(
        settings.app_id,
        broker=settings.broker,
        broker_credentials=settings.faust_credentials(),
        store=settings.store,
        datadir=settings.data_dir,
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        producer_acks=-1,
        # Input offsets are committed from checkpoints (streams/state.py), not as messages are
        # processed: a rebalance must not wait for them.
        stream_wait_empty=False,
        producer_max_request_size=records.DEAD_LETTER_MAX_BYTES + 64 * 1024,
    )
    # Each hop of a window's close through the internal topic may wait this long at the
    # broker (docs/scaling.md).
    app.fetch_max_wait_ms = settings.fetch_max_wait_ms
    return app


class StreamWorker:
    """Holds the topics, the per-partition state and the stages' tasks of one worker
    process."""

    def __init__(self, app: faust.App, settings: Settings, metrics: Metrics) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.config = settings.detection()
        self.actor_config = settings.actor_detection()
        raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
        self.kinds = {
            settings.content_topic: "content-events",
            settings.report_topic: "report-events",
            settings.labels_topic: "labels",
        }
        # Faust's acknowledgements are off on the topics the worker reads: it commits their
        # offsets itself, from its checkpoints. (Faust's own commits could pass messages that
        # its consumer skipped while resuming; docs/state.md.)
        self.inputs = {
            name: app.topic(name, partitions=settings.input_partitions, acks=False, **raw)
            for name in self.kinds
        }
        big = {"max.message.bytes": str(records.DEAD_LETTER_MAX_BYTES + 64 * 1024)}
        self.dead_letters = {
            name: app.topic(f"{name}.dlq", internal=True, config=big, **raw) for name in self.kinds
        }
        self.partials = app.topic(settings.signal_topic, internal=True, acks=False, **raw)
        self.alerts = app.topic(settings.alerts_topic, internal=True, **raw)
        # Units of state, one per input partition and per signal partition, and their
        # checkpoints in two tables, one co-partitioned with each stage's input.
        self.checkpoints = {
            "ingest": Checkpoints(
                self._state_table("ingest-state", settings.input_partitions), metrics.state_refused
            ),
            "signals": Checkpoints(
                self._state_table("signal-state", settings.partitions), metrics.state_refused
            ),
        }
        self.units: dict[TP, Unit] = {}
        self.checkpointing = True  # not between a revocation and the assignment after it
        self.coordinator: Coordinator | None = None  # on partition 0's owner
        self.coordination = settings.coordination()
        self.published = Published()  # on partition 0's owner
        self.positions: dict[TP, int] = {}
        self.labels_read: dict[TP, int] = {}  # offsets to commit once the labels are flushed
        self.liveness = Liveness()
        self.pusher: AlertmanagerPusher | None = None
        if settings.alertmanager_url:
            self.pusher = pusher_from_settings(settings, metrics)
        self.gate = LabelGate(settings.labelling())  # used on partition 0's owner only
        self.precision_detectors: set[str] = set()
        # Labellers appear in metrics by pseudonym only; a random key makes them unstable
        # across restarts, so deployments set one.
        key = settings.labeler_pseudonym_key.get_secret_value()
        self.labeler_key = key.encode() if key else secrets.token_bytes(32)
        self.store: Store | None = (
            open_store(settings.alert_store) if settings.alert_store else None
        )
        self.store_backlog: deque[tuple[str, dict[str, Any]]] = deque()
        # Batches fetched and not yet processed, of the input topics and of the internal one.
        # When the internal one's is full, the fetch loop waits; the input topics' never makes
        # it wait in normal work (its bound is a backstop): their partitions are held instead.
        self.fetched: asyncio.Queue[faust_kafka.Batch] = asyncio.Queue(4 * FETCHED_MAX)
        self.fetched_signals: asyncio.Queue[faust_kafka.Batch] = asyncio.Queue(FETCHED_MAX)
        self.held: set[TP] = set()  # input partitions not fetched while stage 1 catches up
        # Stage-2 partitions whose last close has its actor windows still to close: closed
        # when nothing else is fetched, before the partition's next message, or before its
        # checkpoint (detectors/stages.py, `Detect.finish`).
        self.unfinished: dict[int, Unfinished] = {}
        # Stage 2 goes first: a window's alerts wait for its work, and new input can wait.
        self.stage_two_idle = asyncio.Event()

    def _state_table(self, name: str, partitions: int) -> faust.Table[bytes, bytes]:
        table = self.app.Table(name, partitions=partitions, key_type=bytes, value_type=bytes)
        return cast(faust.Table[bytes, bytes], table)

    def register(self) -> None:
        # The topics are read in batches (streams/faust_kafka.py): subscribed as Faust's own,
        # their records handed over a partition's fetch at a time, the input topics' to stage
        # 1 and the internal topic's to stage 2, each with a task of its own.
        app = cast(faust_kafka.App, self.app)
        for topic in (*self.inputs.values(), self.partials):
            app.topics.add(topic)
        app.batch_topics = frozenset([*self.inputs, self.settings.signal_topic])
        app.batch_first = frozenset([self.settings.signal_topic])
        app.on_batch = self._fetched
        self.app.task(self._ingest_loop)
        self.app.task(self._signal_loop)
        self.app.timer(5.0)(self._periodic)
        self.app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]
        self.app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]
        if self.pusher is not None:
            self.app.task(self.pusher.run)  # cancelled, and so flushed, when the worker stops

    async def _fetched(self, batch: faust_kafka.Batch) -> None:
        if batch.tp.topic == self.settings.signal_topic:
            await self.fetched_signals.put(batch)
            return
        # The fetch loop must not wait for stage 1: the internal topic's batches, and with
        # them every window's close, would wait behind it. A partition arriving at a full
        # queue is held instead: Faust's consumer leaves it out of its fetches (as for a full
        # stream buffer), and aiokafka keeps what it has read ahead of it.
        if self.fetched.qsize() >= FETCHED_MAX:
            self.app.consumer.on_buffer_full(batch.tp)
            self.held.add(batch.tp)
        await self.fetched.put(batch)

    async def _next_input(self) -> faust_kafka.Batch:
        """The next input batch; once stage 1 is down to half its queue, the held partitions
        (those still assigned) are fetched again."""
        batch = await self.fetched.get()
        if self.held and self.fetched.qsize() <= FETCHED_MAX // 2:
            consumer = self.app.consumer
            assigned = consumer.assignment()
            for tp in self.held & assigned:
                consumer.on_buffer_drop(tp)
            self.held.clear()
        return batch

    def _current(self, batch: faust_kafka.Batch) -> bool:
        """Whether a fetched batch is still to be processed. One of a partition this worker
        no longer owns, or fetched before the partition was sought elsewhere, is dropped: the
        partition's owner reads it again from its checkpoint's offset."""
        consumer = cast(faust_kafka.LogEndConsumer, self.app.consumer)
        return batch.tp in consumer.assignment() and not consumer.stale(batch)

    # -- stage 1 --------------------------------------------------------------------------
    async def _ingest_loop(self) -> None:
        """Stage 1: the batches of the input topics, in the order they were fetched, each
        once stage 2 has nothing to do."""
        while True:
            batch = await self._next_input()
            await self.stage_two_idle.wait()
            if self._current(batch):
                await self.ingest(batch)

    async def ingest(self, batch: faust_kafka.Batch) -> None:
        """Validate, deduplicate, count and summarise one partition's batch; send what it
        closed to stage 2, and dead-letter what is invalid."""
        started = time.perf_counter()
        tp, name = batch.tp, batch.tp.topic
        metrics = self.metrics
        kind = self.kinds[name]
        unit = self._ingest_unit(tp) if kind != "labels" else None
        fresh = batch.records
        # Each message is judged only when some may be: resuming, or read again.
        if unit is not None and fresh and (unit.resuming or fresh[0].offset < unit.position):
            fresh = [record for record in fresh if await self._admit(unit, record.offset, name)]
        if not fresh:
            return
        last = fresh[-1].offset + 1
        self.positions[tp] = last
        now = time.time()
        events = []
        for record in fresh:
            raw: bytes = record.value if record.value is not None else b""
            try:
                event = parse_event(kind, raw, now, self.settings.max_future_s)
            except InvalidEvent as error:
                await self.dead_letter(tp, record, raw, error, now)
                metrics.dead_lettered.labels(name, error.reason).inc()
                continue
            if isinstance(event, Label):  # to the label gate, on partition 0
                await self.partials.send(value=records.label_report(raw), partition=0)
            events.append(event)
        metrics.child(metrics.processed, name).inc(len(events))
        if unit is None:  # labels: committed once the gate's partition has them
            self.labels_read[tp] = last
        else:
            unit.busy, unit.position = True, last
            try:
                await self._stage_one(name, unit.state, events)
            finally:
                unit.busy = False
            unit.last = _event_of(self.app, tp, fresh[-1])
            await self._checkpoint_due(unit)
        # Counted once every message is accounted for: consumed = processed + dead-lettered.
        metrics.child(metrics.consumed, name).inc(len(fresh))
        metrics.child(metrics.batch_seconds, name).observe(time.perf_counter() - started)
        metrics.child(metrics.batch_messages, name).observe(len(fresh))

    async def _stage_one(self, name: str, state: Ingest, events: list[Any]) -> None:
        metrics = self.metrics
        ingested = state.process(events)
        if ingested.outcomes["duplicate"]:
            metrics.child(metrics.duplicates, name).inc(ingested.outcomes["duplicate"])
        if ingested.outcomes["late"]:
            metrics.child(metrics.late, name).inc(ingested.outcomes["late"])
        if ingested.mark is not None:
            for partition, report in records.closed_reports(ingested, self.settings.partitions):
                await self.partials.send(value=report, partition=partition)
            # A watermark closes windows: its reports leave now, not once stage 1 waits.
            await self.app.producer.flush()

    def _ingest_unit(self, tp: TP) -> Unit:
        """The unit of an input partition: as this worker holds it, or from its checkpoint."""
        unit = self.units.get(tp)
        if unit is None:
            unit = self._restore(
                tp, "ingest", f"ingest/{tp.topic}/{tp.partition}".encode(), tp.partition
            )
            if unit.state is None:
                # A window closes once every partition of the topic has passed it: count
                # them from the cluster's metadata rather than trust a setting.
                sources = self.app.consumer.topic_partitions(tp.topic)
                unit.state = Ingest(
                    self.config,
                    self.kinds[tp.topic],
                    tp.partition,
                    sources or self.settings.input_partitions,
                    self.coordination,
                )
        return unit

    async def dead_letter(
        self, tp: TP, message: Any, raw: bytes, error: InvalidEvent, now: float
    ) -> None:
        """Send a record to its topic's dead-letter topic, with where it came from and why."""
        name = tp.topic
        where = (error.reason, error.detail, name, tp.partition, message.offset, message.key)
        try:
            await self.dead_letters[name].send(
                key=message.key, value=records.dead_letter(*where, raw, now)
            )
        except (KafkaError, ProducerSendError):
            # The cluster refused the size: keep what it takes, with the digest of the whole.
            log.exception("dead letter of %s/%s too large, sending its head", name, message.offset)
            await self.dead_letters[name].send(
                key=message.key, value=records.dead_letter(*where, raw, now, keep_bytes=65536)
            )

    # -- stage 2 --------------------------------------------------------------------------
    async def _signal_loop(self) -> None:
        """Stage 2: the batches of the internal topic, in the order they were fetched. A
        batch is taken in one turn of the event loop's work, not one turn or more for each
        message: a window's close makes several hops through this topic, and each waited
        behind stage 1's work once per message. While stage 2 has batches, stage 1 waits:
        its work makes new windows, stage 2's finishes those that closed. The actor windows
        of a close wait for the batches fetched meanwhile: those carry the other partitions'
        closes and the candidates the coordinator's campaigns wait for."""
        while True:
            if self.fetched_signals.empty():
                if self.unfinished:
                    # What went before leaves first: the sends wait for the event loop,
                    # which the actor windows would keep.
                    await self.app.producer.flush()
                    await self._finish(next(iter(self.unfinished)))
                    continue
                self.stage_two_idle.set()
            batch = await self.fetched_signals.get()
            self.stage_two_idle.clear()
            if self._current(batch):
                await self.detect(batch)

    async def detect(self, batch: faust_kafka.Batch) -> None:
        """Stage 2 of one partition's batch of reports, one report at a time."""
        started, taken = time.perf_counter(), time.time()
        tp = batch.tp
        unit = self._signal_unit(tp.partition)
        hop = self.metrics.hop_seconds
        for record in batch.records:
            if not await self._admit(unit, record.offset, tp.topic):
                continue
            if record.timestamp is not None:
                hop.observe(max(0.0, taken - record.timestamp / 1000.0))
            event = _event_of(self.app, tp, record)
            unit.busy, unit.position = True, record.offset + 1
            try:
                await self._signal_message(tp.partition, unit, record.value, event)
            finally:
                unit.busy = tp.partition in self.unfinished  # not whole until then
            unit.last = event
            await self._checkpoint_due(unit)
        metrics = self.metrics
        metrics.child(metrics.batch_seconds, tp.topic).observe(time.perf_counter() - started)
        metrics.child(metrics.batch_messages, tp.topic).observe(len(batch.records))

    def _signal_unit(self, partition: int) -> Unit:
        tp = TP(self.settings.signal_topic, partition)
        unit = self.units.get(tp)
        if unit is None:
            unit = self._restore(tp, "signals", b"signals/%d" % partition, partition)
            if unit.state is None:
                unit.state = SignalState(
                    Detect(
                        self.config,
                        self.actor_config,
                        self.coordination,
                        idle_s=self.settings.source_idle_s,
                    )
                )
            state: SignalState = unit.state
            if partition == 0:  # the coordinator, the gate and the dedup live here
                if state.gate is None:
                    sources = self.app.consumer.topic_partitions(self.settings.signal_topic)
                    state.coordinator = Coordinator(
                        self.coordination, sources or self.settings.partitions
                    )
                    state.gate = LabelGate(self.settings.labelling())
                    state.published = Published()
                if state.published is None:
                    raise RuntimeError("partition 0's state has a label gate but no dedup")
                # Published after the checkpoint: a replay from it would publish them again.
                for key in self.checkpoints["signals"].published_since():
                    state.published.keys[key] = None
                self.coordinator, self.gate, self.published = (
                    state.coordinator,
                    state.gate,
                    state.published,
                )
        return unit

    async def _signal_message(
        self, partition: int, unit: Unit, value: bytes, event: EventT[Any]
    ) -> None:
        state: SignalState = unit.state
        detect = state.detect
        report = records.decode_signal_report(value)
        staged = records.stage_report(report)
        if staged.partials or staged.actors or staged.rows or staged.mark or staged.first_mark:
            await self._finish(partition, in_message=True)  # the message before's close
        now = time.time()
        detected = detect.begin(staged, now)
        if detected.late:
            group_name = group(report.partials[0].signal)
            self.metrics.late.labels(self._input_topic(group_name)).inc(detected.late)
        if report.mark is not None:
            self.observe(detect.processor, report.mark, detected.closed)
            await self._forward(partition, detected.closed.alerts, event)  # spike alerts
            self.metrics.coordination_evicted.inc(detected.index.evicted)
            if detected.index_moved or detected.index.candidates:
                await self._propose(partition, detect, detected.index.candidates, [])
            if detect.unfinished(detected):
                self.unfinished[partition] = Unfinished(unit, detected)
        if report.coordination_closed_until is not None:
            await self._coordinate(report, event)
        if report.alerts:
            await self.emit(report.alerts, event)
        if report.label is not None:
            self.apply_label(report.label)

    async def _finish(self, partition: int, in_message: bool = False) -> None:
        """Close the actor windows of the partition's last close, if it left them open, and
        send the coordinator their alerts; `in_message`: before a message of the partition
        goes on, whose processing keeps the unit busy."""
        pending = self.unfinished.pop(partition, None)
        if pending is None:
            return
        unit = pending.unit
        if self.units.get(TP(self.settings.signal_topic, partition)) is not unit:
            return  # revoked: its next owner resumes from its last checkpoint
        unit.busy = True
        try:
            state: SignalState = unit.state
            detect, detected = state.detect, pending.detected
            detect.finish(detected)
            self.observe_actors(detected.actors)
            if detected.actors_moved or detected.actors.alerts:
                await self._propose(partition, detect, [], detected.actors.alerts)
        finally:
            unit.busy = in_message
        await self._checkpoint_due(unit)

    async def _propose(
        self, partition: int, detect: Detect, candidates: list[Candidate], alerts: list[Alert]
    ) -> None:
        """Send the coordinator on partition 0 the candidates of the coordination windows
        this partition closed, or the actor alerts of its actor windows, with how far each
        has closed."""
        report = records.candidates_report(
            f"index:{partition}",
            candidates,
            detect.index.closed_until,
            alerts,
            detect.actors.closed_until,
        )
        await self.partials.send(value=report, partition=0)

    async def _coordinate(self, report: records.SignalReport, event: EventT[Any]) -> None:
        if self.coordinator is None or report.coordination_closed_until is None:
            raise RuntimeError(
                f"candidates from {report.source} reached a worker without partition 0"
            )
        closed = self.coordinator.add(
            report.source,
            report.candidates,
            report.coordination_closed_until,
            report.actor_alerts,
            report.actors_closed_until,
        )
        self.metrics.groups_open.set(len(self.coordinator))
        self.metrics.alerts_folded.inc(closed.folded)
        await self.emit(closed.alerts, event)

    def observe(self, processor: SignalProcessor, mark: Watermark, closed: Closed) -> None:
        """The metrics of the signal windows a close took."""
        metrics = self.metrics
        window_s = self.config.window_s
        if closed.windows:
            metrics.windows_closed.labels(mark.group).inc(closed.windows)
            metrics.watermark.labels(mark.group).set(processor.groups[mark.group].closed_until)
        if closed.late:
            metrics.late.labels(self._input_topic(mark.group)).inc(closed.late)
        metrics.series_evicted.inc(closed.evicted)
        metrics.series_expired.inc(closed.expired)
        scores = metrics.score.labels("volume_spike")
        for result in closed.results:
            verdict = result.verdict
            scores.observe(verdict.score)
            signal = result.signal
            if is_per_account(signal) or not metrics.signal_label_allowed(signal):
                continue
            metrics.observed.labels(signal).set(verdict.observed / window_s)
            metrics.expected.labels(signal).set(verdict.expected / window_s)
            metrics.band_lower.labels(signal).set(verdict.lower / window_s)
            metrics.band_upper.labels(signal).set(verdict.upper / window_s)
        signals = self._signal_states()
        metrics.series_live.set(sum(state.detect.processor.live_series() for state in signals))

    def observe_actors(self, actors: ActorsClosed) -> None:
        """The metrics of the actor windows a close took."""
        metrics = self.metrics
        for score in actors.scores:
            metrics.actor_score.observe(score)
        metrics.actors_evicted.inc(actors.evicted)
        metrics.actors_expired.inc(actors.expired)
        signals = self._signal_states()
        metrics.actors_tracked.set(sum(len(state.detect.actors) for state in signals))

    def _signal_states(self) -> list[SignalState]:
        return [unit.state for unit in self.units.values() if unit.stage == "signals"]

    async def _forward(self, partition: int, alerts: list[Alert], event: EventT[Any]) -> None:
        """Every alert leaves through the label gate on partition 0."""
        if partition == 0:
            await self.emit(alerts, event)
        elif alerts:
            await self.partials.send(
                value=records.alerts_report(f"alerts:{partition}", alerts), partition=0
            )

    async def emit(self, alerts: list[Alert], event: EventT[Any] | None = None) -> None:
        """Publish alerts as the label gate lets them out: to the alerts topic, Alertmanager
        and the store.

        Each message once: one published before, which a replay from a checkpoint raises
        again, is dropped. In the stream (`event` given), a message is also remembered in
        partition 0's table until the next checkpoint, once the broker has it: a crash in
        between may publish it twice, never lose it."""
        metrics = self.metrics
        now = time.time()
        for raised in alerts:
            key = Published.key(raised.alert_id, raised.status, raised.ts)
            if key in self.published:
                metrics.alerts_deduplicated.inc()
                continue
            self.published.add(key)
            alert, action = self.gate.admit(raised)
            if action == "suppressed":
                metrics.alerts_suppressed.labels(raised.detector).inc()
            elif action == "escalated":
                metrics.alerts_escalated.labels(raised.detector).inc()
            if alert is not None:
                await self._publish(alert, now, event is not None)
            if event is not None:
                self.checkpoints["signals"].remember(key, event)

    async def _publish(self, alert: Alert, now: float, acknowledged: bool) -> None:
        metrics = self.metrics
        record = alert.to_record(emitted_at=now)
        sent = await self.alerts.send(
            key=alert.entity_id.encode(), value=records.encode_alert(record)
        )
        if acknowledged:
            await sent
        if self.pusher is not None:
            self.pusher.submit(record)
        self._store("alert", record)
        metrics.alerts.labels(alert.detector, alert.severity, alert.status).inc()
        if alert.status == "firing" and alert.priority is not None:
            metrics.alert_priority.labels(alert.detector).observe(alert.priority)
        if alert.status == "firing":
            metrics.alert_latency.labels(alert.detector).observe(max(0.0, now - alert.ts))
        log.info("alert %s %s %s: %s", alert.status, alert.severity, alert.alert_id, alert.summary)

    def apply_label(self, label: Label) -> None:
        metrics = self.metrics
        applied = self.gate.label(label)
        if applied.duplicate:
            metrics.duplicates.labels(self.settings.labels_topic).inc()
            return
        metrics.labels.labels(label.subject_type, label.verdict).inc()
        pseudonym = labeler_pseudonym(self.labeler_key, label.labeler)
        metrics.labeler_labels.labels(metrics.labeler_label(pseudonym)).inc()
        if applied.pair_policy is not None:
            metrics.label_pairs.labels(applied.pair_policy).inc()
        record = label.model_dump(mode="json", exclude_none=True) | {"ts": format_rfc3339(label.ts)}
        self._store("label", record)
        self._label_gauges()

    def _label_gauges(self) -> None:
        metrics = self.metrics
        precision = self.gate.precision()
        for detector in self.precision_detectors - set(precision):
            metrics.label_precision.remove(detector)
            metrics.label_verdicts.remove(detector)
        for detector, (ratio, n) in precision.items():
            metrics.label_precision.labels(detector).set(ratio)
            metrics.label_verdicts.labels(detector).set(n)
        self.precision_detectors = set(precision)
        for policy, kappa in self.gate.agreement().items():
            metrics.label_agreement.labels(policy).set(kappa)
        metrics.alerts_unlabelled.set(len(self.gate.unlabelled))

    def _store(self, kind: str, record: dict[str, Any]) -> None:
        """Keep an alert or label for investigations. A store that fails does not stop the
        stream: the write waits in the backlog, which `retry_store` writes every 5 s; while
        it holds anything, new writes join it rather than try a store known to fail."""
        if not self.settings.alert_store:
            return
        if self.store_backlog or not self._write(kind, record):
            if len(self.store_backlog) >= STORE_BACKLOG_MAX:
                self.store_backlog.popleft()
                self.metrics.store_dropped.inc()
            self.store_backlog.append((kind, record))
            self.metrics.store_backlog.set(len(self.store_backlog))

    def retry_store(self) -> None:
        """Write the backlog, oldest first, until the store fails again."""
        while self.store_backlog:
            kind, record = self.store_backlog[0]
            if not self._write(kind, record):
                break
            self.store_backlog.popleft()
        self.metrics.store_backlog.set(len(self.store_backlog))

    def _write(self, kind: str, record: dict[str, Any]) -> bool:
        """One write; False, counted and logged, if the store failed. Both writes are
        idempotent. A record the store refuses as data is set aside (counted and logged, not
        retried): it would otherwise hold every later write behind it in the backlog."""
        try:
            if self.store is None:
                self.store = open_store(self.settings.alert_store)
            if kind == "alert":
                self.store.add_alert(record)
            else:
                self.store.add_label(record)
            return True
        except BadRecord as exc:
            self.metrics.store_rejected.labels(kind).inc()
            key = record.get("alert_id", record.get("label_id"))
            log.error("alert store refused %s %.80r, set aside: %s", kind, key, exc)
            return True
        except Exception:
            self.metrics.store_failures.inc()
            log.exception("alert store write failed")
            # A new connection next time: one to PostgreSQL does not survive a server restart.
            if self.store is not None:
                with contextlib.suppress(Exception):
                    self.store.close()
                self.store = None
            return False

    def _input_topic(self, group_name: str) -> str:
        kind = GROUP_TOPICS[group_name]
        return next(name for name, k in self.kinds.items() if k == kind)

    # -- state ------------------------------------------------------------------------------
    def _restore(self, tp: TP, stage: str, key: bytes, partition: int) -> Unit:
        """A new unit for `tp`, with the state of its last checkpoint if it has one.

        The event loop waits while a checkpoint reads a unit's state, tenths of a second for a
        stage-2 partition's: the units' first checkpoints are spread over the second half of
        the interval, by partition, so that theirs do not come one after the other (and none
        later than the interval: a unit's first commit waits for it)."""
        partitions = (
            self.settings.partitions if stage == "signals" else self.settings.input_partitions
        )
        spread = self.settings.checkpoint_s * (1 - partition % partitions / partitions / 2)
        unit = Unit(stage, key, tp.topic, partition, due=time.time() + spread)
        unit.state = self.checkpoints[stage].load(unit)
        if unit.state is not None:
            unit.resuming = True
            self.metrics.state_restored.labels(stage).inc()
            log.info("%s: state restored, resuming after offset %d", key.decode(), unit.position)
        self.units[tp] = unit
        return unit

    async def _admit(self, unit: Unit, offset: int, name: str) -> bool:
        """Whether the unit's state has yet to see this message. One it holds, read again
        after a restart or a rebalance, is skipped.

        Resuming, the first new message must be the one at the unit's offset. Should the
        consumer have skipped past it (docs/state.md), the partition is read again from
        there, and what comes before that message does is dropped."""
        if offset < unit.position:
            self.metrics.replayed.labels(name).inc()
            return False
        if unit.resuming and offset > unit.position:
            now = time.monotonic()
            if now < unit.rewind_due:
                return False  # read before the rewind under way took effect
            if unit.rewinds < MAX_REWINDS:
                unit.rewinds += 1
                unit.rewind_due = now + REWIND_WAIT_S
                self.metrics.rewinds.labels(name).inc()
                log.warning(
                    "%s: read offset %d, its state is at %d: reading again from there",
                    unit.key.decode(),
                    offset,
                    unit.position,
                )
                await self.app.consumer.seek(TP(unit.topic, unit.partition), unit.position)
                return False
            # Not there after reading again (deleted by retention, say): counted, so that it
            # cannot pass unseen.
            self.metrics.state_gap.labels(name).inc(offset - unit.position)
            log.error(
                "%s resumed at offset %d, its state at %d: %d messages not in it",
                unit.key.decode(),
                offset,
                unit.position,
                offset - unit.position,
            )
        unit.resuming, unit.rewinds = False, 0
        return True

    async def _checkpoint_due(self, unit: Unit) -> None:
        """After a message of the unit: its checkpoint, if due. A stage-2 partition's
        messages come when a window closes, which its checkpoint would hold up (the alerts
        wait for every partition's close): the housekeeping takes those when stage 2 is
        idle, and a message only once half an interval overdue."""
        due = unit.due
        if unit.stage == "signals":
            due += self.settings.checkpoint_s / 2
        if not unit.busy and unit.saving is None and time.time() >= due:
            await self.checkpoint(unit, wait=False)

    async def checkpoint(self, unit: Unit, wait: bool = True) -> None:
        """Save the unit's state, then commit its partition's offset to the checkpoint's: the
        committed offset never passes what a flushed checkpoint holds.

        The event loop waits only while the state is read into bytes: they are compressed
        in a thread, and written, flushed and committed by a task of their own (`unit.saving`,
        one at a time), which `wait` waits for. Meanwhile the unit goes on from where it was
        read, and the checkpoint holds the offset of then."""
        tp = TP(unit.topic, unit.partition)
        event = unit.last
        if event is None or not self.checkpointing or self.units.get(tp) is not unit:
            return  # revoked: the partition's next owner resumes from the last checkpoint
        if unit.saving is None:
            started = time.perf_counter()
            checkpoints = self.checkpoints[unit.stage]
            packed = checkpoints.pack(unit.state)
            pause = time.perf_counter() - started
            self.metrics.checkpoint_pause.labels(unit.stage).observe(pause)
            covered: list[bytes] = []  # alerts published before it, in the state read
            if unit.stage == "signals" and unit.partition == 0:
                covered, self.published.since_checkpoint = self.published.since_checkpoint, []
            unit.due = time.time() + self.settings.checkpoint_s
            unit.saving = asyncio.ensure_future(
                self._save(unit, packed, unit.position, covered, event, started)
            )
        if wait:
            await asyncio.shield(unit.saving)

    async def _save(
        self,
        unit: Unit,
        packed: bytes,
        position: int,
        covered: list[bytes],
        event: EventT[Any],
        started: float,
    ) -> None:
        """Write the bytes of a unit's state as of `position`, then commit to it. Not if the
        partition was revoked meanwhile; then, or if the broker fails it, the unit's offset
        stays at the last checkpoint, and the alerts this one covered are not forgotten."""
        tp = TP(unit.topic, unit.partition)
        checkpoints = self.checkpoints[unit.stage]
        written = False
        try:
            blob, digest = await asyncio.to_thread(checkpoints.seal, packed)
            if not self.checkpointing or self.units.get(tp) is not unit:
                return
            size = checkpoints.write(unit, position, blob, digest, event)
            if covered:
                checkpoints.forget(covered, event)
            written = True
            await self.app.producer.flush()
            unit.saved = position
            await self._commit(unit)
            self.metrics.checkpoint_bytes.labels(unit.stage).observe(size)
            elapsed = time.perf_counter() - started
            self.metrics.checkpoint_seconds.labels(unit.stage).observe(elapsed)
        except Exception:  # the unit goes on, and is checkpointed again when next due
            log.exception("checkpoint of %s/%s failed", unit.topic, unit.partition)
            self.metrics.checkpoint_failures.labels(unit.stage).inc()
        finally:
            unit.saving = None
            if covered and not written and self.units.get(tp) is unit:
                self.published.since_checkpoint[:0] = covered

    async def _commit(self, unit: Unit) -> None:
        """Commit the unit's partition to its last checkpoint (not if revoked since)."""
        if await self._commit_offsets({TP(unit.topic, unit.partition): unit.saved}):
            unit.committed = unit.saved

    async def _commit_offsets(self, offsets: dict[TP, int]) -> bool:
        """Commit offsets as given: the worker commits its inputs itself (acks are off)."""
        consumer = cast(faust_kafka.LogEndConsumer, self.app.consumer)
        return await consumer.commit_offsets(offsets)

    # -- housekeeping -----------------------------------------------------------------------
    async def _periodic(self) -> None:
        """Every 5 s: the liveness tick, checkpoints of units that went quiet and of stage-2
        partitions (one a tick, when stage 2 is idle), the store's backlog, consumer lag,
        and the size of the coordination state."""
        self.liveness.tick()
        now = time.time()
        stage_two_may = self.stage_two_idle.is_set()  # one stage-2 checkpoint this tick
        for unit in list(self.units.values()):
            if unit.busy or unit.saving is not None:
                continue
            if unit.position > unit.saved and now >= unit.due:
                if unit.stage == "signals":
                    if not stage_two_may:
                        continue
                    stage_two_may = False
                await self.checkpoint(unit, wait=False)
            elif unit.saved > unit.committed:  # restored: ahead of the committed offset
                await self._commit(unit)
        if self.labels_read:  # forwarded to the gate: committed once the broker has them
            labels, self.labels_read = self.labels_read, {}
            await self.app.producer.flush()
            await self._commit_offsets(labels)
        self.retry_store()
        signals = self._signal_states()
        if any(state.gate is not None for state in signals):
            self._label_gauges()
        self.metrics.coordination_keys.set(sum(len(state.detect.index) for state in signals))
        self.metrics.coordination_rows.set(sum(state.detect.index.rows_held() for state in signals))
        consumer = self.app.consumer
        lag: dict[str, int] = {}
        for tp in consumer.assignment():
            if tp.topic not in self.inputs:
                continue
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            lag[tp.topic] = lag.get(tp.topic, 0) + max(0, highwater - self.positions.get(tp, 0))
        for topic, value in lag.items():
            self.metrics.consumer_lag.labels(topic).set(value)

    async def _on_revoked(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        # No checkpoint until the new assignment is known: a partition given to another
        # worker must not be written after that worker has recovered it.
        self.checkpointing = False

    async def _on_assigned(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        # Keep the state of partitions this worker still owns; it resumes from the committed
        # offsets, which are at or before its checkpoints, and skips what it holds. State of
        # partitions now owned elsewhere is dropped, with its unacknowledged messages: their
        # next owner resumes from the last checkpoint.
        assigned = self.app.consumer.assignment()
        self.liveness.assigned = True
        log.info("assigned: %s", ", ".join(f"{tp.topic}/{tp.partition}" for tp in sorted(assigned)))
        for tp in set(self.units) - assigned:
            del self.units[tp]
            if tp.topic == self.settings.signal_topic:
                self.unfinished.pop(tp.partition, None)
        for unit in self.units.values():  # kept: read again from the committed offsets
            unit.resuming, unit.rewinds, unit.rewind_due = True, 0, 0.0
        for tp in set(self.positions) - assigned:
            del self.positions[tp]
        for topic in (*self.inputs, self.settings.signal_topic):
            self.metrics.assigned.labels(topic).set(sum(1 for tp in assigned if tp.topic == topic))
        if TP(self.settings.signal_topic, 0) not in assigned:
            self.coordinator = None
            self.gate = LabelGate(self.settings.labelling())
            self.published = Published()
        self.checkpointing = True
