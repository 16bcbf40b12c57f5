"""The explicit list of detectors. Adding one: a module, an entry here, and the shared contract
tests in tests/detectors/test_contract.py pick it up.

Each entry gives the detector's class (a River `AnomalyDetector` with `learn_one`,
`score_one` and a `step` that scores, decides and learns) and a function that makes a typical
input stream for it from a seeded random generator, for the contract tests.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from detectors.spike import SpikeDetector


@dataclass(frozen=True)
class Registration:
    cls: type[Any]
    sample: Callable[[random.Random], Iterator[dict[str, float]]]


def _rate_series(rng: random.Random) -> Iterator[dict[str, float]]:
    for minute in range(600):
        level = 100 + 50 * math.sin(minute / 90)
        count = max(0, round(rng.gauss(level, math.sqrt(level))))
        if 400 <= minute < 410:
            count *= 4
        yield {"t": minute * 60.0, "count": float(count)}


DETECTORS: dict[str, Registration] = {
    "volume_spike": Registration(SpikeDetector, _rate_series),
}
