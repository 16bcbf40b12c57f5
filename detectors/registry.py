"""The explicit list of detectors. Adding one: a module, an entry here, and the shared contract
tests in tests/detectors/test_contract.py pick it up.

Each entry gives a factory for the detector (a River `AnomalyDetector` with `learn_one`,
`score_one` and a `step` that scores, decides and learns), a function that makes a typical
input stream for it from a seeded random generator, with an attack at items 400 to 409, and
how to call its `step` on one item, for the contract tests.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from detectors.actor_model import ActorModel, ordinary
from detectors.spike import SpikeDetector


@dataclass(frozen=True)
class Registration:
    make: Callable[[], Any]
    sample: Callable[[random.Random], Iterator[dict[str, float]]]
    step: Callable[[Any, dict[str, float]], tuple[float | None, bool]]


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


DETECTORS: dict[str, Registration] = {
    "volume_spike": Registration(SpikeDetector, _rate_series, _spike_step),
    "actor_anomaly": Registration(lambda: ActorModel(warmup=50), _actors, _actor_step),
}
