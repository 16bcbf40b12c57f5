"""Internal and dead-letter records round-trip and stay within their size limits."""

from __future__ import annotations

import base64

import orjson

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
                got[(row.event_id, key)] = (start, row._replace(keys=()))
    want = {
        (row.event_id, key): (start, row._replace(keys=()))
        for start, row in rows
        for key in row.keys
    }
    assert got == want  # every key of every row reached its owner, once


def test_candidates_round_trip_with_how_far_their_partition_has_closed() -> None:
    candidate = Candidate("report", "u9", 60.0, ("r1", "r2"), ("r1",), 2, 0, 2, 3, 61.0, 70.0, 9.0,
                          ("e1",), (), {}, {"spam": 3})  # fmt: skip
    alert = Alert("a1", "actor_anomaly", "firing", "warning", "actor", "u1", 120.0, 60.0, 120.0,
                  0.91, 0.5, "Account u1 ...", {"features": {"dup_share": 1.0}})  # fmt: skip
    raw = records.candidates_report("index:2", [candidate], 120.0, [alert])
    report = records.decode_signal_report(raw)
    assert report.source == "index:2" and report.coordination_closed_until == 120.0
    assert report.candidates == [candidate] and report.mark is None
    assert report.actor_alerts == [alert]


def test_dead_letters_keep_the_original_or_its_head_and_digest() -> None:
    small = orjson.loads(records.dead_letter("invalid_json", "x", "t", 1, 2, None, b"abc", 0.0))
    assert base64.b64decode(small["value_base64"]) == b"abc" and "value_truncated" not in small
    big_value = b"x" * 100
    big = orjson.loads(
        records.dead_letter("too_large", "x", "t", 1, 2, b"k", big_value, 0.0, keep_bytes=10)
    )
    assert base64.b64decode(big["value_base64"]) == b"x" * 10
    assert big["value_truncated"] and big["value_bytes"] == 100 and len(big["value_sha256"]) == 64
