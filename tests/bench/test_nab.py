"""The rate-series spike detector on a few NAB files, scored by NAB's rules.

A regression floor, measured: the full corpus is `python bench/nab.py` (see README). NAB's
data is not in the repository: these tests read it from ABUSEMON_NAB_DATA, else from
../shared/data/nab beside the checkout, and skip without it (fail if the variable names a
folder without it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.nab import detect, read_series
from bench.nab_score import (
    NAB_DATA_ENV,
    NabDataMissing,
    load_profiles,
    load_windows,
    nab_data,
    parse_time,
    score_corpus,
)

FILES = [
    "artificialWithAnomaly/art_load_balancer_spikes.csv",
    "realAdExchange/exchange-4_cpm_results.csv",
    "realKnownCause/rogue_agent_key_hold.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_ac20cd.csv",
    "realTweets/Twitter_volume_FB.csv",
    "realTraffic/occupancy_t4013.csv",
]
# Measured on these six files: 81.8, 73.9 and 87.9 (the whole corpus scores lower); the
# detector before rarity-judged evidence scored 66.5, 50.8 and 74.9 here.
FLOORS = {"standard": 78.0, "reward_low_FP_rate": 70.0, "reward_low_FN_rate": 84.0}


@pytest.fixture(scope="module")
def nab() -> Path:
    try:
        return nab_data()
    except NabDataMissing as e:
        if os.environ.get(NAB_DATA_ENV):
            pytest.fail(str(e))
        pytest.skip(str(e))


def test_the_detector_scores_above_its_floor_on_a_few_nab_files(nab: Path) -> None:
    windows = load_windows(nab / "labels" / "combined_windows.json")
    profiles = load_profiles(nab / "config" / "profiles.json")
    results = {}
    for name in FILES:
        rows = read_series(nab / "data" / name)
        scores = list(detect(rows))
        assert all(0.0 <= s < 1.0 for s in scores)
        results[name] = ([parse_time(t) for t, _ in rows], scores)
    scored = {r.profile: r for r in score_corpus(results, windows, profiles)}
    print({name: round(r.score, 1) for name, r in scored.items()})
    for name, floor in FLOORS.items():
        assert scored[name].score >= floor, (name, scored[name])


def test_a_row_is_scored_before_it_is_learned(nab: Path) -> None:
    # The same scores whether or not rows after it exist: nothing looks ahead.
    rows = read_series(nab / "data" / FILES[2])
    full = list(detect(rows))
    assert list(detect(rows[:1000])) == pytest.approx(full[:1000])
