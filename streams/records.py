"""Bytes on the wire for what the worker writes: dead letters, alerts, and the internal
signal-partials topic. That topic carries stage-1 window counts to the partition owning each
signal, actor summaries to the partition owning each actor, coordination rows to the
partition owning each text bucket, domain and reported account, and, to partition 0, each
partition's coordination candidates, its alerts and the labels, for the label gate there.

Its messages are msgpack arrays of `_Message`'s fields, typed to the field, so that one
decoder in C checks and builds them (a message of the version before, a JSON object, is
read too). The other records are JSON, for the services and people that read them.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson
from msgspec.structs import replace

from detectors.actor_features import Activity, ActivityFields, ActorPartial, activity_fields
from detectors.alerts import Alert
from detectors.coordination import Candidate, Row, row_from_wire
from detectors.events import Label, format_rfc3339, parse_event
from detectors.stages import Ingested, Report, route
from detectors.windows import Partial, Watermark
from streams.files import partition_for

# Dead letters carry the original bytes whole up to this size (base64 makes them a third
# larger); beyond it, the head and a digest of the whole. The producer and the dead-letter
# topics allow messages of DEAD_LETTER_MAX_BYTES.
MAX_ORIGINAL_BYTES = 4 * 1024 * 1024
DEAD_LETTER_MAX_BYTES = 8 * 1024 * 1024


def dead_letter(
    reason: str,
    detail: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    now: float,
    keep_bytes: int = MAX_ORIGINAL_BYTES,
) -> bytes:
    """The dead-letter record: the original bytes (base64), where they came from, and why."""
    value = value or b""
    record: dict[str, Any] = {
        "reason": reason,
        "detail": detail,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key_base64": base64.b64encode(key).decode() if key is not None else None,
        "value_base64": base64.b64encode(value[:keep_bytes]).decode(),
        "dead_lettered_at": format_rfc3339(now),
    }
    if len(value) > keep_bytes:
        record["value_truncated"] = True
        record["value_bytes"] = len(value)
        record["value_sha256"] = hashlib.sha256(value).hexdigest()
    return orjson.dumps(record)


# One signal-partials message carries at most this many partial counts or actor summaries.
PARTIALS_PER_MESSAGE = 2000


def partition_of(key: str, partitions: int) -> int:
    """The stage-2 partition of a signal or actor: Kafka's partitioner on its id."""
    return partition_for(key.encode(), partitions)


def closed_reports(ingested: Ingested, partitions: int) -> list[tuple[int, bytes]]:
    """The messages that carry what one batch closed to the stage-2 partitions."""
    return encode_reports(route(ingested, partitions, partition_of))


class _Message(msgspec.Struct, array_like=True):
    """One message of the signal-partials topic: what a batch's close sends one stage-2
    partition (partials, actor summaries, coordination rows, the watermark), or what one
    sends partition 0 (candidates, actor alerts, alerts, a label)."""

    source: str
    partials: list[tuple[str, float, int, tuple[str, ...]]] = []  # signal, start, count, ids
    actors: list[tuple[str, float, ActivityFields]] = []  # actor, window start, activity
    rows: list[tuple[float, Row]] = []  # window start, row with the keys the partition owns
    watermark: tuple[str, int, float] | None = None  # group, sources, closed until
    first_watermark: tuple[str, int, float] | None = None
    candidates: list[list[Any]] = []  # Candidate.to_wire()
    actor_alerts: list[dict[str, Any]] = []  # Alert.to_record()
    coordination_closed_until: float | None = None
    alerts: list[dict[str, Any]] = []
    label: str | None = None  # the label's JSON, as it came
    # How far the sender's actor windows have closed, with `candidates` and `actor_alerts`:
    # absent from messages of the version before, which sent both when the actor windows
    # closed, under `coordination_closed_until`.
    actors_closed_until: float | None = None


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(_Message)


def encode_reports(reports: dict[int, Report]) -> list[tuple[int, bytes]]:
    """The messages of one batch's close (`detectors.stages.route`), for each stage-2
    partition: its partials, actor summaries and coordination rows, and last the watermark,
    in one message unless there are very many. Sending per partition rather than per signal
    keeps the messages few: a window of thousands of per-account signals is a handful of
    sends."""
    out: list[tuple[int, bytes]] = []
    for partition, report in sorted(reports.items()):
        source = report.source
        partials = [(p.signal, p.window_start, p.count, p.sample_ids) for p in report.partials]
        actors = [(a.actor, a.window_start, activity_fields(a.activity)) for a in report.actors]
        # Each row with the keys this partition owns.
        rows = [(start, replace(row, keys=keys)) for start, row, keys in report.rows]
        messages = [_Message(source, partials=chunk) for chunk in _chunks(partials)]
        messages += [_Message(source, actors=chunk) for chunk in _chunks(actors)]
        messages += [_Message(source, rows=chunk) for chunk in _chunks(rows)]
        if report.mark is not None:
            if not messages:
                messages.append(_Message(source))
            messages[-1].watermark = _mark(report.mark)
            if report.first_mark is not None:
                messages[-1].first_watermark = _mark(report.first_mark)
        out.extend((partition, _ENCODER.encode(message)) for message in messages)
    return out


def _mark(mark: Watermark) -> tuple[str, int, float]:
    return mark.group, mark.sources, mark.closed_until


