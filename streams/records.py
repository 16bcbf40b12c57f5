"""Bytes on the wire for what the worker writes: dead letters, alerts, and the internal
signal-partials topic. That topic carries stage-1 window counts to the partition owning each
signal, actor summaries to the partition owning each actor, coordination rows to the
partition owning each text bucket, domain and reported account, and, to partition 0, each
partition's coordination candidates, its alerts and the labels, for the label gate there.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from detectors.actor_features import Activity, ActorPartial
from detectors.alerts import Alert
from detectors.coordination import Candidate, Row, row_from_wire, row_to_wire
from detectors.events import Label, format_rfc3339, parse_event
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


def signal_reports(
    items: list[Partial | Watermark],
    partitions: int,
    actors: list[ActorPartial] | None = None,
    rows: list[tuple[float, Row]] | None = None,
) -> list[tuple[int, bytes]]:
    """What one stage-1 close sends: to every stage-2 partition, the partials of the signals
    and the activity of the actors it owns (by Kafka's partitioner on the signal or actor id),
    the coordination rows of the keys it owns, and last the watermark, in one message unless
    there are very many. Sending per partition rather than per signal keeps the messages few:
    a window of thousands of per-account signals is a handful of sends.
    """
    mark = next((item for item in items if isinstance(item, Watermark)), None)
    signals: dict[int, list[list[Any]]] = {p: [] for p in range(partitions)}
    owned_actors: dict[int, list[list[Any]]] = {p: [] for p in range(partitions)}
    owned_rows: dict[int, list[list[Any]]] = {p: [] for p in range(partitions)}
    source = mark.source if mark else ""
    for item in items:
        if isinstance(item, Partial):
            source = item.source
            signals[partition_for(item.signal.encode(), partitions)].append(
                [item.signal, item.window_start, item.count, item.sample_ids]
            )
    for actor in actors or ():
        source = actor.source
        owned_actors[partition_for(actor.actor.encode(), partitions)].append(
            [actor.actor, actor.window_start, actor.activity.to_wire()]
        )
    for start, row in rows or ():
        for partition, keys in row.owners(partitions).items():
            owned_rows[partition].append(row_to_wire(start, row, keys))
    out: list[tuple[int, bytes]] = []
    for partition in range(partitions):
        messages: list[dict[str, Any]] = [
            {"source": source, "partials": chunk, "actors": []}
            for chunk in _chunks(signals[partition])
        ] + [
            {"source": source, "partials": [], "actors": chunk}
            for chunk in _chunks(owned_actors[partition])
        ]
        messages += [
            {"source": source, "partials": [], "actors": [], "rows": chunk}
            for chunk in _chunks(owned_rows[partition])
        ]
        if mark is not None:
            if not messages:
                messages.append({"source": source, "partials": [], "actors": []})
            messages[-1]["watermark"] = {
                "group": mark.group,
                "sources": mark.sources,
                "closed_until": mark.closed_until,
            }
        out.extend((partition, orjson.dumps(message)) for message in messages)
    return out


def _chunks(items: list[list[Any]]) -> list[list[list[Any]]]:
    return [items[i : i + PARTIALS_PER_MESSAGE] for i in range(0, len(items), PARTIALS_PER_MESSAGE)]


def candidates_report(
    source: str, candidates: list[Candidate], closed_until: float, actor_alerts: list[Alert]
) -> bytes:
    """What one stage-2 partition sends the coordinator (on partition 0) when it closes
    windows: its candidates, its actor alerts (folded there into campaigns of their
    accounts, or published), and how far it has closed."""
    return orjson.dumps(
        {
            "source": source,
            "partials": [],
            "candidates": [c.to_wire() for c in candidates],
            "actor_alerts": [alert.to_record(emitted_at=0.0) for alert in actor_alerts],
            "coordination_closed_until": closed_until,
        }
    )


def alerts_report(source: str, alerts: list[Alert]) -> bytes:
    """Alerts a stage-2 partition raised, for partition 0, where every alert passes the
    label gate on its way out."""
    records = [alert.to_record(emitted_at=0.0) for alert in alerts]
    return orjson.dumps({"source": source, "partials": [], "alerts": records})


def label_report(raw: bytes) -> bytes:
    """A validated label, as it came, for the label gate on partition 0."""
    return orjson.dumps({"source": "labels", "partials": [], "label": raw.decode()})


@dataclass
class SignalReport:
    """One decoded message of the signal-partials topic."""

    source: str
    partials: list[Partial] = field(default_factory=list)
    actors: list[ActorPartial] = field(default_factory=list)
    rows: list[tuple[float, Row]] = field(default_factory=list)
    mark: Watermark | None = None
    candidates: list[Candidate] = field(default_factory=list)
    actor_alerts: list[Alert] = field(default_factory=list)
    coordination_closed_until: float | None = None
    alerts: list[Alert] = field(default_factory=list)
    label: Label | None = None


def decode_signal_report(raw: bytes) -> SignalReport:
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
    mark = data.get("watermark")
    if mark is not None:
        report.mark = Watermark(
            mark["group"], source, int(mark["sources"]), float(mark["closed_until"])
        )
    report.candidates = [Candidate.from_wire(c) for c in data.get("candidates", ())]
    report.actor_alerts = [Alert.from_record(a) for a in data.get("actor_alerts", ())]
    report.alerts = [Alert.from_record(a) for a in data.get("alerts", ())]
    label = data.get("label")
    if label is not None:
        parsed = parse_event("labels", label.encode())
        assert isinstance(parsed, Label)
        report.label = parsed
    closed = data.get("coordination_closed_until")
    if closed is not None:
        report.coordination_closed_until = float(closed)
    return report


def encode_alert(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)
