"""Actors on the hour's scale: the hourly counts, the hourly gate, and checkpoints of the
layout before them."""

from __future__ import annotations

import random
import zlib
from typing import Any

import msgspec
import pytest

from detectors import codec
from detectors.actor_features import HOUR_BLOCKS, Activity, ActorPartial, ActorState
from detectors.actor_model import ActorModel, indicators, ordinary
from detectors.actors import ActorConfig, ActorProcessor
from detectors.alerts import Alert
from detectors.text import signature

T0 = 1795478400.0  # 2026-11-24T00:00Z, a multiple of ten minutes
DAY = 86400.0
WORDS = [
    *[
        "the",
        "day",
        "good",
        "time",
        "people",
        "love",
        "today",
        "home",
        "work",
        "friends",
        "family",
        "night",
        "week",
        "game",
    ],
    *[
        "team",
        "play",
        "watch",
        "video",
        "music",
        "song",
        "movie",
        "show",
        "news",
        "story",
        "photo",
        "dinner",
        "garden",
    ],
]


def test_the_gate_reads_the_last_ten_minutes_and_hour_as_of_a_window() -> None:
    """`gate_counts` right after an update reads the ring as it stands; for any other window
    (one the actor was not updated for), as `ring_sum` and `hour` do."""
    rng = random.Random(6)
    for window_s in (60.0, 45.0, 120.0, 600.0):
        state = ActorState()
        start = T0 + rng.randrange(50) * window_s
        assert state.gate_counts(start, window_s) == (0, 0, 0)
        for _ in range(60):
            start += rng.choice((1, 1, 2, 3, 7, 12, 40, 90)) * window_s
            new = rng.randrange(4)
            targets = [f"t{start}-{k}" for k in range(new)]
            state.update(start, start + window_s, Activity(rng.randrange(10), targets=targets))
            for then in (start, start + rng.randrange(1, 80) * window_s):
                end = then + window_s
                events_1h, _, blocks_1h = state.hour(end, window_s)
                expected = (state.ring_sum(0, end, window_s), events_1h, blocks_1h)
                assert state.gate_counts(then, window_s) == expected, (window_s, start, then)


