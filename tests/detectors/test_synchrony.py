"""Synchronised accounts (detectors/synchrony.py): authors' schedules in stage 1, and groups of
accounts keeping one schedule through both stages."""

from __future__ import annotations

import random
import re
import zlib
from pathlib import Path

import msgspec
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import codec
from detectors.coordination import (
    Candidate,
    CoordinationConfig,
    CoordinationIndex,
    Coordinator,
    Row,
)
from detectors.events import ContentEvent, Event, format_rfc3339
from detectors.pipeline import DetectionConfig
from detectors.stages import Ingest, OfflinePipeline
from detectors.synchrony import Schedules, elements, encode, shared

T0 = 1_795_478_400.0  # 2026-11-24T00:00:00Z
HOUR = 3600.0


def post(i: int, ts: float, author: str, text: str = "good morning all") -> ContentEvent:
    return ContentEvent(
        event_id=f"c{i}",
        ts=format_rfc3339(ts),
        actor_id=author,
        kind="post",
        surface="feed",
        text=text,
        attrs={"device_hash": f"d-{author}"},
    )


def schedule_rows(times: list[float]) -> list[list[int]]:
    """The times of the schedule rows one author's posts at `times` make, window by window."""
    schedules = Schedules(min_slots=5)
    out = []
    for i, ts in enumerate(times):
        for _, (_, _, kept) in schedules.close(ts // 60 * 60):
            out.append(kept)
        schedules.add(post(i, ts, "a"), ts // 60 * 60)
    out += [kept for _, (_, _, kept) in schedules.close(times[-1] + 60)]
    return out


def test_a_schedule_is_sparse_slots_over_an_hour_or_more() -> None:
    every_17_min = [T0 + 1020 * k + 3 for k in range(8)]
    rows = schedule_rows(every_17_min)
    # From the fifth post on (five slots, over an hour), each post makes a row.
    assert [len(r) for r in rows] == [5, 6, 7, 8]
    assert rows[-1] == [int(t) for t in every_17_min]
    # A stream of activity is no schedule: it would match any other stream.
    assert schedule_rows([T0 + 60 * k for k in range(100)]) == []
    # Nor is a burst: five slots in ten minutes.
    assert schedule_rows([T0 + 120 * k for k in range(5)]) == []


def test_times_beyond_the_horizon_are_forgotten() -> None:
    every_20_min = [T0 + 1200 * k for k in range(20)]
    rows = schedule_rows(every_20_min)
    assert max(len(r) for r in rows) == 9  # three hours of slots, the window's included
    assert all(r[-1] - r[0] < 3 * HOUR for r in rows)


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 1e9), st.floats(0, 14.99))
def test_times_less_than_half_a_slot_apart_share_a_slot(t: float, gap: float) -> None:
    assert elements([t], 30.0) & elements([t + gap], 30.0)


def test_the_shared_schedule_is_the_slots_most_members_kept() -> None:
    member = [T0 + 1020 * k for k in range(6)]
    late = [t + 40 for t in member]  # another slot each time
    assert shared([member, member, late], 30.0) == member


def test_accounts_sharing_a_bucket_by_chance_are_no_group() -> None:
    """Busy minutes put accounts in one bucket: the index compares their slots whole."""
    index = CoordinationIndex(CoordinationConfig())
    rng = random.Random(3)
    end = T0 + 3 * HOUR
    for j in range(6):  # six in step with each other, six each at their own times
        in_step = [T0 + 1020 * k + rng.uniform(-5, 5) for k in range(10)]
        own = sorted(T0 + rng.uniform(0, 3 * HOUR) for _ in range(10))
        for name, times in ((f"bot{j}", in_step), (f"u{j}", own)):
            detail = encode(sorted({int(t) for t in times}))
            row = Row("schedule", ("0:aabbcc",), end - 30, name, f"{name}-c", None, detail)
            index.add(end - 60, row)
    [candidate] = index.close(end - 60, end).candidates
    assert candidate.actors == tuple(f"bot{j}" for j in range(6))
    assert len(candidate.schedule) >= 9


