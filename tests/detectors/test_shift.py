"""Sustained moderate shifts of dense series (detectors/shift.py), through the rate signals'
stage 2: a seasonal series of two days, with a shift or an organic ramp on the second."""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Callable
from typing import Any

import msgspec

from detectors import codec
from detectors.alerts import Alert
from detectors.events import parse_rfc3339
from detectors.pipeline import DetectionConfig, SignalProcessor
from detectors.shift import ShiftDetector
from detectors.windows import Partial, Watermark

DAY = 86400.0
SRC = "content-events:0"
SIGNAL = "content.surface:groups"


def organic(minute: int) -> float:
    """A daily rhythm: about 8 a minute at 04:00, 80 at 16:00."""
    hour = (minute % 1440) / 60.0
    return 44.0 - 36.0 * math.cos(2 * math.pi * (hour - 4.0) / 24.0)


def poisson(rng: random.Random, lam: float) -> int:
    # Knuth's for small rates, a rounded normal for large ones: enough for a test's noise.
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    k, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def run(
    extra: Callable[[int], float],
    minutes: range = range(2 * 1440),
    proc: SignalProcessor | None = None,
    seed: int = 5,
) -> tuple[SignalProcessor, list[Alert]]:
    """Step the series minute by minute, organic traffic plus `extra(minute)` times it."""
    rng = random.Random(seed)
    proc = proc or SignalProcessor(DetectionConfig())
    alerts: list[Alert] = []
    if minutes.start == 0:
        proc.add_watermark(Watermark("content", SRC, 1, 0.0))
    for minute in minutes:
        lam = organic(minute) * (1.0 + extra(minute))
        proc.add_partial(Partial(SRC, SIGNAL, minute * 60.0, poisson(rng, lam), ()))
        alerts += proc.add_watermark(Watermark("content", SRC, 1, (minute + 1) * 60.0)).alerts
    return proc, alerts


def step(start: int, length: int, size: float) -> Callable[[int], float]:
    return lambda m: size if start <= m < start + length else 0.0


def shifted(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if a.status == "firing" and "accumulated" in a.evidence]


NIGHT = 1440 + 120  # 02:00 on the second day, when the profile has been in use two hours


def test_a_2x_shift_of_40_minutes_at_night_is_flagged_when_no_minute_is() -> None:
    _, alerts = run(step(NIGHT, 40, 1.0))
    found = shifted(alerts)
    assert found, "the shift was not flagged"
    first = found[0]
    assert first.entity_id == SIGNAL and first.detector == "volume_spike"
    assert NIGHT * 60.0 < first.ts <= (NIGHT + 40) * 60.0  # within the shift
    accumulated = first.evidence["accumulated"]
    assert accumulated["windows"] == 30 and first.evidence["horizon_seconds"] == 1800.0
    assert accumulated["ratio"] >= 1.4
    assert abs(parse_rfc3339(accumulated["began"]) - NIGHT * 60.0) <= 5 * 60.0
    assert "a sustained shift since about 02:0" in first.summary
    # The per-minute detector alone does not find it: no other alert.
    assert [a for a in alerts if a.status == "firing"] == found


def test_an_organic_ramp_and_a_quiet_second_day_are_not_flagged() -> None:
    # A surface growing to 1.8 times its rate over two hours, then back, on the second day.
    def ramp(m: int) -> float:
        start = 1440 + 600
        return 0.8 * (m - start) / 120 if start <= m < start + 120 else 0.0

    _, alerts = run(ramp)
    assert shifted(alerts) == []
    _, alerts = run(lambda m: 0.0, seed=6)
    assert alerts == []


def test_before_the_daily_profile_is_in_use_nothing_is_judged_over_the_horizon() -> None:
    proc, alerts = run(step(600, 40, 1.0), minutes=range(1200))
    assert shifted(alerts) == []
    shift = proc.groups["content"].dense[SIGNAL].shift
    assert shift is not None and shift.level is None and shift.counts == []


def test_the_state_round_trips_and_the_series_of_before_gets_its_detector() -> None:
    proc, _ = run(lambda m: 0.0, minutes=range(1440 + 60))
    resumed = codec.decode(codec.encode(proc))
    series = proc.groups["content"].dense[SIGNAL]
    again = resumed.groups["content"].dense[SIGNAL]
    assert isinstance(again.shift, ShiftDetector)
    assert vars(again.shift) == vars(series.shift)
    later = range(1440 + 60, NIGHT + 40)
    _, expected = run(step(NIGHT, 40, 1.0), later, proc)
    _, got = run(step(NIGHT, 40, 1.0), later, resumed)
    assert shifted(expected) and [a.summary for a in got] == [a.summary for a in expected]

    # A checkpoint of the layout before shifts: its config and series migrate, and the
    # series gets its shift detector when it next steps.
    tree = _v1(series)
    old = codec.decode(zlib.compress(msgspec.msgpack.encode(tree)))
    assert old.shift is None and old.accumulated is False
    config = codec.decode(zlib.compress(msgspec.msgpack.encode(_v1(DetectionConfig()))))
    assert config == DetectionConfig()


def _v1(obj: Any) -> list[Any]:
    spec = codec.BY_CLASS[type(obj)]
    values = {name: getattr(obj, name) for name in spec.fields}
    return [spec.name, 1, *codec.Encoder().items([values[f] for f in spec.layouts[1]])]


def test_a_spike_alerted_already_is_not_counted_again_over_the_horizon() -> None:
    # Ten minutes at six times the rate: the per-minute detector's alone.
    _, alerts = run(step(NIGHT, 10, 5.0))
    firing = [a for a in alerts if a.status == "firing"]
    assert firing and all("accumulated" not in a.evidence for a in alerts)
