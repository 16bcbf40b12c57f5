"""`abuse-monitor evaluate`: every detector over a file, offline, in event-time order.

The same parser and the same stages as the worker (`detectors.stages`), fed the messages a
replay of the file would produce, in the partitions it would produce them to, in batches. So the alerts
equal the worker's for the same input, all fields but `emitted_at`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from detectors.events import Event, InvalidEvent, Label, parse_event
from detectors.pipeline import GROUP_TOPICS
from detectors.stages import OfflinePipeline
from streams import records
from streams.files import message_of, partition_for, read_lines
from streams.settings import Settings

# Lines of the file read before they are fed, each partition's events as one batch: about
# what one fetch from the broker hands the worker.
BATCH_EVENTS = 4000


@dataclass
class Evaluation:
    alerts: list[dict[str, Any]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    first_ts: float | None = None
    last_ts: float | None = None

    @property
    def duration_s(self) -> float | None:
        if self.first_ts is None or self.last_ts is None:
            return None
        return self.last_ts - self.first_ts


def _valid_events(
    path: str | Path, settings: Settings, now: float, outcomes: Counter[str]
) -> Iterator[tuple[str, int, Event]]:
    for _, topic, value in read_lines(path):
        key, raw = message_of(topic, value)
        outcomes[f"{topic}:consumed"] += 1
        try:
            event = parse_event(topic, raw, now, settings.max_future_s)
        except InvalidEvent as error:
            outcomes[f"{topic}:dead_lettered:{error.reason}"] += 1
            continue
        yield topic, partition_for(key, settings.input_partitions), event


def _sources(path: str | Path, settings: Settings, now: float) -> dict[str, set[int]]:
    """The partitions of each input topic that a replay would give at least one valid event:
    a line is parsed only while its partition has none yet, and the file is read only until
    every partition has one."""
    sources: dict[str, set[int]] = {topic: set() for topic in GROUP_TOPICS.values()}
    wanted = len(sources) * settings.input_partitions
    found = 0
    for _, topic, value in read_lines(path):
        if topic not in sources:
            continue
        key, raw = message_of(topic, value)
        partition = partition_for(key, settings.input_partitions)
        if partition in sources[topic]:
            continue
        try:
            parse_event(topic, raw, now, settings.max_future_s)
        except InvalidEvent:
            continue
        sources[topic].add(partition)
        found += 1
        if found == wanted:
            break
    return sources


def evaluate(path: str | Path, settings: Settings) -> Evaluation:
    now = time.time()
    sources = _sources(path, settings, now)
    result = Evaluation()
    pipeline = OfflinePipeline(
        settings.detection(),
        sources,
        settings.actor_detection(),
        settings.partitions,
        records.partition_of,
        settings.coordination(),
        settings.labelling(),
    )
    batches: dict[tuple[str, int], list[Event]] = {}
    held = 0

    def flush() -> None:
        nonlocal held
        for (topic, partition), events in batches.items():
            for alert in pipeline.feed(topic, partition, events):
                result.alerts.append(alert.to_record(emitted_at=time.time()))
        batches.clear()
        held = 0

    for topic, partition, event in _valid_events(path, settings, now, result.outcomes):
        if result.first_ts is None:
            result.first_ts = event.ts
        result.last_ts = event.ts if result.last_ts is None else max(result.last_ts, event.ts)
        if isinstance(event, Label):  # a label applies to what came before it, and no more
            flush()
        batches.setdefault((topic, partition), []).append(event)
        held += 1
        if held >= BATCH_EVENTS or isinstance(event, Label):
            flush()
    flush()
    result.outcomes.update(pipeline.outcomes)
    return result


def write_alerts(alerts: list[dict[str, Any]], path: str | Path) -> None:
    with open(path, "wb") as out:
        for record in alerts:
            out.write(orjson.dumps(record) + b"\n")


def summarize_outcomes(outcomes: Counter[str]) -> str:
    lines = []
    for topic in sorted({key.split(":")[0] for key in outcomes} - {"alerts"}):
        consumed = outcomes[f"{topic}:consumed"]
        dead = sum(v for k, v in outcomes.items() if k.startswith(f"{topic}:dead_lettered"))
        parts = [f"{topic}: {consumed} consumed", f"{dead} dead-lettered"]
        for status in ("duplicate", "late"):
            if outcomes[f"{topic}:{status}"]:
                parts.append(f"{outcomes[f'{topic}:{status}']} {status}")
        lines.append(", ".join(parts))
    if outcomes["alerts:suppressed"] or outcomes["alerts:escalated"]:
        lines.append(
            f"labels: {outcomes['alerts:suppressed']} alert messages suppressed, "
            f"{outcomes['alerts:escalated']} escalated"
        )
    return "\n".join(lines)
