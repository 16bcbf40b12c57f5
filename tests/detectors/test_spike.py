"""The spike detector on synthetic count series with known answers."""

from __future__ import annotations

import math
import random
import zlib

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from detectors import codec
from detectors.spike import HORIZON, SpikeDetector


def diurnal(minute: int) -> float:
    """Expected events per minute: trough at 04:00, peak at 16:00, 60 to 540."""
    hour = (minute % 1440) / 60
    return 300 - 240 * math.cos((hour - 4) / 24 * 2 * math.pi)


def organic(rng: random.Random, minute: int) -> float:
    mean = diurnal(minute)
    return float(max(0, round(rng.gauss(mean, math.sqrt(mean) * 1.3))))


def test_two_organic_days_raise_nothing() -> None:
    rng = random.Random(1)
    detector = SpikeDetector()
    flagged = [m for m in range(2 * 1440) if detector.step(m * 60.0, organic(rng, m)).flagged]
    assert flagged == []


def test_a_surge_is_flagged_and_not_learned_as_normal() -> None:
    rng = random.Random(2)
    detector = SpikeDetector()
    for m in range(600):
        detector.step(m * 60.0, organic(rng, m))
    level_before = detector.forecast(600 * 60.0)
    verdicts = [detector.step(m * 60.0, organic(rng, m) + 400) for m in range(600, 630)]
    assert all(v.flagged for v in verdicts)
    assert verdicts[0].observed > verdicts[0].upper
    # Shielded: the forecast still follows the organic curve, not the attack.
    assert abs(detector.forecast(630 * 60.0) - diurnal(630)) < 0.2 * diurnal(630)
    assert detector.forecast(630 * 60.0) < level_before + 200
    after = [detector.step(m * 60.0, organic(rng, m)).flagged for m in range(630, 700)]
    assert not any(after)


def test_a_lasting_new_level_is_learned_after_max_shielded() -> None:
    detector = SpikeDetector(max_shielded=20, warmup=5)
    for m in range(60):
        detector.step(m * 60.0, 100.0)
    flags = [detector.step(m * 60.0, 400.0).flagged for m in range(60, 160)]
    assert all(flags[:20])
    assert not any(flags[-30:])


def test_warmup_flags_nothing() -> None:
    detector = SpikeDetector(warmup=30)
    flags = [detector.step(m * 60.0, 1000.0 if m == 10 else 50.0).flagged for m in range(30)]
    assert not any(flags)


def test_sparse_series_alert_on_a_burst_not_on_singles() -> None:
    rng = random.Random(4)
    detector = SpikeDetector(warmup=0, season_slots=0)
    flags = []
    for m in range(1440):
        count = float(rng.random() < 0.05) + float(rng.random() < 0.01)
        flags.append(detector.step(m * 60.0, count).flagged)
    assert not any(flags)
    assert detector.step(1440 * 60.0, 25.0).flagged


def _state(detector: SpikeDetector) -> tuple[object, ...]:
    return (
        detector.n,
        detector.level,
        detector.trend,
        detector.first_t,
        detector.shielded,
        detector.residuals.get(),
        detector.magnitude.get(),
        detector.season,
        detector.recent,
    )


@settings(max_examples=60, deadline=None)
@given(
    bursts=st.lists(st.tuples(st.integers(0, 40), st.integers(1, 2000)), min_size=1, max_size=30),
    sparse=st.booleans(),
    warmup=st.integers(0, 20),
    threshold=st.sampled_from([6.0, 1e9]),  # 1e9: busy windows are learned too
)
@example(bursts=[(0, 100)] * 200 + [(5, 1)], sparse=True, warmup=20, threshold=6.0)
def test_idle_windows_learn_as_steps_of_zero_do(
    bursts: list[tuple[int, int]], sparse: bool, warmup: int, threshold: float
) -> None:
    """A per-account series steps the windows it was not due at once: bit for bit what a
    step of 0 each would have done, then the same verdicts."""
    options = {"season_slots": 0, "prior_level": 0.0, "horizon": 0} if sparse else {}
    stepped = SpikeDetector(warmup=warmup, threshold=threshold, **options)  # type: ignore[arg-type]
    idled = SpikeDetector(warmup=warmup, threshold=threshold, **options)  # type: ignore[arg-type]
    t = 0.0
    for gap, count in bursts:
        idled.idle(t, gap)
        for _ in range(gap):
            stepped.step(t, 0)
            t += 60.0
        assert _state(idled) == _state(stepped)
        assert idled.step(t, count) == stepped.step(t, count)
        t += 60.0


def test_below_min_count_is_never_flagged() -> None:
    detector = SpikeDetector(warmup=0, season_slots=0, min_count=10)
    assert not detector.step(0.0, 9.0).flagged
    assert detector.step(60.0, 30.0).flagged


