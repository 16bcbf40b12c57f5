"""The two stages of detection, each taking a batch, run by both drivers.

    input partition ─ Ingest.process(batch) ─▶ Ingested ─ route() ─▶ one Report per stage-2
                                                                     partition
    stage-2 partition ─ Detect.process(report) ─▶ Detected: spike alerts, actor alerts,
                                                  coordination candidates ─▶ coordinator

`Ingest` is stage 1 of one input partition: it deduplicates, counts every event towards its
signals, summarises each actor's activity and collects coordination rows in event-time
windows, and when the batch moved the partition's watermark past windows, closes them. It
does per batch what can be done per batch: the texts' signatures in one vectorised step, and
one close at the end of the batch rather than one each time an event moves the watermark.
An event's fate (counted, duplicate or late) is decided in order, event by event, so a batch
gives the same windows as the same events one at a time.

`route` splits what a batch closed among the stage-2 partitions: signals and actors by a
partitioner (Kafka's, in the worker), coordination rows by their keys.

`Detect` is stage 2 of one partition: it adds the partials, actor summaries and rows of a
report and, when the report carries a watermark, closes the windows every source has passed:
the spike detectors, the actor population model and the coordination index.

`abuse-monitor evaluate` (`OfflinePipeline`) wires these in memory; the
worker (`streams/app.py`) sends the reports through the internal topic. Neither has its own
copy of the stages.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from detectors.accumulate import FirstContacts
from detectors.actor_features import ActivityCollector, ActorPartial
from detectors.actors import ActorConfig, ActorProcessor, ActorsClosed
from detectors.alerts import Alert
from detectors.coordination import (
    Candidate,
    CoordinationCollector,
    CoordinationConfig,
    CoordinationIndex,
    Coordinator,
    IndexClosed,
    Row,
    schedule_rows,
)
from detectors.events import ContentEvent, Event, Label
from detectors.labels import LabelConfig, LabelGate
from detectors.pipeline import (
    TOPIC_GROUPS,
    Closed,
    DetectionConfig,
    SignalProcessor,
    new_counter,
    signals_of,
)
from detectors.synchrony import Schedules
from detectors.text import signatures
from detectors.windows import Partial, Watermark

# Partitioner of signal and actor ids: (id, partitions) -> partition.
Partitioner = Callable[[str, int], int]


@dataclass
class Ingested:
    """What one batch did in stage 1: each event's fate, and the windows it closed."""

    source: str
    outcomes: Counter[str] = field(default_factory=Counter)  # counted, duplicate, late
    partials: list[Partial] = field(default_factory=list)
    mark: Watermark | None = None  # the partition's watermark, if the batch moved it
    first_mark: Watermark | None = None  # its first watermark ever, if in this batch
    actors: list[ActorPartial] = field(default_factory=list)
    rows: list[tuple[float, Row]] = field(default_factory=list)


@dataclass
class Report:
    """What one stage-2 partition gets of a batch's close."""

    source: str
    partials: list[Partial] = field(default_factory=list)
    actors: list[ActorPartial] = field(default_factory=list)
    rows: list[tuple[float, Row, Sequence[str]]] = field(default_factory=list)  # owned keys
    mark: Watermark | None = None
    first_mark: Watermark | None = None


class Ingest:
    """Stage 1 of one input partition (`topic`, `partition`) of a topic with `sources`
    partitions."""

    def __init__(
        self,
        config: DetectionConfig,
        topic: str,
        partition: int,
        sources: int,
        coordination: CoordinationConfig | None = None,
    ) -> None:
        self.counter = new_counter(config, topic, partition, sources)
        self.source = self.counter.source
        self.collector = ActivityCollector(self.source)
        self.rows = CoordinationCollector(self.source)
        self.contacts = FirstContacts(config.accumulate_horizon_s)
        self.schedules = new_schedules(coordination or CoordinationConfig(window_s=config.window_s))
        self.first = True  # no watermark sent yet

    def process(self, events: Sequence[Event]) -> Ingested:
        """Count a batch of valid events of this partition, in partition order."""
        contacts = self.contacts
        batch = self.counter.add_batch(
            [(e.event_id, e.ts, signals_of(e) + contacts.signals(e)) for e in events]
        )
        out = Ingested(self.source, Counter(batch.outcomes), batch.partials)
        if batch.marks:
            out.mark = batch.marks[-1]
            if self.first:  # stage 2 starts its windows at the sources' first watermarks
                out.first_mark, self.first = batch.marks[0], False
        windows = iter(batch.windows)
        counted = [
            (event, next(windows))
            for event, fate in zip(events, batch.outcomes, strict=True)
            if fate == "counted"
        ]
        texts = [e.text if isinstance(e, ContentEvent) and e.text else "" for e, _ in counted]
        collector, rows, schedules = self.collector, self.rows, self.schedules
        for (event, window), sig in zip(counted, signatures(texts), strict=True):
            rows.add(event, window, collector.add(event, window, sig))
            if isinstance(event, ContentEvent):
                schedules.add(event, window)
        if out.mark is not None:
            # Every event after the mark moved is in a window still open: the close at the
            # end of the batch closes what closing at each move would have.
            until = out.mark.closed_until
            out.actors = collector.close(until)
            out.rows = rows.close(until)
            out.rows += schedule_rows(schedules.close(until), schedules.slot_s)
        return out


