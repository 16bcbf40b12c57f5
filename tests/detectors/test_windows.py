"""Two-stage windows: per-partition counts combine to the same windows however they interleave."""

from __future__ import annotations

import itertools
import random
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.alerts import alert_id
from detectors.pipeline import DetectionConfig, SignalProcessor
from detectors.windows import GroupClock, Partial, PartitionCounter, Watermark

CONFIG = DetectionConfig(window_s=60, lateness_s=20, warmup_windows=5, spike_min_count=3)


def make_events(
    seed: int, partitions: int, minutes: int
) -> list[list[tuple[str, float, tuple[str, ...]]]]:
    """Per partition, events in arrival order: roughly in time, with some jitter and repeats."""
    rng = random.Random(seed)
    streams: list[list[tuple[str, float, tuple[str, ...]]]] = [[] for _ in range(partitions)]
    n = 0
    for minute in range(minutes):
        burst = minute in (30, 31)
        for _ in range(rng.randint(5, 15) + (40 if burst else 0)):
            n += 1
            ts = minute * 60 + rng.random() * 60
            target = "victim" if burst else f"u{rng.randint(1, 50)}"
            signals = ("reports", f"reports.target:{target}")
            streams[rng.randrange(partitions)].append((f"e{n}", ts, signals))
    for stream in streams:
        stream.sort(key=lambda e: e[1] + rng.random() * 10)  # arrival jitter under the lateness
        for i in rng.sample(range(len(stream)), k=min(3, len(stream))):
            stream.insert(i + 1, stream[i])  # a producer retry: the same event again
    return streams


def stage1(
    streams: list[list[tuple[str, float, tuple[str, ...]]]],
) -> list[list[Partial | Watermark]]:
    out = []
    for p, stream in enumerate(streams):
        counter = PartitionCounter("reports", f"report-events:{p}", len(streams), 60, 20)
        emitted: list[Partial | Watermark] = []
        for event_id, ts, signals in stream:
            emitted.extend(counter.add(event_id, ts, signals)[1])
        out.append(emitted)
    return out


def stage2(
    outputs: list[list[Partial | Watermark]], processors: int, seed: int
) -> dict[str, list[tuple[float, float, bool]]]:
    """Deliver each source's messages in order, sources interleaved at random, signals
    spread over `processors` by hash (watermarks go to all)."""
    rng = random.Random(seed)
    queues = [list(o) for o in outputs]
    procs = [SignalProcessor(CONFIG) for _ in range(processors)]
    results: dict[str, list[tuple[float, float, bool]]] = {}
    alerts = []
    while any(queues):
        queue = rng.choice([q for q in queues if q])
        item = queue.pop(0)
        if isinstance(item, Partial):
            procs[zlib.crc32(item.signal.encode()) % processors].add_partial(item)
            if rng.random() < 0.1:  # redelivery after a rebalance
                procs[zlib.crc32(item.signal.encode()) % processors].add_partial(item)
            continue
        for proc in procs:
            closed = proc.add_watermark(item)
            alerts.extend(a.alert_id + a.status for a in closed.alerts)
            for r in closed.results:
                results.setdefault(r.signal, []).append(
                    (r.window_start, r.verdict.observed, r.verdict.flagged)
                )
    results["__alerts__"] = sorted(alerts)  # type: ignore[assignment]
    return results


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 4), st.integers(1, 3))
def test_same_windows_whatever_the_interleaving(
    seed: int, partitions: int, processors: int
) -> None:
    outputs = stage1(make_events(seed, partitions, 45))
    reference = stage2(outputs, 1, seed=0)
    assert stage2(outputs, processors, seed=seed + 1) == reference


