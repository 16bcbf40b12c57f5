"""Slow mass messaging and its decoy: ground truth, and traffic as described (a young account
messaging varied scams to accounts it never contacted, never five in ten minutes, for hours;
an established account answering many different people at a similar pace)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from functools import cache
from typing import Any

import pytest

from detectors.actor_model import ActorModel
from detectors.text import normalise
from simulator import SimConfig, generate, truth
from simulator.scenarios import (
    DECOYS,
    MESSAGING_FAMILY,
    QUIET_FAMILIES,
    SLOW_MASS_MESSAGING,
)

HOUR, DAY = 3600.0, 86400.0
KINDS = (*SLOW_MASS_MESSAGING, "community_helper")
CONFIG = SimConfig(
    duration_s=20 * HOUR,
    rate=1.0,
    actors=3000,
    scenarios=KINDS,  # each once, in turn, every five hours from midnight
    actor_scenarios=(),
    group_scenarios=(),
    first_attack_s=0.0,
    attack_every_s=5 * HOUR,
)


def seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@cache
def records() -> dict[str, dict[str, Any]]:
    return {r["kind"]: r for r in truth(CONFIG)}


@cache
def events() -> list[dict[str, Any]]:
    return [v for _, v in generate(CONFIG)]


def of(kind: str) -> list[dict[str, Any]]:
    """The scenario's content, once each (the simulator re-sends a few events, as producers
    do), in time order: its account's, in its time, addressed to someone."""
    record = records()[kind]
    [actor] = record["actors"]
    start, end = seconds(record["start"]), seconds(record["end"])
    found = {
        v["event_id"]: v
        for v in events()
        if v.get("actor_id") == actor and start <= seconds(v["ts"]) < end and v.get("target_id")
    }
    return sorted(found.values(), key=lambda v: seconds(v["ts"]))


def test_each_kind_has_its_ground_truth() -> None:
    assert set(records()) == set(KINDS)
    assert QUIET_FAMILIES["slow_mass_messaging"] == MESSAGING_FAMILY
    assert set(KINDS) <= set(MESSAGING_FAMILY)
    for kind, record in records().items():
        assert record.get("decoy", False) == (kind in DECOYS) == (kind == "community_helper")
        assert len(record["actors"]) == 1 and not record["targets"] and not record["signals"]
        hours = (seconds(record["end"]) - seconds(record["start"])) / HOUR
        assert 2.0 <= hours <= 4.0, (kind, hours)


@pytest.mark.parametrize("kind", list(SLOW_MASS_MESSAGING))
def test_a_slow_mass_messager_writes_to_new_accounts_under_the_ten_minute_gate(kind: str) -> None:
    messages = of(kind)
    record = records()[kind]
    start, end = seconds(record["start"]), seconds(record["end"])
    assert all(m["kind"] == "message" for m in messages)
    targets = [m["target_id"] for m in messages]
    assert len(set(targets)) == len(targets), "each message to an account never contacted"
    assert record["actors"][0] not in targets
    age = start - seconds(messages[0]["actor_created_at"])
    assert DAY <= age <= 10 * DAY, "a young account"
    # Never five in any ten minutes of one-minute windows (the actor detector's gate) ...
    gate = ActorModel().min_events
    minutes = [seconds(m["ts"]) // 60 for m in messages]
    assert all(minutes[i + int(gate) - 1] - minutes[i] >= 10 for i in range(len(minutes) - 4))
    # ... at about the pace its name says: hours of it, in all.
    per_10m = len(messages) / ((end - start) / 600)
    assert 0.75 * SLOW_MASS_MESSAGING[kind] <= per_10m <= SLOW_MASS_MESSAGING[kind] + 0.5
    assert len(messages) >= 12 * SLOW_MASS_MESSAGING[kind] * 0.75  # two hours or more
    # Short, varied scams, most with a link to one domain of its own.
    wordings = Counter(" ".join(normalise(m["text"])) for m in messages)
    assert len(wordings) >= 10 and max(wordings.values()) <= 0.2 * len(messages)
    assert max(len(m["text"]) for m in messages) < 120
    linked = [m for m in messages if m.get("links")]
    assert len(linked) / len(messages) >= 0.4
    assert len({link.split("/")[2] for m in linked for link in m["links"]}) == 1


def test_the_community_helper_is_an_established_account_answering_many_people() -> None:
    replies = of("community_helper")
    start = seconds(records()["community_helper"]["start"])
    assert seconds(replies[0]["actor_created_at"]) <= start - 180 * DAY
    assert len({r["target_id"] for r in replies}) >= 0.9 * len(replies)
    record = records()["community_helper"]
    per_10m = len(replies) / ((seconds(record["end"]) - start) / 600)
    assert 1.5 <= per_10m <= 5.0, "at a slow mass messager's pace (and its own traffic besides)"
    assert sum(bool(r.get("links")) for r in replies) <= 0.2 * len(replies)
    assert {r["kind"] for r in replies} <= {"comment", "message"}
