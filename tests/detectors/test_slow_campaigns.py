"""Slow campaigns: a new domain gathering accounts over hours, too slowly for the sliding
window of half an hour, is a campaign when most of its accounts are young; a story shared
over hours by established accounts is not. And the checkpoints from before it resume."""

from __future__ import annotations

import random
import zlib
from collections import OrderedDict
from typing import Any

import msgspec
import pytest

from detectors import codec
from detectors.alerts import Alert
from detectors.coordination import CoordinationConfig, CoordinationIndex, Row
from detectors.events import Event
from tests.detectors.test_coordination import T0, Topology, organic, post

HOUR = 3600.0
START = T0 + 2 * HOUR  # after the domains' warm-up
DOMAIN = "fresh-story-1a2b.info"
OFF = CoordinationConfig(domain_window_s=CoordinationConfig().campaign_window_s)


def drip(accounts: int, every_s: float, young: float, seed: int = 1) -> list[Event]:
    """`accounts` accounts, one every `every_s`, each posting its own words and a link to
    one new domain; a `young` share of them a few days old, the others years."""
    rng = random.Random(seed)
    events = []
    for k in range(accounts):
        age = 5.0 if rng.random() < young else 900.0
        link = f"https://{DOMAIN}/{k:04x}"
        ts = START + k * every_s + rng.uniform(0, 30)
        events.append(post(1000 + k, ts, f"s{k}", organic(rng), age_days=age, links=[link]))
    return events


def established_traffic() -> list[Event]:
    """Ordinary posts linking to established domains, from the start of the run."""
    rng = random.Random(2)
    return [
        post(i, T0 + rng.uniform(0, 8 * HOUR), f"o{i % 300}", organic(rng),
             links=[f"https://{rng.choice(('news.example', 'video.example'))}/{i}"])
        for i in range(1500)
    ]  # fmt: skip


def run(events: list[Event], config: CoordinationConfig | None = None, **kw: Any) -> list[Alert]:
    topology = Topology(config or CoordinationConfig(), **kw)
    return topology.run(events + established_traffic(), T0 + 8 * HOUR)


def test_young_accounts_gathering_on_a_new_domain_over_hours_are_a_campaign() -> None:
    events = drip(24, 7 * 60.0, young=0.75)  # never 8 of them in half an hour
    alerts = run(events)
    firing = [a for a in alerts if a.status == "firing"]
    assert len(firing) == 1
    alert = firing[0]
    assert alert.detector == "content_campaign"
    assert alert.evidence["campaign_kind"] == "link"
    assert alert.evidence["new_domains"] == [DOMAIN]
    assert set(alert.evidence["indicators"]) == {"young_accounts", "new_domain"}
    # Raised once eight accounts had shared it, about an hour in; later alerts name them all.
    eighth = sorted(e.ts for e in events)[7]
    assert eighth <= alert.ts <= eighth + 180
    assert {a.status for a in alerts} == {"firing", "update", "resolved"}
    assert set(alerts[-1].evidence["members"]) == {e.actor_id for e in events}
    # The sliding window alone never holds enough of them.
    assert run(events, OFF) == []


def test_accounts_further_apart_than_the_sliding_window_still_gather_over_hours() -> None:
    # One post every 35 minutes: each comes to a domain the sliding window has forgotten.
    hours = CoordinationConfig(domain_window_s=6 * HOUR)
    events = drip(9, 35 * 60.0, young=1.0)
    firing = [a for a in run(events, hours) if a.status == "firing"]
    assert len(firing) == 1
    assert firing[0].ts >= sorted(e.ts for e in events)[7]