def test_the_last_hour_is_the_sum_of_its_ten_minute_blocks() -> None:
    rng = random.Random(5)
    for window_s in (60.0, 45.0, 120.0, 600.0):
        state, counts = ActorState(), {}
        start = T0 + rng.randrange(50) * window_s
        for _ in range(60):
            start += rng.choice((1, 1, 2, 3, 7, 12, 40, 90)) * window_s
            counts[start] = (rng.randrange(10), rng.randrange(4))
            events, new = counts[start]
            targets = [f"t{start}-{k}" for k in range(new)]  # each addressed for the first time
            state.update(start, start + window_s, Activity(events, targeted=new, targets=targets))
            for ahead in range(0, 80, 3):
                now = start + window_s * (1 + ahead)
                block = (now - window_s) // 600
                inside = {
                    s: n for s, n in counts.items() if block - HOUR_BLOCKS < s // 600 <= block
                }
                expected = (
                    sum(e for e, _ in inside.values()),
                    sum(t for _, t in inside.values()),
                    len({s // 600 for s, (e, _) in inside.items() if e}),  # blocks with events
                )
                assert state.hour(now, window_s) == expected, (
                    window_s,
                    start,
                    now,
                )


def test_the_last_hour_forgets_older_blocks() -> None:
    state = ActorState()
    for m in range(60):  # one event a minute for an hour, from T0
        state.update(T0 + 60 * m, T0 + 60 * (m + 1), Activity(events=1))
    end = T0 + 3600
    assert state.features(end)["events_1h"] == 60 and state.features(end)["events_10m"] == 10
    assert state.features(end + 60)["events_1h"] == 50, "the first block has left the hour"
    assert state.features(end + 3000)["events_1h"] == 10
    assert state.features(end + 3600)["events_1h"] == 0
    later = end + 2 * 3600
    state.update(later, later + 60, Activity(events=3))
    assert state.features(later + 60)["events_1h"] == 3, "blocks left from before are cleared"


# -- the hourly gate -------------------------------------------------------------------------
def _post(rng: random.Random, start: float, created: float) -> Activity:
    return Activity(
        events=1,
        times=[start + rng.uniform(0, 59)],
        kinds={"post": 1},
        surfaces={"feed": 1},
        texts=[(f"e{start}", signature(" ".join(rng.sample(WORDS, 8))) or b"")],
        created_at=created,
    )


def _first_contact(
    rng: random.Random, start: float, n: int, created: float, scam: bool
) -> Activity:
    """A message (a scam with a link) or a reply (ordinary words) to an account never
    addressed before."""
    target = f"t{rng.getrandbits(40):010x}"
    if scam:
        link = f"https://claim-7f3a.top/{rng.getrandbits(24):06x}"
        text = f"hey {rng.choice(('dear', 'babe', 'friend'))} is this you in this video?? {link}"
        kind, surface, links, domains = "message", "messenger", 1, ["claim-7f3a.top"]
    else:
        text = " ".join(rng.sample(WORDS, 10))
        kind, surface, links, domains = "comment", "groups", 0, []
    return Activity(
        events=1,
        times=[start + rng.uniform(0, 59)],
        kinds={kind: 1},
        surfaces={surface: 1},
        targeted=1,
        targets=[target],
        texts=[(f"m{n}", signature(text) or b"")],
        linked=links,
        domains=domains,
        created_at=created,
    )


def slow_messaging_among_ordinary_actors(
    min_events_1h: float = 10.0, pauses: tuple[tuple[int, int], ...] = (), minutes: int = 180
) -> list[Alert]:
    """Three hours of 2,000 ordinary accounts posting now and then; from the second hour a
    two-day-old account messaging a scam to a new account every three to six minutes (but
    in the minutes of `pauses`), and a two-year-old one replying to a new person about as
    often, in words of its own."""
    config = ActorConfig(warmup=300, cooldown_s=1800.0, min_events_1h=min_events_1h)
    processor = ActorProcessor(config)
    rng = random.Random(8)
    young, old = T0 - 2 * DAY, T0 - 700 * DAY
    next_at = {"scammer": T0 + 3600.0, "helper": T0 + 3660.0}
    alerts: list[Alert] = []
    for m in range(minutes):
        start = T0 + 60 * m
        for a in rng.sample(range(2000), 60):
            processor.add_partial(
                ActorPartial("content-events:0", f"u{a}", start, _post(rng, start, old))
            )
        for actor, created in (("scammer", young), ("helper", old)):
            paused = actor == "scammer" and any(a <= m < b for a, b in pauses)
            if start >= next_at[actor] and not paused:
                activity = _first_contact(rng, start, m, created, scam=actor == "scammer")
                processor.add_partial(ActorPartial("content-events:1", actor, start, activity))
                if actor == "scammer":  # never five in ten minutes
                    next_at[actor] = start + rng.choice((180.0, 240.0, 300.0, 360.0))
                else:  # at a person's irregular pace
                    next_at[actor] = start + 60.0 + rng.expovariate(1 / 180.0)
        alerts += processor.close(T0, start + 60).alerts
        scammer = processor.actors.get("scammer")
        if scammer is not None:
            assert scammer.features(start + 60)["events_10m"] < config.min_events
    return alerts


def test_a_slow_mass_messager_passes_the_hourly_gate_and_the_helper_does_not_alert() -> None:
    alerts = slow_messaging_among_ordinary_actors()
    scammer = [a for a in alerts if a.entity_id == "scammer"]
    assert scammer, "the slow scammer is flagged"
    first = scammer[0]
    assert first.status == "firing" and first.evidence["scale"] == "1h"
    assert first.ts < T0 + 2 * 3600, "within its first hour"
    features = first.evidence["features"]
    assert features["events_10m"] < 5 <= 10 <= features["events_1h"]
    assert "link_share" in first.evidence["indicators"]
    assert "new_targets_1h" in first.evidence["indicators"]
    events, targets = int(features["events_1h"]), int(features["new_targets_1h"])
    assert f"sent {events} messages to {targets} distinct new recipients in the last hour" in (
        first.summary
    )
    assert not [a for a in alerts if a.entity_id != "scammer"], "the helper, the others: quiet"


def test_a_slow_mass_messager_that_pauses_for_a_while_stays_one_alert() -> None:
    """Raised on the hour's scale, an episode resolves after an hour without a flag (not the
    half hour of the ten minutes' scale): a pause of 25 minutes, and the while it takes to
    pass the gate again, do not split it; it resolves an hour after the account stops."""
    alerts = slow_messaging_among_ordinary_actors(pauses=((120, 145), (240, 999)), minutes=340)
    scammer = [a for a in alerts if a.entity_id == "scammer"]
    assert [a.status for a in scammer].count("firing") == 1
    assert len({a.alert_id for a in scammer}) == 1
    resolved = scammer[-1]
    assert resolved.status == "resolved" and resolved.ts - resolved.window_end == 3600
    assert "within the population's range for 60 min" in resolved.summary


def test_without_the_hourly_gate_the_slow_mass_messager_is_never_a_candidate() -> None:
    assert not slow_messaging_among_ordinary_actors(min_events_1h=1000.0)


def test_a_burst_that_is_over_does_not_come_back_on_the_hours_scale() -> None:
    """A compromised account's ten-minute spam burst is flagged and resolved; when it posts
    again within the hour, its hour still holds the burst, but no pace kept up."""
    processor = ActorProcessor(ActorConfig(warmup=300, cooldown_s=600.0))
    rng = random.Random(3)
    old = T0 - 700 * DAY
    alerts: list[Alert] = []
    for m in range(100):
        start = T0 + 60 * m
        for a in rng.sample(range(2000), 60):
            partial = ActorPartial("content-events:0", f"u{a}", start, _post(rng, start, old))
            processor.add_partial(partial)
        if 60 <= m < 66:  # eight scam messages a minute, to new accounts
            for k in range(8):
                activity = _first_contact(rng, start, 8 * m + k, old, scam=True)
                processor.add_partial(
                    ActorPartial(f"content-events:{k + 1}", "taken", start, activity)
                )
        if m == 85:
            processor.add_partial(
                ActorPartial("content-events:0", "taken", start, _post(rng, start, old))
            )
        alerts += processor.close(T0, start + 60).alerts
    taken = [a for a in alerts if a.entity_id == "taken" and a.status != "update"]
    assert [(a.status, a.evidence.get("scale")) for a in taken] == [
        ("firing", "10m"),
        ("resolved", None),
    ]
    state = processor.actors["taken"]
    features = state.features(T0 + 86 * 60)
    assert features["events_1h"] >= 10 and features["blocks_1h"] == 2, "the hour holds the burst"


def test_contact_with_many_new_accounts_in_an_hour_takes_a_young_or_reported_account() -> None:
    cold = {"events_1h": 20.0, "new_targets_1h": 19.0, "age_days": 3.0, "gap_cv": 1.0}
    assert indicators(cold) == ["new_targets_1h"]
    assert indicators({**cold, "age_days": 400.0}) == []
    assert indicators({**cold, "age_days": 400.0, "reporters_24h": 2.0}) == ["new_targets_1h"]
    assert indicators({**cold, "events_1h": 40.0}) == [], "first contacts are most of what it did"
    assert indicators({**cold, "new_targets_1h": 9.0, "events_1h": 9.0}) == []


def test_the_hourly_gate_is_an_alternative_to_the_ten_minutes_gate() -> None:
    rng = random.Random(2)
    model = ActorModel(warmup=100, learn_every=1)
    for _ in range(500):
        model.step(ordinary(rng))
    slow = {**ordinary(rng), "events_10m": 3.0, "events_1h": 22.0, "new_targets_1h": 21.0}
    slow["blocks_1h"] = 6.0
    slow.update(age_days=2.0, link_share=0.9, new_target_share=1.0)
    verdict = model.step(dict(slow))
    assert verdict is not None and verdict.flagged and verdict.scale == "1h"
    fast = model.step({**slow, "events_10m": 12.0, "new_targets_10m": 11.0})
    assert fast is not None and fast.flagged and fast.scale == "10m"
    below = model.step({**slow, "events_1h": 9.0, "new_targets_1h": 9.0})
    assert below is not None and not below.flagged, "neither gate passed"
    burst = model.step({**slow, "blocks_1h": 2.0})
    assert burst is not None and not burst.flagged, "not a pace kept up over the hour"


# -- checkpoints of the layout before -------------------------------------------------------
def decode_tree(tree: list[Any]) -> Any:
    return codec.decode(zlib.compress(msgspec.msgpack.encode(tree)))


def version_1(state: ActorState) -> list[Any]:
    """A checkpoint tree of the state as version 1 wrote it: the ring without the hour."""
    values = state.__getstate__()
    ring = values[ActorState.__slots__.index("ring")]
    assert isinstance(ring, bytes)
    values[ActorState.__slots__.index("ring")] = ring[: -2 * HOUR_BLOCKS * 4]
    return ["ActorState", 1, *codec.Encoder().items(values)]


def test_an_actor_state_of_version_1_resumes_with_an_empty_hour() -> None:
    state = ActorState()
    for m in range(30):
        state.update(T0 + 60 * m, T0 + 60 * (m + 1), Activity(events=2))
    end = T0 + 1800
    resumed = decode_tree(version_1(state))
    assert isinstance(resumed, ActorState)
    before, after = state.features(end), resumed.features(end)
    assert after["events_10m"] == before["events_10m"] == 20
    assert after["events_1h"] == 0 and before["events_1h"] == 60
    assert {k: v for k, v in after.items() if not k.endswith("_1h")} == {
        k: v for k, v in before.items() if not k.endswith("_1h")
    }
    for s in (state, resumed):
        s.update(end, end + 60, Activity(events=4))
    assert resumed.features(end + 60)["events_1h"] == 4
    assert resumed.features(end + 60)["events_10m"] == state.features(end + 60)["events_10m"]
    twin = codec.decode(codec.encode(resumed))  # and is saved as version 2
    assert twin.__getstate__() == resumed.__getstate__()


def test_a_damaged_ring_of_version_1_is_refused() -> None:
    state = ActorState()
    state.update(T0, T0 + 60, Activity(events=2))
    tree = version_1(state)
    tree[2 + ActorState.__slots__.index("ring")] = b"\x00" * 6
    with pytest.raises(codec.CodecError, match="ring"):
        decode_tree(tree)


@pytest.mark.parametrize("name", ["ActorConfig", "ActorModel"])
def test_actor_settings_of_version_1_get_the_default_hourly_gate(name: str) -> None:
    spec = codec.TYPES[name]
    current = ActorConfig(min_events=7.0) if name == "ActorConfig" else ActorModel(min_events=7.0)
    values = dict(zip(spec.fields, spec.get(current), strict=True))
    tree = [name, 1, *codec.Encoder().items([values[f] for f in spec.layouts[1]])]
    resumed = decode_tree(tree)
    assert resumed.min_events == 7.0 and resumed.min_events_1h == ActorConfig().min_events_1h


def test_an_actor_processor_of_version_1_resolves_its_open_episodes_as_before() -> None:
    processor = ActorProcessor(ActorConfig(cooldown_s=600.0))
    processor.open.add("u1")
    spec = codec.TYPES["ActorProcessor"]
    values = dict(zip(spec.fields, spec.get(processor), strict=True))
    resumed = decode_tree(
        ["ActorProcessor", 1, *codec.Encoder().items([values[f] for f in spec.layouts[1]])]
    )
    assert resumed.open == {"u1"} and resumed.hourly == set()
    assert resumed._policy("u1").cooldown_s == 600.0
    assert resumed.hour_policy == processor.hour_policy and resumed.hour_policy.cooldown_s == 3600
