"""The stages give the same windows and alerts however their input is cut into batches."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import orjson
import pytest

from detectors.actors import ActorConfig
from detectors.events import Event, parse_event
from detectors.pipeline import DetectionConfig
from detectors.stages import Ingest, OfflinePipeline, route
from simulator import SimConfig, generate
from streams.files import TOPIC_KEYS, partition_for

PARTITIONS = 3


@pytest.fixture(scope="module")
def stream() -> list[tuple[str, int, Event]]:
    """Four hours of traffic with a spam wave, a bot ring and a copy-paste campaign, each
    event with its input partition."""
    config = SimConfig(
        seed=5,
        duration_s=4 * 3600.0,
        rate=2.0,
        actors=2000,
        scenarios=("spam_wave",),
        actor_scenarios=("bot_ring",),
        group_scenarios=("copy_paste_campaign",),
        first_attack_s=5400.0,
    )
    out = []
    for topic, value in generate(config):
        if topic == "labels":
            continue
        key = value[TOPIC_KEYS[topic]].encode()
        out.append((topic, partition_for(key, PARTITIONS), parse_event(topic, orjson.dumps(value))))
    return out


def run(stream: list[tuple[str, int, Event]], cuts: list[int]) -> list[bytes]:
    """Every alert of the stream fed in chunks of these many events (the last repeated),
    each chunk one batch per partition; sorted, as records without `emitted_at`."""
    sources: dict[str, set[int]] = {}
    for topic, partition, _ in stream:
        sources.setdefault(topic, set()).add(partition)
    config = DetectionConfig()
    pipeline = OfflinePipeline(
        config,
        sources,
        ActorConfig(window_s=config.window_s, warmup=100),
        PARTITIONS,
        lambda key, n: partition_for(key.encode(), n),
    )
    alerts = []
    i = 0
    for n in (*cuts, *[cuts[-1]] * len(stream)):
        if i >= len(stream):
            break
        batches: dict[tuple[str, int], list[Event]] = {}
        for topic, partition, event in stream[i : i + n]:
            batches.setdefault((topic, partition), []).append(event)
        for (topic, partition), events in batches.items():
            alerts += pipeline.feed(topic, partition, events)
        i += n
    records: list[dict[str, Any]] = [alert.to_record(emitted_at=0.0) for alert in alerts]
    return sorted(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in records)


def test_batches_of_any_size_raise_the_alerts_one_event_at_a_time_does(
    stream: list[tuple[str, int, Event]],
) -> None:
    one_by_one = run(stream, [1])
    detectors = Counter(orjson.loads(a)["detector"] for a in one_by_one)
    assert {"volume_spike", "actor_anomaly", "content_campaign"} <= set(detectors)
    assert run(stream, [5000]) == one_by_one
    rng = random.Random(3)
    assert run(stream, [rng.randint(1, 3000) for _ in range(200)]) == one_by_one


def test_an_event_behind_the_watermark_its_own_batch_moved_is_late() -> None:
    config = DetectionConfig(window_s=60.0, lateness_s=10.0)
    ingest = Ingest(config, "report-events", 0, sources=1)

    def report(i: int, ts: str) -> Event:
        raw = (
            f'{{"event_id": "r{i}", "ts": "1970-01-01T00:{ts}Z", "reporter_id": "u{i}",'
            f' "target_actor_id": "t1", "reason": "spam"}}'
        )
        return parse_event("report-events", raw.encode())

    # r1 opens window 0; r2 at 01:15 moves the watermark to 01:05, closing window 0; r3, in
    # window 0 after that, is late; r4 is a repeat of r1's id.
    got = ingest.process([report(1, "00:05"), report(2, "01:15"), report(3, "00:30")])
    assert got.outcomes == Counter(counted=2, late=1)
    assert got.first_mark is not None and got.first_mark.closed_until == -60.0
    assert got.mark is not None and got.mark.closed_until == 60.0
    assert {(p.signal, p.window_start, p.count) for p in got.partials} == {
        ("reports", 0.0, 1),
        ("reports.reason:spam", 0.0, 1),
        ("reports.target:t1", 0.0, 1),
        ("reports.reporters:t1", 0.0, 1),  # u1's first report of t1
    }
    assert [(a.actor, a.window_start) for a in got.actors] == [("t1", 0.0), ("u1", 0.0)]
    reports = route(got, 2, lambda key, n: len(key) % n)
    assert set(reports) == {0, 1}  # the watermark goes to every partition
    assert all(r.mark == got.mark and r.first_mark == got.first_mark for r in reports.values())
    again = ingest.process([report(1, "01:20")])
    assert again.outcomes == Counter(duplicate=1)
    assert again.mark is None and again.first_mark is None