def test_a_slow_campaign_that_thins_out_within_its_hours_is_one_campaign() -> None:
    # Eight accounts, then one every 25 minutes (the domain's hours hold too few of them for
    # a while), then five more in minutes: still the one campaign, updated, not raised again.
    minutes = [7 * k for k in range(8)] + [74 + 25 * k for k in range(4)]
    minutes += [160 + 5 * k for k in range(5)]
    events = [
        post(2000 + k, START + m * 60.0, f"t{k}", f"some words of their own {k}", age_days=5.0,
             links=[f"https://{DOMAIN}/{k}"])
        for k, m in enumerate(minutes)
    ]  # fmt: skip
    alerts = run(events)
    assert [a.status for a in alerts] == ["firing", "update", "resolved"]
    assert len({a.alert_id for a in alerts}) == 1
    assert set(alerts[-1].evidence["members"]) == {e.actor_id for e in events}
    # It resolves once its domain has gathered no one for the hours it keeps them.
    assert alerts[-1].ts >= START + (minutes[-1] + 120) * 60.0
    assert "has not grown for 120 min" in alerts[-1].summary


def test_a_story_shared_over_hours_by_established_accounts_does_not_alert() -> None:
    events = drip(40, 5 * 60.0, young=0.15)
    assert run(events) == []
    # Young accounts, at the same pace, would be a campaign.
    assert any(a.status == "firing" for a in run(drip(40, 5 * 60.0, young=0.85)))


def test_a_fast_link_campaign_is_raised_as_before() -> None:
    # Thirty established accounts within minutes: new domain and volume, no hours needed.
    events = drip(30, 20.0, young=0.0)
    assert run(events) == run(events, OFF) != []


@pytest.mark.parametrize("partitions,sources", [(2, 1), (3, 2)])
def test_a_slow_campaign_does_not_depend_on_how_keys_and_events_are_split(
    partitions: int, sources: int
) -> None:
    events = drip(24, 7 * 60.0, young=0.75)
    assert run(events, partitions=partitions, sources=sources) == run(events) != []


def test_a_new_domain_keeps_its_rows_for_the_domain_window_only() -> None:
    config = CoordinationConfig(domain_window_s=2 * HOUR)
    index = CoordinationIndex(config)
    index.close(T0, T0)
    for k in range(10):
        ts = START + k * 20 * 60.0  # one every 20 minutes
        row = Row("link", (DOMAIN,), ts, f"s{k}", f"e{k}", ts - 5 * 86400, "")
        index.add(ts // 60 * 60, row)
        found = index.close(T0, ts // 60 * 60 + 60)
        kept = index.new_domains[f"link:{DOMAIN}"]
        assert [r.actor for r in kept] == [f"s{j}" for j in range(max(0, k - 5), k + 1)]
        # Six accounts in two hours: never a candidate.
        assert found.candidates == []
    index.close(T0, START + 12 * HOUR)
    assert not index.new_domains and index.rows_held() == 0


def old_tree(name: str, obj: Any, version: int) -> list[Any]:
    spec = codec.TYPES[name]
    values = {f: getattr(obj, f) for f in spec.layouts[version]}
    return [name, version, *codec.Encoder().items([values[f] for f in spec.layouts[version]])]


def decode(tree: list[Any]) -> Any:
    return codec.decode(zlib.compress(msgspec.msgpack.encode(tree)))


def test_a_coordination_config_of_the_layout_before_domain_windows_reads() -> None:
    config = decode(old_tree("CoordinationConfig", CoordinationConfig(min_actors=9), 2))
    assert config == CoordinationConfig(min_actors=9)
    assert config.domain_window_s == CoordinationConfig().domain_window_s


def test_an_index_checkpoint_of_the_layout_before_domain_windows_resumes() -> None:
    index = CoordinationIndex(CoordinationConfig())
    index.close(T0, T0)
    index.add(START // 60 * 60, Row("link", (DOMAIN,), START, "s0", "e0", START - 86400, ""))
    index.close(T0, START // 60 * 60 + 60)
    resumed = decode(old_tree("CoordinationIndex", index, 1))
    assert resumed.new_domains == OrderedDict()
    assert resumed.keys == index.keys and resumed.domains_seen == index.domains_seen
    # It gathers the domain's rows from there on, and checkpoints them.
    ts = START + 3600
    resumed.add(ts // 60 * 60, Row("link", (DOMAIN,), ts, "s1", "e1", ts - 86400, ""))
    resumed.close(T0, ts // 60 * 60 + 60)
    again = codec.decode(codec.encode(resumed))
    assert [r.actor for r in again.new_domains[f"link:{DOMAIN}"]] == ["s1"]
