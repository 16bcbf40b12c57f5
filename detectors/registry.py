"""The explicit list of detectors. Adding one: a module, an entry here, and the shared contract
tests in tests/detectors/test_contract.py pick it up.

Each entry gives a factory for the detector (a River `AnomalyDetector` with `learn_one`,
`score_one` and a `step` that scores, decides and learns), a function that makes a typical
input stream for it from a seeded random generator, with an attack at items 400 to 409, and
how to call its `step` on one item, for the contract tests (and, for a detector of
accumulated evidence, how long after the attack it may still flag).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from detectors.accumulate import Accumulator
from detectors.actor_model import ActorModel, ordinary
from detectors.spike import SpikeDetector


@dataclass(frozen=True)
class Registration:
    make: Callable[[], Any]
    sample: Callable[[random.Random], Iterator[dict[str, float]]]
    step: Callable[[Any, dict[str, float]], tuple[float | None, bool]]
    # Items after the attack's end that may still be flagged: a detector of accumulated
    # evidence holds an attack for its horizon.
    after: int = 0


def _rate_series(rng: random.Random) -> Iterator[dict[str, float]]:
    for minute in range(600):
        level = 100 + 50 * math.sin(minute / 90)
        count = max(0, round(rng.gauss(level, math.sqrt(level))))
        if 400 <= minute < 410:
            count *= 4
        yield {"t": minute * 60.0, "count": float(count)}


def _spike_step(detector: SpikeDetector, x: dict[str, float]) -> tuple[float | None, bool]:
    verdict = detector.step(x["t"], x["count"])
    return verdict.score, verdict.flagged


def _actors(rng: random.Random) -> Iterator[dict[str, float]]:
    for i in range(600):
        x = ordinary(rng)
        if 400 <= i < 410:  # a mass-messaging spammer's windows
            x.update(events_10m=40.0 + i % 7, new_targets_10m=38.0, new_target_share=0.95)
            x.update(dup_share=0.9, link_share=0.8, age_days=2.0)
        yield x


def _actor_step(detector: ActorModel, x: dict[str, float]) -> tuple[float | None, bool]:
    verdict = detector.step(x)
    return (verdict.score, verdict.flagged) if verdict else (None, False)


def _first_contacts(rng: random.Random) -> Iterator[dict[str, float]]:
    """Accounts addressing one busy account for the first time, a minute at a time: about
    one a minute, and a pile-on of four more a minute."""
    for minute in range(600):
        count = sum(rng.random() < 0.25 for _ in range(4))  # binomial, mean 1
        yield {"t": minute * 60.0, "count": float(count + (4 if 400 <= minute < 410 else 0))}


def _accumulate_step(detector: Accumulator, x: dict[str, float]) -> tuple[float | None, bool]:
    verdict = detector.step(x["t"], x["count"])
    return verdict.score, verdict.flagged


def _accumulator() -> Accumulator:
    # A short horizon, for a sample stream whose attack must be flagged only while it lasts.
    return Accumulator(horizon_s=180.0, min_total=10, prior_windows=3)


DETECTORS: dict[str, Registration] = {
    "volume_spike": Registration(SpikeDetector, _rate_series, _spike_step),
    "actor_anomaly": Registration(lambda: ActorModel(warmup=50), _actors, _actor_step),
    "accumulated_contacts": Registration(_accumulator, _first_contacts, _accumulate_step, after=2),
}
