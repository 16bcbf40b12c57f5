"""Contract tests every registered detector passes."""

from __future__ import annotations

import copy
import random

import pytest

from detectors import codec
from detectors.registry import DETECTORS, Registration


def run(
    registration: Registration, detector: object, stream: list[dict[str, float]]
) -> list[tuple[float | None, bool]]:
    return [registration.step(detector, x) for x in stream]


@pytest.fixture(params=sorted(DETECTORS))
def registration(request: pytest.FixtureRequest) -> Registration:
    return DETECTORS[request.param]


def stream_of(registration: Registration, seed: int = 3) -> list[dict[str, float]]:
    return list(registration.sample(random.Random(seed)))


def test_input_is_not_mutated(registration: Registration) -> None:
    stream = stream_of(registration)
    before = copy.deepcopy(stream)
    detector = registration.make()
    run(registration, detector, stream)
    for x in stream:
        detector.learn_one(x)
        detector.score_one(x)
    assert stream == before


def test_twins_agree(registration: Registration) -> None:
    stream = stream_of(registration)
    assert run(registration, registration.make(), stream) == run(
        registration, registration.make(), stream
    )


def test_state_survives_a_checkpoint(registration: Registration) -> None:
    stream = stream_of(registration)
    half = len(stream) // 2
    straight = registration.make()
    first = run(registration, straight, stream[:half])
    restored = codec.decode(codec.encode(straight))
    rest = run(registration, restored, stream[half:])
    assert rest == run(registration, straight, stream[half:])
    assert first


def test_flags_the_sample_attack_and_not_the_rest(registration: Registration) -> None:
    results = run(registration, registration.make(), stream_of(registration))
    flagged = [i for i, (_, f) in enumerate(results) if f]
    assert flagged, "the sample stream has an attack in it"
    assert all(400 <= i < 410 + registration.after for i in flagged), flagged


def test_score_before_learning(registration: Registration) -> None:
    detector = registration.make()
    stream = stream_of(registration)
    for x in stream[:400]:
        registration.step(detector, x)
    x = stream[400]  # the attack: always scored
    before = detector.score_one(x)
    score, _ = registration.step(detector, x)
    assert score == pytest.approx(before)


def test_a_clone_is_untrained_and_behaves_like_a_fresh_instance(
    registration: Registration,
) -> None:
    stream = stream_of(registration)
    trained = registration.make()
    run(registration, trained, stream[:400])
    clone = trained.clone()
    assert clone._get_params() == trained._get_params()
    fresh = run(registration, registration.make(), stream)
    assert run(registration, clone, stream) == fresh
    assert run(registration, trained, stream) != fresh, "training changed the original"