def stepped(rng: random.Random, minute: int) -> float:
    """A sharp daily pattern: 100 a minute at night, 400 from 08:00 to 22:00."""
    hour = (minute % 1440) / 60
    mean = 400.0 if 8 <= hour < 22 else 100.0
    return float(max(0, round(rng.gauss(mean, math.sqrt(mean)))))


def test_the_daily_profile_anticipates_a_daily_step() -> None:
    rng = random.Random(5)
    days = [stepped(rng, m) for m in range(3 * 1440)]
    with_profile, without = SpikeDetector(), SpikeDetector(season_slots=0)
    errors: dict[str, list[float]] = {"with": [], "without": []}
    flags: dict[str, list[int]] = {"with": [], "without": []}
    for m, count in enumerate(days):
        for name, detector in (("with", with_profile), ("without", without)):
            if m >= 2 * 1440:
                errors[name].append(abs(detector.forecast(m * 60.0) - count))
            if detector.step(m * 60.0, count).flagged and m >= 2 * 1440:
                flags[name].append(m)
    assert with_profile.seasonal
    assert flags["without"], "a level-only baseline is surprised by the daily step"
    assert flags["with"] == []
    assert sum(errors["with"]) < 0.7 * sum(errors["without"])


def test_real_valued_series_are_scored_the_same_at_any_scale() -> None:
    rng = random.Random(6)
    values = [50 + 10 * math.sin(m / 40) + rng.gauss(0, 1) + 0.5 for m in range(600)]
    values[500] += 30
    scores = {}
    for scale in (1e-3, 1.0, 1e6):
        detector = SpikeDetector(season_slots=0, min_count=0)
        scores[scale] = [detector.step(m * 60.0, v * scale).score for m, v in enumerate(values)]
    for m in range(100, 600):
        assert abs(scores[1e-3][m] - scores[1.0][m]) < 1e-6 * max(1.0, abs(scores[1.0][m]))
        assert abs(scores[1e6][m] - scores[1.0][m]) < 1e-6 * max(1.0, abs(scores[1.0][m]))
    assert scores[1.0][500] > 6


@pytest.mark.parametrize("real", [False, True])
def test_step_scores_and_learns_as_the_river_interface_does(real: bool) -> None:
    rng = random.Random(9)
    stepped = SpikeDetector(warmup=5, threshold=1e9)  # nothing flagged: every window learned
    river = SpikeDetector(warmup=5, threshold=1e9)
    for m in range(2 * 1440):
        count = organic(rng, m) + (rng.random() if real else 0.0)  # real: no longer counts
        if m % 97 == 0:
            count *= 8  # beyond the clip: the noise sets the winsorised residual
        x = {"t": m * 60.0, "count": count}
        score = river.score_one(x)
        river.learn_one(x)
        assert stepped.step(m * 60.0, count).score == score, m
    assert stepped.counts is river.counts is not real


def test_the_anomaly_reports_an_episode_at_its_onset() -> None:
    rng = random.Random(7)
    detector = SpikeDetector(season_slots=0)
    verdicts = [
        detector.step(m * 60.0, organic(rng, 600) + (400 if m >= 400 else 0)) for m in range(420)
    ]
    assert all(0.0 <= v.anomaly < 1.0 for v in verdicts)
    onset = verdicts[400].anomaly
    assert onset > max(v.anomaly for v in verdicts[100:400])
    # The episode is reported at its onset; after it, at most a new high of the noise at the
    # new level is news, and never as much as the onset.
    after = [v.anomaly for v in verdicts[401:]]
    assert max(after) < onset
    assert sum(a > 0 for a in after) <= 3
    assert all(v.flagged for v in verdicts[400:])  # paging still follows the score


@pytest.mark.parametrize("season_slots", [96, 0])
def test_a_detector_checkpointed_before_rarity_resumes(season_slots: int) -> None:
    rng = random.Random(8)
    counts = [organic(rng, 600) + (900 if m == 260 else 0) for m in range(300)]
    current = SpikeDetector(season_slots=season_slots)
    for m, n in enumerate(counts[:200]):
        current.step(m * 60.0, n)
    # The same state in version 1 of its layout, as a checkpoint holds it.
    state = dict(vars(current))
    for new in ("horizon", "lately", "tails"):
        del state[new]
    state.update(two_sided=True, calibrate=0.01, evidence=None, evidence_sq=None)
    layout = codec.TYPES["SpikeDetector"].layouts[1]
    tree = ["SpikeDetector", 1, *codec.Encoder().items([state[f] for f in layout])]
    resumed = codec.decode(zlib.compress(msgspec.msgpack.encode(tree)))
    assert resumed.horizon == (HORIZON if season_slots else 0)
    assert not hasattr(resumed, "calibrate")
    for m, n in enumerate(counts[200:], 200):
        a, b = current.step(m * 60.0, n), resumed.step(m * 60.0, n)
        assert (b.score, b.flagged, b.expected) == (a.score, a.flagged, a.expected)
        assert 0.0 <= b.anomaly < 1.0
    assert resumed.step(300 * 60.0, 2000).flagged
