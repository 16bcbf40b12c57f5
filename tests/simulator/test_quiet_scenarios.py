"""The sustained-shift scenarios and their decoys: ground truth, and traffic as described."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

import pytest

from simulator import SimConfig, generate, truth
from simulator.scenarios import DECOYS, SHIFT_FACTORS, SHIFT_FAMILY

HOUR = 3600.0
CONFIG = SimConfig(
    duration_s=11 * HOUR,
    rate=2.0,
    actors=3000,
    scenarios=SHIFT_FAMILY,  # each kind once, in turn, every two hours from the first hour
    actor_scenarios=(),
    group_scenarios=(),
)


def seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@cache
def records() -> dict[str, dict[str, Any]]:
    return {r["kind"]: r for r in truth(CONFIG)}


@cache
def content() -> list[dict[str, Any]]:
    return [v for topic, v in generate(CONFIG) if topic == "content-events"]


def count(start: float, end: float, **match: str) -> int:
    return sum(
        1
        for v in content()
        if start <= seconds(v["ts"]) < end and all(v.get(k) == m for k, m in match.items())
    )


def test_each_kind_has_its_ground_truth() -> None:
    assert set(records()) == set(SHIFT_FAMILY)
    for kind, record in records().items():
        assert record.get("decoy", False) == (kind in DECOYS)
        assert record["actors"] and record["signals"]
        if kind in SHIFT_FACTORS:
            assert record["signals"][0].startswith("content.surface:")
            assert seconds(record["end"]) - seconds(record["start"]) == 30 * 60


@pytest.mark.parametrize("kind", sorted(SHIFT_FACTORS))
def test_a_shift_lifts_its_surface_by_its_factor(kind: str) -> None:
    """Against the half hour before it: the surface at about its factor, no minute extreme."""
    record = records()[kind]
    surface = record["signals"][0].split(":", 1)[1]
    start, end = seconds(record["start"]), seconds(record["end"])
    before, during = count(start - 1800, start, surface=surface), count(start, end, surface=surface)
    factor = SHIFT_FACTORS[kind]
    assert 0.75 * factor <= during / before <= 1.3 * factor, (before, during)
    minutes = [count(start + m * 60, start + m * 60 + 60, surface=surface) for m in range(30)]
    assert max(minutes) < 3 * factor * before / 30  # spread over the half hour


def test_organic_growth_ramps_up_and_viral_post_fades() -> None:
    growth = records()["organic_growth"]
    surface = growth["signals"][0].split(":", 1)[1]
    start, end = seconds(growth["start"]), seconds(growth["end"])
    first, last = (
        count(start, start + 1800, surface=surface),
        count(end - 1800, end, surface=surface),
    )
    assert last > 1.2 * first, (first, last)

    viral = records()["viral_post"]
    (target,) = viral["targets"]
    start, end = seconds(viral["start"]), seconds(viral["end"])
    half = (end - start) / 2
    early, late = (
        count(start, start + half, target_id=target),
        count(start + half, end, target_id=target),
    )
    assert early > late > 0, (early, late)
