"""Stage 2: series on demand, expiry, the series cap, warm-up, and the offline pipeline."""

from __future__ import annotations

from detectors.pipeline import DetectionConfig, SignalProcessor, describe
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


def test_describe_names_every_family() -> None:
    for signal in (
        "content",
        "content.new_actors",
        "content.surface:feed",
        "content.kind:post",
        "content.target:u1",
        "reports",
        "reports.reason:spam",
        "reports.target:u1",
    ):
        assert describe(signal) != signal
