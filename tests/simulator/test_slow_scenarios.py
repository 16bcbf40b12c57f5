"""The slow brigades, slow pile-ons and low-rate automation, and their decoys: ground truth,
and traffic as described (many accounts, each acting rarely, spread over the stated time)."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import datetime
from functools import cache
from itertools import pairwise
from typing import Any

import pytest

from detectors.actor_features import NEAR_DUPLICATE
from detectors.text import signature, similarity
from simulator import SimConfig, generate, truth
from simulator.scenarios import (
    AUTOMATION_FAMILY,
    BRIGADE_FAMILY,
    DECOYS,
    LOW_RATE_AUTOMATION,
    PILE_ON_FAMILY,
    PILE_ON_LINES,
    QUIET_FAMILIES,
    SLOW_BRIGADES,
    SLOW_PILE_ONS,
)

HOUR = 3600.0
KINDS = (*AUTOMATION_FAMILY, *BRIGADE_FAMILY, *PILE_ON_FAMILY)  # the night shift first
CONFIG = SimConfig(
    duration_s=22 * HOUR,
    rate=1.0,
    actors=3000,
    scenarios=KINDS,  # each kind once, in turn, every 100 minutes from midnight
    actor_scenarios=(),
    group_scenarios=(),
    first_attack_s=0.0,
    attack_every_s=100 * 60.0,
)


def seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@cache
def records() -> dict[str, dict[str, Any]]:
    return {r["kind"]: r for r in truth(CONFIG)}


@cache
def events() -> list[dict[str, Any]]:
    return [v for _, v in generate(CONFIG)]


def span(record: dict[str, Any]) -> tuple[float, float]:
    return seconds(record["start"]), seconds(record["end"])


def by(value: dict[str, Any]) -> str:
    return str(value.get("actor_id") or value.get("reporter_id"))


def against(value: dict[str, Any]) -> str | None:
    return value.get("target_id") or value.get("target_actor_id")


def of(kind: str) -> list[dict[str, Any]]:
    """The scenario's own events: by its accounts, in its time, at its target if it has one.
    (Established accounts also go on with their organic traffic meanwhile.)"""
    record = records()[kind]
    actors, targets = set(record["actors"]), set(record["targets"])
    start, end = span(record)
    found = {
        v["event_id"]: v  # once each: the simulator re-sends a few events, as producers do
        for v in events()
        if by(v) in actors
        and start <= seconds(v["ts"]) < end
        and (not targets or against(v) in targets)
    }
    return list(found.values())


def busiest_ten_minutes(values: list[dict[str, Any]]) -> int:
    """The most events in any ten minutes starting at one of them."""
    times = sorted(seconds(v["ts"]) for v in values)
    return max(sum(1 for u in times[i:] if u < t + 600) for i, t in enumerate(times))


def near_duplicate_share(values: list[dict[str, Any]]) -> float:
    sigs = [s for s in (signature(v["text"]) for v in values) if s is not None]
    pairs = [(a, b) for i, a in enumerate(sigs) for b in sigs[i + 1 :]]
    return sum(similarity(a, b) >= NEAR_DUPLICATE for a, b in pairs) / len(pairs)


def most_near_duplicates(values: list[dict[str, Any]]) -> int:
    """The most other texts near-identical to one text within half an hour of it."""
    texts = [(seconds(v["ts"]), signature(v["text"])) for v in values]
    signed = [(t, s) for t, s in texts if s is not None]
    return max(
        sum(abs(t - u) < 1800 and similarity(s, r) >= NEAR_DUPLICATE for u, r in signed) - 1
        for t, s in signed
    )


def assert_words_of_their_own(values: list[dict[str, Any]]) -> None:
    """Texts of their own: hardly any pair near-identical, no text with many near-copies."""
    assert near_duplicate_share(values) < 0.02
    assert most_near_duplicates(values) <= 6


def test_each_kind_has_its_ground_truth() -> None:
    assert set(records()) == set(KINDS)
    assert {"slow_brigade", "slow_pile_on", "low_rate_automation"} <= set(QUIET_FAMILIES)
    for kind, record in records().items():
        assert record.get("decoy", False) == (kind in DECOYS)
        assert record["actors"] and record["start"] < record["end"]
        if kind in SLOW_BRIGADES or kind in SLOW_PILE_ONS:
            (target,) = record["targets"]
            assert target not in record["actors"]
            family = "reports" if kind in SLOW_BRIGADES else "content"
            assert record["signals"] == [f"{family}.target:{target}"]
    for kind, low, high in (
        *((k, 60, 120) for k in SLOW_BRIGADES),
        *((k, 45, 75) for k in SLOW_PILE_ONS),
        *((k, 180, 300) for k in LOW_RATE_AUTOMATION),
        ("slow_report_wave", 180, 240),
        ("night_shift", 300, 420),
    ):
        start, end = span(records()[kind])
        assert low * 60 <= end - start <= high * 60, kind


@pytest.mark.parametrize("kind", sorted(SLOW_BRIGADES))
def test_a_slow_brigade_is_many_reporters_each_once_or_twice(kind: str) -> None:
    record = records()[kind]
    start, end = span(record)
    reports = of(kind)
    per_reporter = Counter(by(r) for r in reports)
    nominal = SLOW_BRIGADES[kind]
    assert set(per_reporter) == set(record["actors"])
    assert 0.85 * nominal - 1 <= len(per_reporter) <= 1.15 * nominal + 1
    assert max(per_reporter.values()) <= 2
    # Some young accounts, most of them established.
    young = sum(start - seconds(r["reporter_created_at"]) < 30 * 86400 for r in reports)
    assert 0 < young < len(reports) / 2
    # Mostly one reason, not all.
    reasons = Counter(r["reason"] for r in reports).most_common()
    assert 0.6 * len(reports) <= reasons[0][1] < len(reports)
    # Spread over its time: no ten minutes with more than twice their even share.
    times = sorted(seconds(r["ts"]) for r in reports)
    assert times[-1] - times[0] >= 0.8 * (end - start)
    assert busiest_ten_minutes(reports) <= max(6, 2 * len(reports) * 600 / (end - start))


@pytest.mark.parametrize("kind", sorted(SLOW_PILE_ONS))
def test_a_slow_pile_on_is_many_senders_in_words_of_their_own(kind: str) -> None:
    record = records()[kind]
    start, end = span(record)
    messages = of(kind)
    per_sender = Counter(by(m) for m in messages)
    nominal = SLOW_PILE_ONS[kind]
    assert set(per_sender) == set(record["actors"])
    assert 0.85 * nominal - 1 <= len(per_sender) <= 1.15 * nominal + 1
    assert max(per_sender.values()) <= 2
    assert {m["kind"] for m in messages} == {"message", "comment"}
    lines = [line.lower() for line in PILE_ON_LINES]
    assert all(any(line in m["text"].lower() for line in lines) for m in messages)
    assert_words_of_their_own(messages)
    times = sorted(seconds(m["ts"]) for m in messages)
    assert times[-1] - times[0] >= 0.8 * (end - start)
    assert busiest_ten_minutes(messages) <= max(6, 2 * len(messages) * 600 / (end - start))


@pytest.mark.parametrize("kind", sorted(LOW_RATE_AUTOMATION))
def test_low_rate_automation_posts_on_one_shared_schedule(kind: str) -> None:
    record = records()[kind]
    posts = of(kind)
    accounts = set(record["actors"])
    nominal = LOW_RATE_AUTOMATION[kind]
    assert {by(p) for p in posts} == accounts
    assert 0.85 * nominal - 1 <= len(accounts) <= 1.15 * nominal + 1
    assert not any(p.get("links") for p in posts) and {p["kind"] for p in posts} == {"post"}
    assert_words_of_their_own(posts)
    # No account posts twice in ten minutes.
    for account in accounts:
        times = sorted(seconds(p["ts"]) for p in posts if by(p) == account)
        assert min(b - a for a, b in pairwise(times)) > 600
    # Slots: posts more than a minute apart start a new one. Each slot is a few seconds
    # wide, most accounts post in most of them, and slots follow one period of 15 to 20 minutes.
    times = sorted(seconds(p["ts"]) for p in posts)
    slots: list[list[float]] = [[times[0]]]
    for t in times[1:]:
        if t - slots[-1][-1] > 60:
            slots.append([])
        slots[-1].append(t)
    assert len(slots) >= 9  # three hours or more
    assert all(slot[-1] - slot[0] <= 12 for slot in slots)
    assert all(len(slot) >= 0.25 * len(accounts) for slot in slots)
    assert statistics.median(len(slot) for slot in slots) >= 0.5 * len(accounts)
    gaps = [b[0] - a[0] for a, b in pairwise(slots)]
    assert min(gaps) >= 15 * 60 - 12 and max(gaps) <= 20 * 60 + 12
    assert max(gaps) - min(gaps) <= 12


def test_the_night_shift_posts_steadily_at_night() -> None:
    record = records()["night_shift"]
    start, end = span(record)
    assert not 6 <= datetime.fromisoformat(record["start"].replace("Z", "+00:00")).hour < 22
    posts = of("night_shift")
    assert 1 <= len(record["actors"]) <= 3
    for account in record["actors"]:
        times = sorted(seconds(p["ts"]) for p in posts if by(p) == account)
        assert times[-1] - times[0] >= 0.9 * (end - start)
        gaps = [b - a for a, b in pairwise(times)]
        # Steady as people are: regular, but not to the second.
        assert 0.1 <= statistics.pstdev(gaps) / statistics.mean(gaps) <= 0.6
        assert 5 * 60 * 0.8 <= statistics.mean(gaps) <= 12 * 60 * 1.2


def test_a_slow_report_wave_is_unrelated_reporters_fading_over_hours() -> None:
    record = records()["slow_report_wave"]
    start, end = span(record)
    reports = of("slow_report_wave")
    per_reporter = Counter(by(r) for r in reports)
    assert len(per_reporter) >= 40 and max(per_reporter.values()) == 1
    assert len({r["reason"] for r in reports}) >= 3
    first = sum(seconds(r["ts"]) < start + HOUR for r in reports)
    last = sum(seconds(r["ts"]) >= end - HOUR for r in reports)
    assert first > last > 0