def new_schedules(config: CoordinationConfig) -> Schedules:
    """Stage 1 of synchronised accounts (detectors/synchrony.py), as `config` sets it."""
    return Schedules(
        config.window_s,
        config.synchrony_horizon_s,
        config.synchrony_slot_s,
        config.synchrony_min_slots,
        config.max_schedules,
    )


def route(ingested: Ingested, partitions: int, partitioner: Partitioner) -> dict[int, Report]:
    """The reports of one batch's close for each stage-2 partition that has something; with
    a watermark, every partition gets one."""
    reports: dict[int, Report] = {}

    def report(partition: int) -> Report:
        found = reports.get(partition)
        if found is None:
            found = reports[partition] = Report(ingested.source)
        return found

    for partial in ingested.partials:
        report(partitioner(partial.signal, partitions)).partials.append(partial)
    for actor in ingested.actors:
        report(partitioner(actor.actor, partitions)).actors.append(actor)
    owned: list[list[tuple[float, Row, Sequence[str]]]] = [[] for _ in range(partitions)]
    for start, row in ingested.rows:
        for partition, keys in row.owners(partitions).items():
            owned[partition].append((start, row, keys))
    for partition, rows in enumerate(owned):
        if rows:
            report(partition).rows = rows
    if ingested.mark is not None:
        for partition in range(partitions):
            found = report(partition)
            found.mark, found.first_mark = ingested.mark, ingested.first_mark
    return reports


@dataclass
class Detected:
    """What a report closed in one stage-2 partition."""

    closed: Closed = field(default_factory=Closed)  # signal windows, spike alerts
    actors: ActorsClosed = field(default_factory=ActorsClosed)
    index: IndexClosed = field(default_factory=IndexClosed)
    late: int = 0  # events in partials of windows already closed
    index_moved: bool = False  # whether the coordination index closed windows
    actors_moved: bool = False  # whether the actor windows closed
    first: float = -math.inf  # actor and coordination windows: from here
    until: float = -math.inf  # to here, closed in both groups


class Detect:
    """Stage 2 of one partition: the signal series, actors and coordination keys it owns.

    `idle_s` and `groups` are `SignalProcessor`'s: streaming, and offline."""

    def __init__(
        self,
        config: DetectionConfig,
        actor_config: ActorConfig,
        coordination: CoordinationConfig,
        idle_s: float | None = None,
        groups: set[str] | None = None,
    ) -> None:
        self.processor = SignalProcessor(config, idle_s=idle_s, groups=groups)
        self.actors = ActorProcessor(actor_config)
        self.index = CoordinationIndex(coordination)

    def process(self, report: Report, now: float | None = None) -> Detected:
        """Add a report; with a watermark, close what every source has passed: `begin`,
        then `finish`."""
        detected = self.begin(report, now)
        self.finish(detected)
        return detected

    def begin(self, report: Report, now: float | None = None) -> Detected:
        """Add a report; with a watermark, close the signal and coordination windows every
        source has passed: what spike alerts and the coordinator's campaigns need. The actor
        windows, the larger part of a close, are left to `finish`."""
        out = Detected()
        processor, actors, index = self.processor, self.actors, self.index
        if report.first_mark is not None:
            processor.register(report.first_mark, now)
        out.late = sum(processor.add_partial(partial) for partial in report.partials)
        for actor in report.actors:
            actors.add_partial(actor)
        for start, row, keys in report.rows:
            index.add(start, row, keys)
        if report.mark is not None:
            out.closed = processor.add_watermark(report.mark, now=now)
            out.first, out.until = processor.both_closed(now)
            before = index.closed_until
            out.index = index.close(out.first, out.until)
            out.index_moved = index.closed_until != before
        return out

    def unfinished(self, detected: Detected) -> bool:
        """Whether `begin` left actor windows for `finish` to close: most watermarks, those
        of sources other than the last to pass a window, close none."""
        until, closed = detected.until, self.actors.closed_until
        return until != -math.inf and (closed == -math.inf or until > closed)

    def finish(self, detected: Detected) -> None:
        """Close the actor windows `begin` found closed, before this partition takes its next
        report."""
        before = self.actors.closed_until
        detected.actors = self.actors.close(detected.first, detected.until)
        detected.actors_moved = self.actors.closed_until != before