def test_counts_are_exact_and_the_burst_alerts() -> None:
    streams = make_events(5, 3, 45)
    results = stage2(stage1(streams), 2, seed=1)
    truth: dict[tuple[str, float], int] = {}
    for stream in streams:
        seen = set()
        for event_id, ts, signals in stream:
            if event_id in seen:
                continue
            seen.add(event_id)
            for signal in signals:
                key = (signal, (ts // 60) * 60)
                truth[key] = truth.get(key, 0) + 1
    last_closed = max(window for _, window in truth) - 60  # the last window is still open
    assert [window for window, _, _ in results["reports"]] == [
        float(w) for w in range(0, int(last_closed) + 60, 60)
    ]
    for window, observed, _ in results["reports"]:
        assert observed == truth.get(("reports", window), 0)
    burst = [30 * 60.0, 31 * 60.0]  # make_events bursts against "victim" in minutes 30 and 31
    for signal in ("reports", "reports.target:victim"):
        assert [window for window, _, flag in results[signal] if flag] == burst
    ids = [
        alert_id("volume_spike", "signal", s, burst[0])
        for s in ("reports", "reports.target:victim")
    ]
    assert results["__alerts__"] == sorted(i + s for i in ids for s in ("firing", "resolved"))


def test_late_events_are_reported_not_counted() -> None:
    counter = PartitionCounter("content", "content-events:0", 1, 60, 10)
    assert counter.add("a", 100.0, ("content",))[0] == "counted"
    assert counter.add("b", 200.0, ("content",))[0] == "counted"  # closes [60, 120) and [120, 180)
    assert counter.add("c", 130.0, ("content",))[0] == "late"
    assert counter.add("d", 185.0, ("content",))[0] == "counted"  # within the lateness


def test_dedup_memory_is_bounded() -> None:
    counter = PartitionCounter("content", "c:0", 1, 60, 10, dedup_horizon_s=120, dedup_max_ids=50)
    for i in range(1000):
        counter.add(f"e{i}", float(i), ("content",))
    assert len(counter.seen) <= 50


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 60),  # event id: some come again
            st.floats(-80, 10, allow_nan=False),  # ts about the event's place: some late
            st.lists(st.sampled_from(["content", "a", "b", "c"]), min_size=1, max_size=3),
        ),
        max_size=80,
    ),
    st.lists(st.integers(0, 80), max_size=6),
    st.integers(10, 200),
)
def test_a_batch_counts_as_its_events_one_at_a_time(
    events: list[tuple[int, float, list[str]]], cuts: list[int], max_ids: int
) -> None:
    stream = [
        (f"e{i:02d}", 5.0 * at + jitter, tuple(dict.fromkeys(signals)))
        for at, (i, jitter, signals) in enumerate(events)
    ]

    def counter() -> PartitionCounter:
        return PartitionCounter("content", "c:0", 1, 60, 20, 120, dedup_max_ids=max_ids)

    one = counter()
    singly = [one.add(*event) for event in stream]
    batched = counter()
    outcomes: list[str] = []
    partials: list[Partial] = []
    marks: list[Watermark] = []
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    for lo, hi in itertools.pairwise(bounds):
        batch = batched.add_batch(stream[lo:hi])
        outcomes += batch.outcomes
        partials += batch.partials
        marks += batch.marks
    assert outcomes == [status for status, _ in singly]
    emitted = [item for _, out in singly for item in out]
    assert partials == [i for i in emitted if isinstance(i, Partial)]
    assert marks == [i for i in emitted if isinstance(i, Watermark)]
    assert batched.open.keys() == one.open.keys()
    assert batched.seen == one.seen


def test_group_clock_waits_for_every_source_then_takes_the_minimum() -> None:
    clock = GroupClock()
    clock.update(Watermark("content", "a", 2, 600.0))
    assert clock.watermark() == float("-inf")
    clock.update(Watermark("content", "b", 2, 300.0))
    assert clock.watermark() == 300.0


def test_group_clock_stops_waiting_for_an_idle_source() -> None:
    clock = GroupClock(idle_s=30)
    clock.update(Watermark("content", "a", 2, 600.0), now=0.0)
    assert clock.watermark(now=10.0) == float("-inf")  # b never heard from, still waiting
    assert clock.watermark(now=31.0) == 600.0
    clock.update(Watermark("content", "b", 2, 300.0), now=32.0)
    assert clock.watermark(now=33.0) == 300.0
    clock.update(Watermark("content", "a", 2, 600.0), now=50.0)  # the group is not silent
    clock.update(Watermark("content", "a", 2, 900.0), now=70.0)
    assert clock.watermark(now=70.0) == 900.0  # b silent for 38 s


def test_group_clock_gives_every_source_its_time_again_after_the_whole_group_was_silent() -> None:
    """The cluster down for longer than `idle_s`: the first source back does not leave the
    others behind, each has `idle_s` from then to be heard from."""
    clock = GroupClock(idle_s=120)
    clock.update(Watermark("content", "a", 2, 60.0), now=0.0)
    clock.update(Watermark("content", "b", 2, 60.0), now=1.0)
    clock.update(Watermark("content", "a", 2, 600.0), now=300.0)  # back after 299 s of silence
    assert clock.watermark(now=300.0) == 60.0  # b holds it back still
    clock.update(Watermark("content", "a", 2, 600.0), now=400.0)
    assert clock.watermark(now=419.0) == 60.0
    assert clock.watermark(now=420.0) == 600.0  # b silent for 120 s since the group resumed
    clock.update(Watermark("content", "b", 2, 540.0), now=421.0)
    assert clock.watermark(now=421.0) == 540.0
    # A silence of the group shorter than `idle_s` restarts nothing: b, silent since 421 s
    # while a was heard at 500 s, is idle at 541 s.
    clock.update(Watermark("content", "a", 2, 900.0), now=500.0)
    assert clock.watermark(now=540.0) == 540.0
    assert clock.watermark(now=541.0) == 900.0