def _chunks(items: list[Any]) -> list[list[Any]]:
    return [items[i : i + PARTIALS_PER_MESSAGE] for i in range(0, len(items), PARTIALS_PER_MESSAGE)]


def candidates_report(
    source: str,
    candidates: list[Candidate],
    closed_until: float,
    actor_alerts: list[Alert],
    actors_closed_until: float,
) -> bytes:
    """What one stage-2 partition sends the coordinator (on partition 0) when it closes
    windows: the candidates of its coordination index, once that closed, and its actor
    alerts (folded there into campaigns of their accounts, or published), once its actor
    windows closed; and how far each has closed."""
    return _ENCODER.encode(
        _Message(
            source,
            candidates=[c.to_wire() for c in candidates],
            actor_alerts=[alert.to_record(emitted_at=0.0) for alert in actor_alerts],
            coordination_closed_until=closed_until,
            actors_closed_until=actors_closed_until,
        )
    )


def alerts_report(source: str, alerts: list[Alert]) -> bytes:
    """Alerts a stage-2 partition raised, for partition 0, where every alert passes the
    label gate on its way out."""
    records = [alert.to_record(emitted_at=0.0) for alert in alerts]
    return _ENCODER.encode(_Message(source, alerts=records))


def label_report(raw: bytes) -> bytes:
    """A validated label, as it came, for the label gate on partition 0."""
    return _ENCODER.encode(_Message("labels", label=raw.decode()))


@dataclass
class SignalReport:
    """One decoded message of the signal-partials topic."""

    source: str
    partials: list[Partial] = field(default_factory=list)
    actors: list[ActorPartial] = field(default_factory=list)
    rows: list[tuple[float, Row]] = field(default_factory=list)
    mark: Watermark | None = None
    first_mark: Watermark | None = None
    candidates: list[Candidate] = field(default_factory=list)
    actor_alerts: list[Alert] = field(default_factory=list)
    coordination_closed_until: float | None = None
    alerts: list[Alert] = field(default_factory=list)
    label: Label | None = None
    actors_closed_until: float | None = None  # None: as `coordination_closed_until`


def decode_signal_report(raw: bytes) -> SignalReport:
    if raw[:1] == b"{":
        return _decode_json(raw)
    message = _DECODER.decode(raw)
    source = message.source
    report = SignalReport(source)
    report.partials = [Partial(source, *partial) for partial in message.partials]
    report.actors = [
        ActorPartial(source, actor, start, Activity(*activity))
        for actor, start, activity in message.actors
    ]
    report.rows = message.rows
    mark, first = message.watermark, message.first_watermark
    if mark is not None:
        report.mark = Watermark(mark[0], source, mark[1], mark[2])
    if first is not None:
        report.first_mark = Watermark(first[0], source, first[1], first[2])
    report.candidates = [Candidate.from_wire(c) for c in message.candidates]
    report.actor_alerts = [Alert.from_record(a) for a in message.actor_alerts]
    report.alerts = [Alert.from_record(a) for a in message.alerts]
    if message.label is not None:
        report.label = _label(message.label)
    report.coordination_closed_until = message.coordination_closed_until
    report.actors_closed_until = message.actors_closed_until
    return report


def _label(raw: str) -> Label:
    parsed = parse_event("labels", raw.encode())
    if not isinstance(parsed, Label):
        raise TypeError(f"not a label: {type(parsed).__name__}")
    return parsed


def _decode_json(raw: bytes) -> SignalReport:
    """A message as the version before wrote them: a JSON object, the activity's and the
    row's signatures in hex."""
    data: dict[str, Any] = orjson.loads(raw)
    source = data["source"]
    report = SignalReport(source)
    report.partials = [
        Partial(source, signal, float(start), int(count), tuple(ids))
        for signal, start, count, ids in data["partials"]
    ]
    report.actors = [
        ActorPartial(source, actor, float(start), Activity.from_wire(activity))
        for actor, start, activity in data.get("actors", ())
    ]
    report.rows = [row_from_wire(row) for row in data.get("rows", ())]
    mark, first = data.get("watermark"), data.get("first_watermark")
    if mark is not None:
        report.mark = _watermark(source, mark)
    if first is not None:
        report.first_mark = _watermark(source, first)
    report.candidates = [Candidate.from_wire(c) for c in data.get("candidates", ())]
    report.actor_alerts = [Alert.from_record(a) for a in data.get("actor_alerts", ())]
    report.alerts = [Alert.from_record(a) for a in data.get("alerts", ())]
    label = data.get("label")
    if label is not None:
        report.label = _label(label)
    closed = data.get("coordination_closed_until")
    if closed is not None:
        report.coordination_closed_until = float(closed)
    return report


def _watermark(source: str, data: dict[str, Any]) -> Watermark:
    return Watermark(data["group"], source, int(data["sources"]), float(data["closed_until"]))


def stage_report(report: SignalReport) -> Report:
    """The part of a decoded message that stage 2 (`detectors.stages.Detect`) takes."""
    rows: list[tuple[float, Row, Sequence[str]]] = [
        (start, row, row.keys) for start, row in report.rows
    ]
    return Report(
        report.source, report.partials, report.actors, rows, report.mark, report.first_mark
    )


def encode_alert(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)