def schedule_candidate(key: str, actors: tuple[str, ...], times: tuple[float, ...]) -> Candidate:
    n = len(actors)
    start = T0 + 2 * HOUR  # after every time of the schedules below
    return Candidate("schedule", key, start, actors, (), n, 0, n, n, times[0],
                     times[-1], times[-1] - times[0], (), (), {}, {}, times)  # fmt: skip


def test_buckets_of_one_schedule_are_one_campaign() -> None:
    """A scheduler's accounts may fall in several buckets, none sharing members."""
    times = tuple(T0 + 1020.0 * k for k in range(6))
    a = schedule_candidate("0:aaaaaa", tuple(f"a{j}" for j in range(5)), times)
    b = schedule_candidate(
        "1:bbbbbb", tuple(f"b{j}" for j in range(5)), tuple(t + 2 for t in times)
    )
    other = schedule_candidate(
        "2:cccccc", tuple(f"c{j}" for j in range(5)), tuple(t + 300 for t in times)
    )
    coordinator = Coordinator(CoordinationConfig(), sources=1)
    alerts = coordinator.add("index:0", [a, b, other], a.window_start + 60).alerts
    assert sorted(alert.evidence["member_count"] for alert in alerts) == [5, 10]


# -- both stages ---------------------------------------------------------------------------


