"""Internal and dead-letter records round-trip and stay within their size limits."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import NamedTuple

import msgspec
import orjson
from msgspec.structs import replace

from detectors.actor_features import Activity, ActorPartial
from detectors.alerts import Alert
from detectors.coordination import Candidate, Row, bands, index_for
from detectors.stages import Ingested
from detectors.windows import Partial, Watermark
from streams import records
from streams.files import partition_for


def closed(
    mark: Watermark,
    partitions: int,
    partials: list[Partial] | None = None,
    actors: list[ActorPartial] | None = None,
    rows: list[tuple[float, Row]] | None = None,
) -> list[tuple[int, bytes]]:
    """The messages of a batch that closed these windows."""
    ingested = Ingested(mark.source, partials=partials or [], mark=mark)
    ingested.actors, ingested.rows = actors or [], rows or []
    return records.closed_reports(ingested, partitions)


def test_signal_reports_route_chunk_and_round_trip() -> None:
    partials = [
        Partial("content-events:0", f"content.target:u{i}", 60.0, i, (f"e{i}",))
        for i in range(5000)
    ]
    mark = Watermark("content", "content-events:0", 3, 120.0)
    sent = closed(mark, 4, partials)
    got: list[Partial] = []
    marks: dict[int, list[Watermark]] = {}
    for partition, raw in sent:
        report = records.decode_signal_report(raw)
        decoded, watermark = report.partials, report.mark
        assert report.actors == [] and report.rows == []
        assert len(decoded) <= records.PARTIALS_PER_MESSAGE
        assert all(partition_for(p.signal.encode(), 4) == partition for p in decoded)
        got += decoded
        if watermark is not None:
            marks.setdefault(partition, []).append(watermark)
            assert (partition, raw) == [m for m in sent if m[0] == partition][-1]  # last one
    assert sorted(got, key=lambda p: p.count) == partials
    assert marks == {p: [mark] for p in range(4)}


def test_actor_summaries_go_to_the_partition_owning_the_actor_and_round_trip() -> None:
    actors = [
        ActorPartial(
            "content-events:1",
            f"u{i}",
            60.0,
            Activity(events=i, times=[61.5], kinds={"post": i}, texts=[("e1", bytes(range(32)))]),
        )
        for i in range(3000)
    ]
    mark = Watermark("content", "content-events:1", 2, 120.0)
    sent = closed(mark, 3, actors=actors)
    got: list[ActorPartial] = []
    for partition, raw in sent:
        report = records.decode_signal_report(raw)
        decoded, watermark = report.actors, report.mark
        assert report.partials == [] and len(decoded) <= records.PARTIALS_PER_MESSAGE
        assert all(partition_for(a.actor.encode(), 3) == partition for a in decoded)
        got += decoded
        if watermark is not None:  # the watermark follows the summaries it closes
            assert (partition, raw) == [m for m in sent if m[0] == partition][-1]
    assert sorted(got, key=lambda a: a.activity.events) == actors


def test_a_watermark_alone_reaches_every_partition() -> None:
    sent = closed(Watermark("reports", "report-events:1", 2, 60.0), 3)
    assert [p for p, _ in sent] == [0, 1, 2]
    assert all(records.decode_signal_report(raw).partials == [] for _, raw in sent)


def test_coordination_rows_go_to_the_partitions_owning_their_keys_and_round_trip() -> None:
    sig = bytes(range(32))
    rows = [
        (60.0, Row("text", tuple(bands(bytes([i % 251]) + sig[1:])), 61.5, f"u{i}", f"e{i}", 1.0,
                   "hi there", ("a.b",), sig))
        for i in range(2500)
    ] + [(60.0, Row("report", ("u9",), 62.0, "r1", "r9", None, "spam"))]  # fmt: skip
    sent = closed(Watermark("content", "content-events:1", 2, 120.0), 3, rows=rows)
    got: dict[tuple[str, str], tuple[float, Row]] = {}
    for partition, raw in sent:
        report = records.decode_signal_report(raw)
        assert len(report.rows) <= records.PARTIALS_PER_MESSAGE
        for start, row in report.rows:
            assert all(index_for(route, 3) == partition for route in row.routes())
            for key in row.keys:
                got[(row.event_id, key)] = (start, replace(row, keys=()))
    want = {
        (row.event_id, key): (start, replace(row, keys=()))
        for start, row in rows
        for key in row.keys
    }
    assert got == want  # every key of every row reached its owner, once


HOSTILE = "\u202eevil\x00\x1b[31m\u200f" + "x" * 100_000  # bidi, NUL, escape, huge


def every_field_activity(i: int) -> Activity:
    """An activity with every field set, each to a value no other field has."""
    return Activity(events=i + 7, times=[61.5, 62.25], kinds={"post": 3, HOSTILE: 4},
                    surfaces={"feed": 5}, targeted=6, targets=["t1", HOSTILE], texts=[
                    ("e1", bytes(range(32))), (HOSTILE, b"\x00" * 32)], linked=8,
                    domains=["a.example"], created_at=1.5e9 + i, reports_filed=9,
                    reports_received=10, reporters=["r1"], reasons={"spam": 11},
                    sample_ids=["e1", "e2"])  # fmt: skip


def test_every_field_of_hostile_summaries_and_rows_round_trips() -> None:
    sig = bytes(range(32))
    actors = [ActorPartial("content-events:0", f"{HOSTILE}{i}", 60.0, every_field_activity(i))
              for i in range(3)]  # fmt: skip
    rows = [(60.0, Row("text", (f"0:{HOSTILE}",), 61.5, HOSTILE, "e1", None, HOSTILE, (HOSTILE,),
                       sig, HOSTILE))]  # fmt: skip
    sent = closed(Watermark("content", "content-events:0", 2, 120.0), 1, actors=actors, rows=rows)
    report = merged(raw for _, raw in sent)
    assert report.actors == actors and report.rows == rows
    assert report.mark == Watermark("content", "content-events:0", 2, 120.0)


def merged(messages: Iterable[bytes]) -> records.SignalReport:
    """The messages of one close, decoded, in one report."""
    out = records.SignalReport("")
    for raw in messages:
        report = records.decode_signal_report(raw)
        out.source = report.source
        out.partials += report.partials
        out.actors += report.actors
        out.rows += report.rows
        out.mark = report.mark or out.mark
        out.first_mark = report.first_mark or out.first_mark
    return out


def test_messages_of_the_version_before_are_read() -> None:
    """JSON objects, as the version before wrote the topic: a worker upgraded with messages
    of it still on the topic reads them as it would the new ones."""
    activity = every_field_activity(0)
    sig = bytes(range(32))
    row = Row("text", ("0:00010203",), 61.5, "u1", "e1", 1.0, "hi", ("a.b",), sig, "d1")
    old = orjson.dumps({
        "source": "content-events:0",
        "partials": [["content.total", 60.0, 3, ["e1"]]],
        "actors": [["u1", 60.0, [activity.events, activity.times, activity.kinds,
                    activity.surfaces, activity.targeted, activity.targets,
                    [[eid, s.hex()] for eid, s in activity.texts], activity.linked,
                    activity.domains, activity.created_at, activity.reports_filed,
                    activity.reports_received, activity.reporters, activity.reasons,
                    activity.sample_ids]]],
        "rows": [[60.0, "text", ["0:00010203"], 61.5, "u1", "e1", 1.0, "hi", ["a.b"],
                  sig.hex(), "d1"]],
        "watermark": {"group": "content", "sources": 2, "closed_until": 120.0},
        "first_watermark": {"group": "content", "sources": 2, "closed_until": 60.0},
    })  # fmt: skip
    ingested = Ingested("content-events:0", mark=Watermark("content", "content-events:0", 2, 120.0))
    ingested.first_mark = Watermark("content", "content-events:0", 2, 60.0)
    ingested.partials = [Partial("content-events:0", "content.total", 60.0, 3, ("e1",))]
    ingested.actors = [ActorPartial("content-events:0", "u1", 60.0, activity)]
    ingested.rows = [(60.0, row)]
    new = [raw for _, raw in records.closed_reports(ingested, 1)]
    assert not [raw for raw in new if raw[:1] == b"{"]
    assert merged([old]) == merged(new) and merged(new).actors[0].activity == activity


class NamedRow(NamedTuple):
    """A coordination row as the version before held it: a named tuple."""

    kind: str
    keys: tuple[str, ...]
    ts: float
    actor: str
    event_id: str
    created_at: float | None
    detail: str
    domains: tuple[str, ...] = ()
    sig: bytes = b""
    device: str = ""


def test_a_row_has_the_bytes_the_named_tuple_had_on_the_topic_and_in_checkpoints() -> None:
    fields = ("text", ("0:aa", "1:bb"), 30.5, "u1", "c1", None, "buy now", ("a.b",), b"\x01", "d")
    encoder = msgspec.msgpack.Encoder()
    assert encoder.encode([(60.0, Row(*fields))]) == encoder.encode([(60.0, NamedRow(*fields))])
    assert msgspec.structs.astuple(Row(*fields)) == tuple(NamedRow(*fields))
    assert Row.__struct_fields__ == NamedRow._fields
    old = encoder.encode([(60.0, NamedRow(*fields))])  # a message of the version before
    assert msgspec.msgpack.decode(old, type=list[tuple[float, Row]]) == [(60.0, Row(*fields))]


def test_rows_read_from_the_topic_share_their_kind() -> None:
    rows = [(60.0, Row("text", (f"{i}:aa",), 61.0, f"u{i}", f"c{i}", None, "x")) for i in range(3)]
    sent = closed(Watermark("content", "content-events:1", 2, 120.0), 2, rows=rows)
    read = [row for _, raw in sent for _, row in records.decode_signal_report(raw).rows]
    assert len(read) == 3 and all(row.kind is read[0].kind for row in read)


def test_candidates_round_trip_with_how_far_their_partition_has_closed() -> None:
    candidate = Candidate("report", "u9", 60.0, ("r1", "r2"), ("r1",), 2, 0, 2, 3, 61.0, 70.0, 9.0,
                          ("e1",), (), {}, {"spam": 3})  # fmt: skip
    alert = Alert("a1", "actor_anomaly", "firing", "warning", "actor", "u1", 120.0, 60.0, 120.0,
                  0.91, 0.5, "Account u1 ...", {"features": {"dup_share": 1.0}})  # fmt: skip
    raw = records.candidates_report("index:2", [candidate], 120.0, [alert], 60.0)
    report = records.decode_signal_report(raw)
    assert report.source == "index:2" and report.coordination_closed_until == 120.0
    assert report.candidates == [candidate] and report.mark is None
    assert report.actor_alerts == [alert] and report.actors_closed_until == 60.0
    # The version before sent both clocks as one: read as such.
    before = msgspec.msgpack.encode(["index:2", [], [], [], None, None, [], [], 120.0, [], None])
    assert records.decode_signal_report(before).actors_closed_until is None


def test_dead_letters_keep_the_original_or_its_head_and_digest() -> None:
    small = orjson.loads(records.dead_letter("invalid_json", "x", "t", 1, 2, None, b"abc", 0.0))
    assert base64.b64decode(small["value_base64"]) == b"abc" and "value_truncated" not in small
    big_value = b"x" * 100
    big = orjson.loads(
        records.dead_letter("too_large", "x", "t", 1, 2, b"k", big_value, 0.0, keep_bytes=10)
    )
    assert base64.b64decode(big["value_base64"]) == b"x" * 10
    assert big["value_truncated"] and big["value_bytes"] == 100 and len(big["value_sha256"]) == 64
