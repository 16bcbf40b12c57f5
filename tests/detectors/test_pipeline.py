"""Stage 2: series on demand, expiry, the series cap, warm-up, and the offline pipeline."""

from __future__ import annotations

import orjson
import pytest

from detectors.events import parse_event, parse_rfc3339
from detectors.pipeline import DetectionConfig, SignalProcessor, describe, new_counter, signals_of
from detectors.windows import Partial, Watermark

SRC = "report-events:0"


def feed(proc: SignalProcessor, minute: int, counts: dict[str, int]) -> list[str]:
    for signal, count in counts.items():
        proc.add_partial(Partial(SRC, signal, minute * 60.0, count, ("r1",)))
    closed = proc.add_watermark(Watermark("reports", SRC, 1, (minute + 1) * 60.0))
    return [f"{a.status}:{a.entity_id}" for a in closed.alerts]


def start(proc: SignalProcessor) -> None:
    proc.add_watermark(Watermark("reports", SRC, 1, 0.0))


def test_idle_per_account_series_expire() -> None:
    proc = SignalProcessor(DetectionConfig(account_series_ttl_s=300))
    start(proc)
    feed(proc, 0, {"reports": 3, "reports.target:u1": 1})
    assert "reports.target:u1" in proc.series_ids("reports")
    for minute in range(1, 7):
        feed(proc, minute, {"reports": 3})
    assert "reports.target:u1" not in proc.series_ids("reports")
    assert "reports" in proc.series_ids("reports")  # core series never expire


def test_the_series_cap_evicts_the_least_recently_active() -> None:
    proc = SignalProcessor(DetectionConfig(max_series=10))
    start(proc)
    evicted = 0
    for minute in range(20):
        for signal, count in {"reports": 3, f"reports.target:u{minute}": 1}.items():
            proc.add_partial(Partial(SRC, signal, minute * 60.0, count, ()))
        evicted += proc.add_watermark(Watermark("reports", SRC, 1, (minute + 1) * 60.0)).evicted
    series = proc.series_ids("reports")
    assert len(series) == 10 and evicted == 11
    assert (
        "reports" in series and "reports.target:u19" in series and "reports.target:u0" not in series
    )


def test_nothing_alerts_during_warmup_then_a_new_target_can() -> None:
    proc = SignalProcessor(DetectionConfig(warmup_windows=10))
    start(proc)
    fired = []
    for minute in range(30):
        counts = {"reports": 5}
        if minute == 3:
            counts["reports.target:early"] = 40
        if minute == 20:
            counts["reports.target:victim"] = 40
        fired += feed(proc, minute, counts)
    assert [f for f in fired if f.startswith("firing")] == [
        "firing:reports.target:victim",
    ]


@pytest.mark.parametrize(
    ("signal", "words"),
    [
        ("content", "All content"),
        ("content.new_actors", "Content from accounts younger than 7 days"),
        ("content.surface:feed", "Content on surface feed"),
        ("content.kind:post", "Content of kind post"),
        ("content.target:u1", "Content addressed to account u1"),
        ("reports", "All reports"),
        ("reports.reason:spam", "Reports for reason spam"),
        ("reports.target:u1:x", "Reports against account u1:x"),
        ("reports.unknown:u1", "reports.unknown:u1"),
    ],
)
def test_describe_names_every_family(signal: str, words: str) -> None:
    assert describe(signal) == words


def test_an_event_stamped_centuries_ago_does_not_step_through_the_centuries() -> None:
    """The first event of a partition may be stamped in the year 1000: the windows up to the
    next real event are not closed one by one (hundreds of millions of them) once every
    series has expired; the core series expire after a week without events."""
    config = DetectionConfig()
    counter = new_counter(config, "content-events", 0, 1)
    processor = SignalProcessor(config, groups={"content"})
    windows = 0
    stamps = ["1000-01-01T00:00:00Z", "1000-01-01T00:03:30Z", "2026-11-24T00:00:00Z"]
    stamps.append("2026-11-24T00:05:00Z")
    for number, ts in enumerate(stamps):
        raw = orjson.dumps({"event_id": f"e{number}", "ts": ts, "actor_id": "a", "kind": "post"})
        event = parse_event("content-events", raw)
        for item in counter.add(event.event_id, event.ts, signals_of(event))[1]:
            if isinstance(item, Partial):
                processor.add_partial(item)
            else:
                windows += processor.add_watermark(item).windows
    assert 7 * 1440 < windows < 7 * 1440 + 20  # a week of empty windows, then a jump
    assert processor.groups["content"].closed_until == parse_rfc3339("2026-11-24T00:04:00Z")
