"""The NAB scorer on hand-built files with known answers."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bench.nab_score import Profile, scaled_sigmoid, score_corpus, sweep

STANDARD = Profile("standard", tp_weight=1.0, fp_weight=0.11, fn_weight=1.0)
LOW_FN = Profile("reward_low_FN_rate", tp_weight=1.0, fp_weight=0.11, fn_weight=2.0)
T0 = datetime(2020, 1, 1)
ROWS = 1000  # probation: the first 150 rows
WINDOW = (600, 699)  # row indices, 100 rows wide


def stamps(n: int = ROWS) -> list[datetime]:
    return [T0 + timedelta(minutes=5 * i) for i in range(n)]


def windows() -> list[tuple[datetime, datetime]]:
    ts = stamps()
    return [(ts[WINDOW[0]], ts[WINDOW[1]])]


def scores_with(*rows: int) -> list[float]:
    out = [0.0] * ROWS
    for i in rows:
        out[i] = 1.0
    return out


def total(scores: list[float], profile: Profile = STANDARD) -> float:
    """The file's total at the threshold that detects exactly the rows scored 1.0."""
    rows = sweep("f.csv", stamps(), scores, windows(), profile)
    result = 0.0
    window_best: float | None = None
    for r in rows:
        if r.score >= 1.0:
            if r.window is None:
                result += r.weight
            else:
                window_best = r.weight if window_best is None else max(window_best, r.weight)
    return result + (window_best if window_best is not None else -profile.fn_weight)


def test_the_scaled_sigmoid_matches_nab() -> None:
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(3.0) == -1.0


def test_a_detection_at_the_start_of_a_window_earns_one() -> None:
    assert total(scores_with(WINDOW[0])) == pytest.approx(1.0)


def test_only_the_first_detection_in_a_window_counts() -> None:
    late = total(scores_with(650))
    assert 0 < late < total(scores_with(WINDOW[0]))
    assert total(scores_with(WINDOW[0], 650, 690)) == pytest.approx(1.0)


def test_a_missed_window_costs_the_fn_weight() -> None:
    assert total(scores_with()) == -1.0
    assert total(scores_with(), LOW_FN) == -2.0


def test_false_positives_are_penalised_by_distance_from_the_window() -> None:
    before_any_window = total(scores_with(300, WINDOW[0])) - 1.0
    assert before_any_window == pytest.approx(-0.11)
    just_after = total(scores_with(WINDOW[0], 702)) - 1.0
    far_after = total(scores_with(WINDOW[0], 990)) - 1.0
    assert -0.11 < just_after < 0
    assert far_after == pytest.approx(-0.11)


def test_the_probation_period_is_not_scored() -> None:
    assert total(scores_with(10, WINDOW[0])) == pytest.approx(1.0)
    rows = sweep("f.csv", stamps(), [0.0] * ROWS, windows(), STANDARD)
    assert len(rows) == ROWS - 150
    long = sweep("g.csv", stamps(10_000), [0.0] * 10_000, [], STANDARD)
    assert len(long) == 10_000 - 750


def corpus(scores: list[float]) -> dict[str, tuple[list[datetime], list[float]]]:
    return {"a.csv": (stamps(), scores), "b.csv": (stamps(), [0.0] * ROWS)}


def test_null_normalises_to_zero_and_perfect_to_one_hundred() -> None:
    wins = {"a.csv": windows(), "b.csv": []}
    perfect = scores_with(WINDOW[0])
    for profile in (STANDARD, LOW_FN):
        (null,) = score_corpus(corpus([0.5] * ROWS), wins, [profile])
        (best,) = score_corpus(corpus(perfect), wins, [profile])
        assert null.score == pytest.approx(0.0)
        assert best.score == pytest.approx(100.0)
        assert best.threshold == 1.0


def test_the_threshold_is_chosen_for_the_corpus() -> None:
    # A spike early in the window (0.9) and a larger false alarm before it (0.95): detecting
    # at 0.9 earns 1 - 0.11, better than detecting nothing (-1).
    scores = [0.0] * ROWS
    scores[WINDOW[0]] = 0.9
    scores[400] = 0.95
    (result,) = score_corpus(corpus(scores), {"a.csv": windows(), "b.csv": []}, [STANDARD])
    assert result.threshold == 0.9
    assert result.raw == pytest.approx(1.0 - 0.11)