def traffic(ring: int, in_step: bool, seed: int = 7) -> tuple[list[Event], set[str]]:
    """Four hours of 300 ordinary accounts posting at random times (some of them busy), and
    `ring` aged accounts each posting about every 17 minutes: all at the same second give or
    take five, or each on its own phase."""
    rng = random.Random(seed)
    events: list[Event] = []
    for i in range(4 * 3600 // 3):
        author = f"u{int(rng.paretovariate(1.2)) % 300}"  # a few accounts post a lot
        events.append(post(i, T0 + 3 * i + 3 * rng.random(), author, f"note {rng.random()}"))
    ring_ids = {f"bot{j}" for j in range(ring)}
    phases = {a: 0.0 if in_step else rng.uniform(0, 1020) for a in sorted(ring_ids)}
    n = len(events)
    for k in range(14):
        for author in sorted(ring_ids):
            if rng.random() < 0.85:
                ts = T0 + 600 + phases[author] + 1020 * k + rng.uniform(-5, 5)
                text = rng.choice(["nice day", "so true", "love it", "hello friends"])
                events.append(post(n, ts, author, text))
                n += 1
    return sorted(events, key=lambda e: e.ts), ring_ids


def alerts_of(events: list[Event], partitions: int = 1) -> list[dict]:
    config = DetectionConfig(warmup_windows=10)
    pipeline = OfflinePipeline(
        config,
        {"content-events": set(range(partitions)), "report-events": set()},
        partitions=partitions,
        partitioner=lambda key, n: zlib.crc32(key.encode()) % n,
    )
    # Content is keyed by author: each author's events go to one input partition.
    by_partition: dict[int, list[Event]] = {p: [] for p in range(partitions)}
    out = []
    for event in events:
        p = zlib.crc32(event.actor_id.encode()) % partitions  # type: ignore[union-attr]
        by_partition[p].append(event)
        if len(by_partition[p]) == 200:
            out += pipeline.feed("content-events", p, by_partition[p])
            by_partition[p] = []
    for p, rest in by_partition.items():
        out += pipeline.feed("content-events", p, rest)
    return [a.to_record(emitted_at=0.0) for a in out]


def synchronised(alerts: list[dict]) -> list[dict]:
    return [a for a in alerts if a["evidence"].get("campaign_kind") == "synchronised"]


def test_accounts_keeping_one_schedule_are_one_synchronised_campaign() -> None:
    events, ring = traffic(ring=12, in_step=True)
    found = synchronised(alerts_of(events, partitions=3))
    assert found, "no synchronised campaign"
    first = found[0]
    assert first["detector"] == "content_campaign" and first["status"] == "firing"
    assert first["entity"]["type"] == "campaign"
    assert len(first["evidence"]["members"]) >= 5
    # One campaign for the ring, updated as it is seen to grow, and none of the others.
    assert {a["entity"]["id"] for a in found} == {first["entity"]["id"]}
    members = {m for a in found for m in a["evidence"]["members"]}
    assert members <= ring and len(members) >= 9
    schedule = first["evidence"]["schedule"]
    assert 1000 <= schedule["period_seconds"] <= 1040
    assert len(schedule["times"]) >= 5
    assert "acting in the same 30 s" in first["summary"]
    assert "about every 17 min" in first["summary"]
    # After five of its slots at least, within its second hour.
    assert format_rfc3339(T0 + 600 + 4 * 1020) <= first["ts"] <= format_rfc3339(T0 + 2 * HOUR)


def test_accounts_on_the_same_pace_but_their_own_phase_are_not() -> None:
    events, _ = traffic(ring=12, in_step=False)
    assert synchronised(alerts_of(events, partitions=3)) == []


def test_a_candidate_of_the_wire_before_schedules_reads() -> None:
    c = Candidate("schedule", "0:aabbcc", T0, ("a", "b"), (), 2, 0, 2, 2, T0, T0, 0.0,
                  ("c1",), (), {}, {}, (T0, T0 + 1020))  # fmt: skip
    assert Candidate.from_wire(c.to_wire()) == c
    old = Candidate.from_wire(c.to_wire()[:-2])  # neither schedule nor watched_s
    assert old.schedule == () and old.actors == c.actors


def test_an_ingest_checkpoint_of_the_layout_before_schedules_resumes() -> None:
    unit = Ingest(DetectionConfig(), "content-events", 0, 1)
    unit.process([post(i, T0 + 1020 * i, "a") for i in range(3)])
    spec = codec.TYPES["Ingest"]
    values = {name: getattr(unit, name) for name in spec.fields}
    tree = ["Ingest", 2, *codec.Encoder().items([values[f] for f in spec.layouts[2]])]
    resumed = codec.decode(zlib.compress(msgspec.msgpack.encode(tree)))
    assert isinstance(resumed.schedules, Schedules) and not resumed.schedules.times
    assert resumed.schedules.window_s == unit.counter.window_s
    resumed.process([post(9, T0 + 4000, "a")])
    assert list(resumed.schedules.times) == ["a"]
    again = codec.decode(codec.encode(resumed))
    assert again.schedules.times == resumed.schedules.times


def test_a_coordination_config_of_the_layout_before_schedules_reads() -> None:
    spec = codec.TYPES["CoordinationConfig"]
    old = {f: getattr(CoordinationConfig(min_actors=9), f) for f in spec.layouts[1]}
    tree = ["CoordinationConfig", 1, *codec.Encoder().items([old[f] for f in spec.layouts[1]])]
    config = codec.decode(zlib.compress(msgspec.msgpack.encode(tree)))
    assert config == CoordinationConfig(min_actors=9)


def test_the_documented_example_has_the_fields_the_detector_writes() -> None:
    text = (Path(__file__).parents[2] / "docs" / "contract.md").read_text()
    body = re.search(r"<!-- example: synchronised-alert -->\n```json\n(.*?)```", text, re.S)
    assert body is not None
    example = orjson.loads(body.group(1))
    events, _ = traffic(ring=12, in_step=True)
    alert = synchronised(alerts_of(events))[0]
    assert set(example) == set(alert)
    assert set(example["evidence"]) == set(alert["evidence"])
    assert set(example["evidence"]["schedule"]) == set(alert["evidence"]["schedule"])
    assert example["evidence"]["campaign_kind"] == alert["evidence"]["campaign_kind"]
