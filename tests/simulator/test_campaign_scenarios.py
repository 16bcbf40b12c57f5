"""The slow campaigns and their decoy: ground truth, and traffic as described (mostly young
accounts each posting a paraphrase of one pitch with a link to one new domain, once or
twice, dripped out over hours; a news story shared by unrelated accounts in their own words)."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import datetime
from functools import cache
from typing import Any

import pytest

from detectors.actor_features import NEAR_DUPLICATE, domain_of
from detectors.coordination import CoordinationConfig
from detectors.text import normalise, signature, similarity
from simulator import SimConfig, generate, truth
from simulator.organic import DOMAINS
from simulator.scenarios import CAMPAIGN_FAMILY, DECOYS, PITCHES, QUIET_FAMILIES, SLOW_CAMPAIGNS

HOUR = 3600.0
CONFIG = SimConfig(
    duration_s=26 * HOUR,
    rate=1.0,
    actors=3000,
    scenarios=CAMPAIGN_FAMILY,  # each kind once, in turn, every five hours from midnight
    actor_scenarios=(),
    group_scenarios=(),
    first_attack_s=0.0,
    attack_every_s=5 * HOUR,
)
MIN_ACTORS = CoordinationConfig().min_actors


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


def of(kind: str) -> list[dict[str, Any]]:
    """The scenario's own posts: by its accounts, in its time, linking to a domain the organic
    traffic never links to (established accounts go on with their organic traffic meanwhile)."""
    record = records()[kind]
    actors = set(record["actors"])
    start, end = span(record)
    found = {
        v["event_id"]: v  # once each: the simulator re-sends a few events, as producers do
        for v in events()
        if v.get("actor_id") in actors
        and start <= seconds(v["ts"]) < end
        and any(domain_of(link) not in DOMAINS for link in v.get("links", ()))
    }
    return list(found.values())


def most_accounts(posts: list[dict[str, Any]], within_s: float) -> int:
    """The most distinct accounts posting within `within_s` from one of the posts."""
    timed = sorted((seconds(p["ts"]), p["actor_id"]) for p in posts)
    return max(len({a for u, a in timed if t <= u < t + within_s}) for t, _ in timed)


def young_share(posts: list[dict[str, Any]], at: float) -> float:
    created = {p["actor_id"]: seconds(p["actor_created_at"]) for p in posts}
    return sum(at - c < 30 * 86400 for c in created.values()) / len(created)


def domains(posts: list[dict[str, Any]]) -> Counter[str]:
    return Counter(domain_of(link) for p in posts for link in p["links"])


def test_each_kind_has_its_ground_truth() -> None:
    assert set(records()) == set(CAMPAIGN_FAMILY)
    assert QUIET_FAMILIES["slow_campaign"] == CAMPAIGN_FAMILY
    for kind, record in records().items():
        assert record.get("decoy", False) == (kind in DECOYS)
        assert record["actors"] and not record["targets"]
    for kind, low, high in (
        *((k, 2, 4) for k in SLOW_CAMPAIGNS),
        ("organic_link_share", 4, 6),
    ):
        start, end = span(records()[kind])
        assert low * HOUR <= end - start <= high * HOUR, kind


@pytest.mark.parametrize("kind", sorted(SLOW_CAMPAIGNS))
def test_a_slow_campaign_is_mostly_young_accounts_posting_once_or_twice(kind: str) -> None:
    record = records()[kind]
    start, _ = span(record)
    posts = of(kind)
    per_account = Counter(p["actor_id"] for p in posts)
    nominal = SLOW_CAMPAIGNS[kind]
    assert set(per_account) == set(record["actors"])
    assert 0.85 * nominal - 1 <= len(per_account) <= 1.15 * nominal + 1
    assert max(per_account.values()) == 2
    assert sum(n == 2 for n in per_account.values()) <= 0.4 * len(per_account)
    assert 0.5 <= young_share(posts, start) <= 0.95


@pytest.mark.parametrize("kind", sorted(SLOW_CAMPAIGNS))
def test_a_slow_campaign_is_dripped_out_over_hours(kind: str) -> None:
    record = records()[kind]
    start, end = span(record)
    posts = of(kind)
    times = sorted(seconds(p["ts"]) for p in posts)
    assert times[0] - start <= 0.1 * (end - start) and end - times[-1] <= 0.1 * (end - start)
    # No half hour with more than twice its even share of the accounts, and at the weakest
    # strength never the accounts a bucket or a new domain needs within half an hour.
    even = len(posts) * 1800 / (end - start)
    assert most_accounts(posts, 1800) <= max(MIN_ACTORS - 1, 2 * even)
    if SLOW_CAMPAIGNS[kind] == 20:
        assert most_accounts(posts, 1800) < MIN_ACTORS


@pytest.mark.parametrize("kind", sorted(SLOW_CAMPAIGNS))
def test_a_slow_campaign_paraphrases_one_pitch_with_one_link(kind: str) -> None:
    posts = of(kind)
    # One pitch: every text words its claim one of that pitch's ways.
    texts = [p["text"].lower() for p in posts]
    (pitch,) = [p for p in PITCHES if any(claim in texts[0] for claim in p[1])]
    assert all(any(claim in text for claim in pitch[1]) for text in texts)
    # Not copies: hardly two texts the same once links and punctuation are gone, and most
    # pairs below the near-duplicate similarity; but far closer than unrelated texts.
    words = Counter(" ".join(w for w in normalise(p["text"]) if "." not in w) for p in posts)
    assert len(words) >= 0.8 * len(posts)
    sigs = [s for s in (signature(p["text"]) for p in posts) if s is not None]
    pairs = [similarity(a, b) for i, a in enumerate(sigs) for b in sigs[i + 1 :]]
    assert sum(s >= NEAR_DUPLICATE for s in pairs) / len(pairs) < 0.25
    assert statistics.mean(pairs) >= 0.12
    # One new domain, a mirror for a few posts.
    counts = domains(posts).most_common()
    assert len(counts) == 2 and counts[0][1] >= 0.65 * len(posts)
    assert not {d for d, _ in counts} & set(DOMAINS)


def test_unrelated_texts_are_not_that_close() -> None:
    """The bound above separates a pitch's paraphrases from the decoy's own words."""
    posts = of("organic_link_share")
    sigs = [s for s in (signature(p["text"]) for p in posts) if s is not None]
    pairs = [similarity(a, b) for i, a in enumerate(sigs) for b in sigs[i + 1 :]]
    assert statistics.mean(pairs) < 0.12


def test_an_organic_link_share_is_unrelated_accounts_in_their_own_words() -> None:
    record = records()["organic_link_share"]
    start, end = span(record)
    posts = of("organic_link_share")
    per_account = Counter(p["actor_id"] for p in posts)
    assert set(per_account) == set(record["actors"])
    assert 20 <= len(per_account) <= 35 and max(per_account.values()) == 1
    assert young_share(posts, start) < 0.35
    ((domain, n),) = domains(posts).items()
    assert n == len(posts) and domain not in DOMAINS
    sigs = [s for s in (signature(p["text"]) for p in posts) if s is not None]
    pairs = [similarity(a, b) for i, a in enumerate(sigs) for b in sigs[i + 1 :]]
    assert sum(s >= NEAR_DUPLICATE for s in pairs) / len(pairs) < 0.02
    times = sorted(seconds(p["ts"]) for p in posts)
    assert times[-1] - times[0] >= 0.8 * (end - start)
    # Spread over its hours: never in half an hour the accounts that a new domain with no
    # other sign of coordination needs to alert (a burst of them is a link campaign).
    config = CoordinationConfig()
    assert most_accounts(posts, 1800) < config.campaign_threshold / 2 * config.min_actors
