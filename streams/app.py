"""The Faust application: topics, agents and the sinks they write to.

Two stages, so that no signal funnels through one partition:

    content-events / report-events / labels ─ingest agents─▶ <app>-signal-partials (by signal)
         │ invalid ─▶ <topic>.dlq                          │        ▲ candidates, alerts and
                                                  signal agent ──┘   labels, to partition 0
                                     partition 0: label gate ──▶ alerts (keyed by entity id)

The ingest agents validate every message (bad ones go to the dead-letter topic with the
original bytes and a reason), drop repeated event ids, count events per signal and summarise
each actor's activity in event-time windows, one `PartitionCounter` and one
`ActivityCollector` per input partition. When a partition's watermark passes a window, its
partial counts go to the partition that owns each signal, its actor summaries to the
partition that owns each actor, and a watermark mark to every partition. The signal agent
adds the partials up, closes windows once every source partition has passed them, runs the
spike detectors and the actor population model, and publishes alerts. Coordination rows
(text buckets, new domains, reported accounts) go to the partition owning each key; when a
partition closes windows it sends its campaign and brigade candidates to partition 0, whose
coordinator folds them into campaigns and brigades once every partition has closed a window.
Every alert leaves through the label gate on partition 0, which also gets every label: it
drops alerts on entities analysts labelled benign, escalates those on actors labelled abusive,
adds the learnt priority, and keeps precision per detector; alerts and labels are also written
to the alert and label store when one is configured.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError
from faust.types import TP

from detectors.actor_features import ActivityCollector
from detectors.actors import ActorProcessor, ActorsClosed
from detectors.alerts import Alert
from detectors.coordination import CoordinationCollector, CoordinationIndex, Coordinator
from detectors.events import InvalidEvent, Label, format_rfc3339, parse_event
from detectors.labels import LabelGate
from detectors.pipeline import (
    GROUP_TOPICS,
    Closed,
    SignalProcessor,
    new_counter,
    signals_of,
)
from detectors.signals import group, is_per_account
from detectors.windows import PartitionCounter, Watermark
from streams import faust_kafka, records
from streams.alertmanager import AlertmanagerPusher, pusher_from_settings
from streams.http import Liveness
from streams.metrics import Metrics
from streams.settings import Settings
from streams.store import Store, open_store

log = logging.getLogger("abuse_monitor")

# Alert and label writes kept while the store fails, retried every 5 s; the oldest are dropped
# beyond this many.
STORE_BACKLOG_MAX = 10_000


def create_app(settings: Settings, metrics: Metrics) -> StreamWorker:
    worker = StreamWorker(faust_app(settings), settings, metrics)
    worker.register()
    return worker


def faust_app(settings: Settings) -> faust.App:
    """The Faust app with the worker's broker, consumer and producer settings, no agents.

    Its Kafka transport is `streams.faust_kafka`'s, which keeps changelog-backed state
    across a crash (docs/state.md)."""
    return faust_kafka.App(
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
        producer_max_request_size=records.DEAD_LETTER_MAX_BYTES + 64 * 1024,
    )


class StreamWorker:
    """Holds the topics, the per-partition state and the agents of one worker process."""

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
        self.inputs = {
            name: app.topic(name, partitions=settings.input_partitions, **raw)
            for name in self.kinds
        }
        big = {"max.message.bytes": str(records.DEAD_LETTER_MAX_BYTES + 64 * 1024)}
        self.dead_letters = {
            name: app.topic(f"{name}.dlq", internal=True, config=big, **raw) for name in self.kinds
        }
        self.partials = app.topic(settings.signal_topic, internal=True, **raw)
        self.alerts = app.topic(settings.alerts_topic, internal=True, **raw)
        self.counters: dict[TP, PartitionCounter] = {}
        self.collectors: dict[TP, ActivityCollector] = {}
        self.row_collectors: dict[TP, CoordinationCollector] = {}
        self.indexes: dict[int, CoordinationIndex] = {}
        self.coordinator: Coordinator | None = None
        self.coordination = settings.coordination()
        self.processors: dict[int, SignalProcessor] = {}
        self.actor_processors: dict[int, ActorProcessor] = {}
        self.positions: dict[TP, int] = {}
        self.liveness = Liveness()
        self.pusher: AlertmanagerPusher | None = None
        if settings.alertmanager_url:
            self.pusher = pusher_from_settings(settings, metrics)
        self.gate = LabelGate(settings.labelling())  # used on partition 0's owner only
        self.precision_detectors: set[str] = set()
        self.store: Store | None = (
            open_store(settings.alert_store) if settings.alert_store else None
        )
        self.store_backlog: deque[tuple[str, dict[str, Any]]] = deque()

    def register(self) -> None:
        for name, topic in self.inputs.items():
            self.app.agent(topic, name=f"ingest-{name}")(self._ingest_agent(name))
        self.app.agent(self.partials, name="signals")(self._signal_agent)
        self.app.timer(5.0)(self._periodic)
        self.app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]
        if self.pusher is not None:
            self.app.task(self.pusher.run)  # cancelled, and so flushed, when the worker stops

    # -- stage 1 --------------------------------------------------------------------------
    def _ingest_agent(self, name: str) -> Any:
        async def ingest(stream: faust.StreamT[bytes]) -> None:
            async for event in stream.events():
                started = time.perf_counter()
                await self.ingest(name, event.message)
                self.metrics.processing.labels(name).observe(time.perf_counter() - started)

        return ingest

    async def ingest(self, name: str, message: Any) -> None:
        metrics = self.metrics
        tp = TP(message.topic, message.partition)
        self.positions[tp] = message.offset + 1
        metrics.consumed.labels(name).inc()
        raw: bytes = message.value if message.value is not None else b""
        now = time.time()
        try:
            event = parse_event(self.kinds[name], raw, now, self.settings.max_future_s)
        except InvalidEvent as error:
            await self.dead_letter(name, message, raw, error, now)
            metrics.dead_lettered.labels(name, error.reason).inc()
            return
        if isinstance(event, Label):  # to the label gate, on partition 0
            await self.partials.send(value=records.label_report(raw), partition=0)
            metrics.processed.labels(name).inc()
            return
        counter = self.counters.get(tp)
        if counter is None:
            # A window closes once every partition of the topic has passed it: count them
            # from the cluster's metadata rather than trust a setting.
            sources = self.app.consumer.topic_partitions(message.topic)
            counter = new_counter(
                self.config,
                self.kinds[name],
                message.partition,
                sources or self.settings.input_partitions,
            )
            self.counters[tp] = counter
            self.collectors[tp] = ActivityCollector(counter.source)
            self.row_collectors[tp] = CoordinationCollector(counter.source)
        collector = self.collectors[tp]
        rows = self.row_collectors[tp]
        status, emitted = counter.add(event.event_id, event.ts, signals_of(event))
        if status == "counted":
            window = counter.window_of(event.ts)
            rows.add(event, window, collector.add(event, window))
        metrics.processed.labels(name).inc()
        if status == "duplicate":
            metrics.duplicates.labels(name).inc()
        elif status == "late":
            metrics.late.labels(name).inc()
        if emitted:
            mark = emitted[-1]
            actors, closed_rows = [], []
            if isinstance(mark, Watermark):
                actors = collector.close(mark.closed_until)
                closed_rows = rows.close(mark.closed_until)
            reports = records.signal_reports(emitted, self.settings.partitions, actors, closed_rows)
            for partition, report in reports:
                await self.partials.send(value=report, partition=partition)

    async def dead_letter(
        self, name: str, message: Any, raw: bytes, error: InvalidEvent, now: float
    ) -> None:
        where = (error.reason, error.detail, name, message.partition, message.offset, message.key)
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
    async def _signal_agent(self, stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            partition = event.message.partition
            processor = self.processors.get(partition)
            if processor is None:
                processor = SignalProcessor(self.config, idle_s=self.settings.source_idle_s)
                self.processors[partition] = processor
                self.actor_processors[partition] = ActorProcessor(self.actor_config)
                self.indexes[partition] = CoordinationIndex(self.coordination)
            actor_processor = self.actor_processors[partition]
            index = self.indexes[partition]
            report = records.decode_signal_report(event.message.value)
            partials, mark = report.partials, report.mark
            late = sum(processor.add_partial(partial) for partial in partials)
            if late:
                self.metrics.late.labels(self._input_topic(group(partials[0].signal))).inc(late)
            for actor in report.actors:
                actor_processor.add_partial(actor)
            for start, row in report.rows:
                index.add(start, row)
            if mark is not None:
                now = time.time()
                closed = processor.add_watermark(mark, now=now)
                first, until = processor.both_closed(now)
                actors_closed = actor_processor.close(first, until)
                self.observe(processor, mark, closed, actors_closed)
                await self._forward(partition, closed.alerts)  # actor alerts go by the coordinator
                await self._propose(partition, index, first, until, actors_closed.alerts)
            if report.coordination_closed_until is not None:
                await self._coordinate(report)
            if report.alerts:
                await self.emit(report.alerts)
            if report.label is not None:
                self.apply_label(report.label)

    async def _propose(
        self,
        partition: int,
        index: CoordinationIndex,
        first: float,
        until: float,
        actor_alerts: list[Alert],
    ) -> None:
        """Close this partition's coordination windows; send the candidates and the actor
        alerts to the coordinator on partition 0."""
        before = index.closed_until
        found = index.close(first, until)
        self.metrics.coordination_evicted.inc(found.evicted)
        if index.closed_until == before and not found.candidates and not actor_alerts:
            return
        report = records.candidates_report(
            f"index:{partition}", found.candidates, index.closed_until, actor_alerts
        )
        await self.partials.send(value=report, partition=0)

    async def _coordinate(self, report: records.SignalReport) -> None:
        if self.coordinator is None:
            sources = self.app.consumer.topic_partitions(self.settings.signal_topic)
            self.coordinator = Coordinator(self.coordination, sources or self.settings.partitions)
        assert report.coordination_closed_until is not None
        closed = self.coordinator.add(
            report.source,
            report.candidates,
            report.coordination_closed_until,
            report.actor_alerts,
        )
        self.metrics.groups_open.set(len(self.coordinator))
        self.metrics.alerts_folded.inc(closed.folded)
        await self.emit(closed.alerts)

    def observe(
        self,
        processor: SignalProcessor,
        mark: Watermark,
        closed: Closed,
        actors: ActorsClosed,
    ) -> None:
        metrics = self.metrics
        window_s = self.config.window_s
        if closed.windows:
            metrics.windows_closed.labels(mark.group).inc(closed.windows)
            metrics.watermark.labels(mark.group).set(processor.groups[mark.group].closed_until)
        if closed.late:
            metrics.late.labels(self._input_topic(mark.group)).inc(closed.late)
        metrics.series_evicted.inc(closed.evicted)
        metrics.series_expired.inc(closed.expired)
        for result in closed.results:
            verdict = result.verdict
            metrics.score.labels("volume_spike").observe(verdict.score)
            signal = result.signal
            if is_per_account(signal) or not metrics.signal_label_allowed(signal):
                continue
            metrics.observed.labels(signal).set(verdict.observed / window_s)
            metrics.expected.labels(signal).set(verdict.expected / window_s)
            metrics.band_lower.labels(signal).set(verdict.lower / window_s)
            metrics.band_upper.labels(signal).set(verdict.upper / window_s)
        for score in actors.scores:
            metrics.actor_score.observe(score)
        metrics.actors_evicted.inc(actors.evicted)
        metrics.actors_expired.inc(actors.expired)
        metrics.actors_tracked.set(sum(len(p) for p in self.actor_processors.values()))
        metrics.series_live.set(sum(p.live_series() for p in self.processors.values()))

    async def _forward(self, partition: int, alerts: list[Alert]) -> None:
        """Every alert leaves through the label gate on partition 0."""
        if partition == 0:
            await self.emit(alerts)
        elif alerts:
            await self.partials.send(
                value=records.alerts_report(f"alerts:{partition}", alerts), partition=0
            )

    async def emit(self, alerts: list[Alert]) -> None:
        """Publish alerts as the label gate lets them out: to the alerts topic, Alertmanager
        and the store."""
        metrics = self.metrics
        now = time.time()
        for raised in alerts:
            alert, action = self.gate.admit(raised)
            if action == "suppressed":
                metrics.alerts_suppressed.labels(raised.detector).inc()
            elif action == "escalated":
                metrics.alerts_escalated.labels(raised.detector).inc()
            if alert is None:
                continue
            record = alert.to_record(emitted_at=now)
            await self.alerts.send(key=alert.entity_id.encode(), value=records.encode_alert(record))
            if self.pusher is not None:
                self.pusher.submit(record)
            self._store("alert", record)
            metrics.alerts.labels(alert.detector, alert.severity, alert.status).inc()
            if alert.status == "firing" and alert.priority is not None:
                metrics.alert_priority.labels(alert.detector).observe(alert.priority)
            if alert.status == "firing":
                metrics.alert_latency.labels(alert.detector).observe(max(0.0, now - alert.ts))
            log.info(
                "alert %s %s %s: %s", alert.status, alert.severity, alert.alert_id, alert.summary
            )

    def apply_label(self, label: Label) -> None:
        metrics = self.metrics
        applied = self.gate.label(label)
        if applied.duplicate:
            metrics.duplicates.labels(self.settings.labels_topic).inc()
            return
        metrics.labels.labels(label.subject_type, label.verdict).inc()
        metrics.labeler_labels.labels(metrics.labeler_label(label.labeler)).inc()
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
        """One write; False, counted and logged, if it failed. Both writes are idempotent."""
        try:
            if self.store is None:
                self.store = open_store(self.settings.alert_store)
            if kind == "alert":
                self.store.add_alert(record)
            else:
                self.store.add_label(record)
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

    # -- housekeeping -----------------------------------------------------------------------
    async def _periodic(self) -> None:
        """Every 5 s: the liveness tick, the store's backlog, consumer lag, and the size of the
        coordination state."""
        self.liveness.tick()
        self.retry_store()
        if 0 in self.processors:
            self._label_gauges()
        self.metrics.coordination_keys.set(sum(len(i) for i in self.indexes.values()))
        self.metrics.coordination_rows.set(sum(i.rows_held() for i in self.indexes.values()))
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

    async def _on_assigned(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        # Keep the state of partitions this worker still owns: stage 1 drops re-read event ids
        # and stage 2 re-read partials. State of partitions now owned elsewhere is dropped.
        assigned = self.app.consumer.assignment()
        self.liveness.assigned = True
        log.info("assigned: %s", ", ".join(f"{tp.topic}/{tp.partition}" for tp in sorted(assigned)))
        for tp in set(self.counters) - assigned:
            del self.counters[tp]
            del self.collectors[tp]
            del self.row_collectors[tp]
        for tp in set(self.positions) - assigned:
            del self.positions[tp]
        for topic in (*self.inputs, self.settings.signal_topic):
            self.metrics.assigned.labels(topic).set(sum(1 for tp in assigned if tp.topic == topic))
        owned = {tp.partition for tp in assigned if tp.topic == self.settings.signal_topic}
        for partition in set(self.processors) - owned:
            del self.processors[partition]
            del self.actor_processors[partition]
            del self.indexes[partition]
        if 0 not in owned:
            self.coordinator = None
            self.gate = LabelGate(self.settings.labelling())
