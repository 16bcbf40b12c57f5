"""Contract tests every registered detector passes."""

from __future__ import annotations

import copy
import pickle
import random

import pytest

from detectors.registry import DETECTORS, Registration


def run(detector: object, stream: list[dict[str, float]]) -> list[tuple[float, bool]]:
    out = []
    for x in stream:
        verdict = detector.step(x["t"], x["count"])  # type: ignore[attr-defined]
        out.append((verdict.score, verdict.flagged))
    return out


@pytest.fixture(params=sorted(DETECTORS))
def registration(request: pytest.FixtureRequest) -> Registration:
    return DETECTORS[request.param]


def stream_of(registration: Registration, seed: int = 3) -> list[dict[str, float]]:
    return list(registration.sample(random.Random(seed)))


def test_input_is_not_mutated(registration: Registration) -> None:
    stream = stream_of(registration)
    before = copy.deepcopy(stream)
    detector = registration.cls()
    run(detector, stream)
    for x in stream:
        detector.learn_one(x)
        detector.score_one(x)
    assert stream == before


def test_twins_agree(registration: Registration) -> None:
    stream = stream_of(registration)
    assert run(registration.cls(), stream) == run(registration.cls(), stream)


def test_state_survives_a_pickle_round_trip(registration: Registration) -> None:
    stream = stream_of(registration)
    half = len(stream) // 2
    straight = registration.cls()
    first = run(straight, stream[:half])
    restored = pickle.loads(pickle.dumps(straight))
    assert run(restored, stream[half:]) == run(straight, stream[half:])
    assert first


def test_flags_the_sample_attack_and_not_the_rest(registration: Registration) -> None:
    results = run(registration.cls(), stream_of(registration))
    flagged = [i for i, (_, f) in enumerate(results) if f]
    assert flagged, "the sample stream has an attack in it"
    assert all(400 <= i < 410 for i in flagged), flagged


def test_score_before_learning(registration: Registration) -> None:
    detector = registration.cls()
    stream = stream_of(registration)
    for x in stream[:100]:
        detector.step(x["t"], x["count"])
    x = stream[100]
    before = detector.score_one(x)
    assert detector.step(x["t"], x["count"]).score == pytest.approx(before)


def test_clone_has_the_same_parameters(registration: Registration) -> None:
    detector = registration.cls()
    clone = detector.clone()
    assert clone._get_params() == detector._get_params()