def groups_of(sources: dict[str, set[int]]) -> set[str]:
    """The groups whose topics have partitions with events, offline."""
    return {TOPIC_GROUPS[t] for t, parts in sources.items() if parts and t in TOPIC_GROUPS}


class OfflinePipeline:
    """Both stages in memory, as the worker runs them over its partitions: `evaluate`.

    `sources` gives, per input topic, the partitions that carry events, as a replay of the
    same file would put them; `feed` takes a batch of one partition's events. Signals and
    actors go to `partitions` stage-2 partitions by `partitioner`, as the worker's internal
    topic splits them, so each sees the population the worker's would, and every alert
    passes the coordinator and the label gate, as on the worker's partition 0.
    """

    def __init__(
        self,
        config: DetectionConfig,
        sources: dict[str, set[int]],
        actor_config: ActorConfig | None = None,
        partitions: int = 1,
        partitioner: Partitioner = lambda key, partitions: 0,
        coordination_config: CoordinationConfig | None = None,
        label_config: LabelConfig | None = None,
    ) -> None:
        actor_config = actor_config or ActorConfig(window_s=config.window_s)
        coordination = coordination_config or CoordinationConfig(window_s=config.window_s)
        self.ingest = {
            (topic, p): Ingest(config, topic, p, len(parts), coordination)
            for topic, parts in sources.items()
            if topic in TOPIC_GROUPS
            for p in parts
        }
        groups = groups_of(sources)
        self.detect = [
            Detect(config, actor_config, coordination, groups=groups) for _ in range(partitions)
        ]
        self.coordinator = Coordinator(coordination, sources=partitions)
        self.partitioner = partitioner
        self.gate = LabelGate(label_config)
        self.outcomes: Counter[str] = Counter()

    def feed(self, topic: str, partition: int, events: Sequence[Event]) -> list[Alert]:
        """Run a batch of one partition's valid events through both stages; returns the
        alerts it caused, as the label gate lets them out."""
        if topic not in TOPIC_GROUPS:
            for event in events:
                if isinstance(event, Label):
                    self.gate.label(event)
            self.outcomes[f"{topic}:processed"] += len(events)
            return []
        ingested = self.ingest[(topic, partition)].process(events)
        for status, n in ingested.outcomes.items():
            self.outcomes[f"{topic}:{status}"] += n
        reports = sorted(route(ingested, len(self.detect), self.partitioner).items())
        # As the worker does: every partition's signal and coordination windows first, whose
        # candidates the coordinator takes, then their actor windows.
        begun = []
        coordinated: list[Alert] = []
        for i, report in reports:
            detect = self.detect[i]
            detected = detect.begin(report)
            if report.mark is not None:
                coordinated += self._coordinate(i, detected.index.candidates, ())
            begun.append((i, report, detected))
        alerts: list[Alert] = []
        for i, report, detected in begun:
            self.detect[i].finish(detected)
            late = detected.late + detected.closed.late
            if late:
                self.outcomes[f"{topic}:late"] += late
            alerts.extend(detected.closed.alerts)
            if report.mark is not None:
                coordinated += self._coordinate(i, (), detected.actors.alerts)
        return self.admit(alerts + coordinated)

    def _coordinate(
        self, partition: int, candidates: Sequence[Candidate], actor_alerts: Sequence[Alert]
    ) -> list[Alert]:
        """Hand the coordinator a partition's candidates or actor alerts, with how far its
        index and its actor windows have closed."""
        detect = self.detect[partition]
        return self.coordinator.add(
            f"index:{partition}",
            candidates,
            detect.index.closed_until,
            actor_alerts,
            detect.actors.closed_until,
        ).alerts

    def admit(self, alerts: list[Alert]) -> list[Alert]:
        out = []
        for alert in alerts:
            admitted, action = self.gate.admit(alert)
            if action is not None:
                self.outcomes[f"alerts:{action}"] += 1
            if admitted is not None:
                out.append(admitted)
        return out
