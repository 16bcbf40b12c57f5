"""Actor anomaly detection: features on hand-built activity, the population model, stage 2."""

from __future__ import annotations

import itertools
import random
import re
import sys
from array import array
from pathlib import Path

import orjson
import pytest

from detectors import codec
from detectors.actor_features import (
    FEATURES,
    KINDS,
    NEAR_DUPLICATE,
    RECENT_TARGETS,
    Activity,
    ActivityCollector,
    ActorPartial,
    ActorState,
    _blend,
)
from detectors.actor_model import ActorModel, ordinary
from detectors.actors import ActorConfig, ActorProcessor
from detectors.alerts import Alert
from detectors.events import ContentEvent, ReportEvent, format_rfc3339
from detectors.text import signature, similarity

T0 = 1795478400.0  # 2026-11-24T00:00Z
WORDS = [
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
    "coffee",
    "garden",
    "dog",
    "cat",
    "kids",
]
SPAM = "FREE gift card giveaway, only {n} left, claim yours now https://gift-drop.top/c/{n}"


def content(n: int, ts: float, actor: str = "u1", **fields: object) -> ContentEvent:
    return ContentEvent(
        event_id=f"e{n:06d}",
        ts=format_rfc3339(ts),
        actor_id=actor,
        kind=fields.pop("kind", "post"),
        **fields,  # type: ignore[arg-type]
    )


def windows_of(events: list[ContentEvent]) -> list[tuple[float, Activity]]:
    """Stage 1 over the events, one window a minute: (window start, activity of u1)."""
    collector = ActivityCollector("content-events:0")
    for event in events:
        collector.add(event, event.ts // 60 * 60, signature(event.text or ""))
    return [(p.window_start, p.activity) for p in collector.close(float("inf"))]


def state_after(events: list[ContentEvent]) -> tuple[ActorState, float]:
    state = ActorState()
    end = T0
    for start, activity in windows_of(events):
        end = start + 60
        state.update(start, end, activity)
    return state, end


# -- features ------------------------------------------------------------------------------
def test_a_fixed_schedule_has_regular_gaps_and_random_posting_does_not() -> None:
    rng = random.Random(1)
    scripted = [content(i, T0 + 60 * i + rng.gauss(0, 0.5)) for i in range(30)]
    human = []
    ts = T0
    for i in range(30):
        ts += rng.expovariate(1 / 60)
        human.append(content(i, ts))
    assert state_after(scripted)[0].gap_cv() < 0.05
    assert 0.6 < state_after(human)[0].gap_cv() < 1.6


def test_near_identical_texts_raise_the_duplicate_share_and_varied_ones_do_not() -> None:
    spam = [content(i, T0 + 30 * i, text=SPAM.format(n=i + 3)) for i in range(10)]
    chat = [
        content(i, T0 + 30 * i, text=text)
        for i, text in enumerate(
            [
                "anyone know a good place for dinner near the beach",
                "great game last night what a finish",
                "my dog learned a new trick today so proud",
                "looking for a used bike in good condition",
                "happy birthday to my best friend love you",
                "rain again this weekend so no trip to the coast",
                "new recipe for the kitchen garden tomatoes worked",
                "school starts tomorrow kids are not ready",
            ]
        )
    ]
    assert state_after(spam)[0].dup_share > 0.8
    assert state_after(chat)[0].dup_share == 0.0


def test_fan_out_counts_accounts_contacted_for_the_first_time() -> None:
    blast = [content(i, T0 + 5 * i, kind="message", target_id=f"t{i}") for i in range(100)]
    friends = [content(i, T0 + 5 * i, kind="message", target_id=f"t{i % 3}") for i in range(100)]
    state, end = state_after(blast)
    f = state.features(end)
    assert f["events_10m"] == 100 and f["new_targets_10m"] == 100
    assert f["new_target_share"] > 0.99
    state, end = state_after(friends)
    f = state.features(end)
    assert f["events_10m"] == 100 and f["new_targets_10m"] == 3
    assert f["new_target_share"] < 0.01


def test_links_domains_and_age_at_event_time() -> None:
    created = format_rfc3339(T0 - 2 * 86400)
    events = [
        content(i, T0 + 10 * i, links=[f"https://d{i % 2}.example/x"], actor_created_at=created)
        for i in range(20)
    ]
    state, end = state_after(events)
    f = state.features(end)
    assert f["link_share"] > 0.8
    assert f["new_domains_1h"] == pytest.approx(2, rel=0.1)  # two domains, decaying over an hour
    assert f["age_days"] == pytest.approx(2 + (end - T0) / 86400)


def test_the_last_ten_minutes_forget_older_windows() -> None:
    state, end = state_after([content(i, T0 + i) for i in range(50)])
    assert state.features(end)["events_10m"] == 50
    assert state.features(end + 540)["events_10m"] == 50
    assert state.features(end + 600)["events_10m"] == 0
    later = end + 3600
    state.update(later, later + 60, windows_of([content(99, later + 1)])[0][1])
    assert state.features(later + 60)["events_10m"] == 1


def test_the_last_ten_minutes_are_the_sum_of_the_windows_in_them() -> None:
    rng = random.Random(3)
    for window_s in (60.0, 45.0, 120.0, 600.0, 900.0):
        state, counts = ActorState(), {}
        start = rng.randrange(50) * window_s
        for _ in range(40):
            start += rng.choice((1, 1, 2, 3, 7, 12)) * window_s
            counts[start] = rng.randrange(10)
            state.update(start, start + window_s, Activity(events=counts[start]))
            for ahead in range(12):
                now = start + window_s * (1 + ahead)
                recent = sum(n for s, n in counts.items() if s + window_s > now - 600.0)
                assert state.ring_sum(0, now, window_s) == recent, (window_s, start, now)


def test_the_kind_mix_blends_each_kind_by_its_share_of_the_window() -> None:
    """Each kind's share moves towards its part of the window's events, a kind the window
    has not towards zero, and a kind outside `KINDS` is no share: the same floats as
    blending each kind in turn."""
    rng = random.Random(8)
    state, expected = ActorState(), dict.fromkeys(KINDS, 0.0)
    start = T0
    for _ in range(200):
        start += 60.0
        kinds = {k: rng.randrange(1, 5) for k in rng.sample([*KINDS, "story"], rng.randrange(4))}
        events = sum(kinds.values()) or rng.randrange(2)
        state.update(start, start + 60.0, Activity(events, kinds=kinds))
        if events:
            for kind in KINDS:
                expected[kind] = _blend(expected[kind], kinds.get(kind, 0) / events, events)
        assert state.kind_shares == [expected[kind] for kind in KINDS]


def test_a_text_is_a_near_duplicate_at_the_similarity_threshold_and_not_below() -> None:
    rng = random.Random(4)
    for equal in range(33):
        state = ActorState()
        recent = [bytes(rng.randrange(1, 256) for _ in range(32)) for _ in range(3)]
        for sig in recent:
            state._near_duplicate(sig)
        # The new text shares `equal` bytes with the second of the recent ones, none with the rest.
        new = bytes(b if i < equal else 0 for i, b in enumerate(recent[1]))
        expected = max(similarity(new, old) for old in recent) >= NEAR_DUPLICATE
        assert state._near_duplicate(new) is expected, equal
        assert expected is (equal >= 17)


def test_an_actor_state_survives_a_checkpoint_and_resumes_identically() -> None:
    events = [
        content(i, T0 + 7 * i, text=f"{WORDS[i % 9]} {WORDS[i % 5]}", target_id=f"t{i % 4}")
        for i in range(80)
    ]
    events += [content(100 + i, T0 + 600 + i, links=[f"https://d{i}.example/x"]) for i in range(5)]
    state, end = state_after(events)
    twin = codec.decode(codec.encode(state))
    assert twin.__getstate__() == state.__getstate__()
    later = windows_of([content(200 + i, end + i, target_id=f"n{i}") for i in range(9)])[0][1]
    for s in (state, twin):
        s.update(end, end + 60, later)
    assert twin.features(end + 60) == state.features(end + 60)
    fresh = ActorState()
    assert codec.decode(codec.encode(fresh)).__getstate__() == fresh.__getstate__()


def test_reports_received_count_distinct_reporters_and_reasons() -> None:
    collector = ActivityCollector("report-events:0")
    for i in range(6):
        report = ReportEvent(
            event_id=f"r{i}",
            ts=format_rfc3339(T0 + i),
            reporter_id=f"rep{i % 4}",
            target_actor_id="u9",
            reason="spam" if i < 5 else "scam",
        )
        collector.add(report, T0)
    by_actor = {p.actor: p.activity for p in collector.close(T0 + 60)}
    assert by_actor["u9"].reporters == ["rep0", "rep1", "rep2", "rep3"]
    assert by_actor["u9"].reasons == {"spam": 5, "scam": 1}
    assert by_actor["rep0"].reports_filed == 2
    state = ActorState()
    state.update(T0, T0 + 60, by_actor["u9"])
    assert state.features(T0 + 60)["reporters_24h"] == 4


def test_activity_from_several_partitions_merges_the_same_in_any_order() -> None:
    parts = []
    for p in range(3):
        collector = ActivityCollector(f"content-events:{p}")
        for i in range(p * 10, p * 10 + 10):
            text = SPAM.format(n=i)
            collector.add(content(i, T0 + i, target_id=f"t{i}", text=text), T0, signature(text))
        parts += [a.activity for a in collector.close(T0 + 60)]
    merged = []
    for order in itertools.permutations(parts):
        total = Activity()
        for part in order:
            total.merge(part)
        merged.append(total)
    assert all(m == merged[0] for m in merged)
    assert merged[0].events == 30 and len(merged[0].texts) == 8


def test_state_stays_bounded_whatever_the_actor_does() -> None:
    state = ActorState()
    for w in range(200):
        start = T0 + 60 * w
        activity = Activity(
            events=64,
            times=[start + i for i in range(64)],
            kinds={"message": 64},
            surfaces={"messenger": 64},
            targeted=64,
            targets=[f"t{w}-{i}" for i in range(64)],
            texts=[(f"e{w}-{i}", signature(SPAM.format(n=i)) or b"") for i in range(8)],
            linked=64,
            domains=[f"d{w}-{i}.example" for i in range(8)],
            reporters=[f"r{w}-{i}" for i in range(32)],
            reasons={f"reason{w}": 1},
        )
        state.update(start, start + 60, activity)
    assert state.recent_targets is not None
    assert len(array("I", state.recent_targets)) == RECENT_TARGETS
    assert state.reasons is not None and len(state.reasons) <= 4
    size = sys.getsizeof(state) + sum(
        sys.getsizeof(getattr(state, name)) for name in ActorState.__slots__
    )
    assert size < 2048, size


# -- the population model -----------------------------------------------------------------
def trained(model: str = "quantile", n: int = 3000, seed: int = 1) -> ActorModel:
    rng = random.Random(seed)
    m = ActorModel(model=model, warmup=300, learn_every=1, seed=seed)
    for _ in range(n):
        m.step(ordinary(rng))
    return m


SPAMMER = {
    "events_10m": 140.0,
    "events_24h": 150.0,
    "gap_cv": 1.0,
    "new_targets_10m": 131.0,
    "new_target_share": 0.95,
    "dup_share": 0.97,
    "link_share": 0.9,
    "new_domains_1h": 1.0,
    "age_days": 2.0,
    "reporters_24h": 0.0,
    "reports_filed_1h": 0.0,
    "message_share": 1.0,
    "share_share": 0.0,
    "comment_share": 0.0,
}


def test_a_mass_messaging_spammer_is_flagged_and_explained() -> None:
    verdict = trained().step(dict(SPAMMER))
    assert verdict is not None and verdict.flagged
    named = [d.feature for d in verdict.drivers]
    assert {"dup_share", "new_targets_10m"} <= set(named)
    top = verdict.drivers[0]
    assert top.value > top.p99 > top.median


def test_a_busy_but_ordinary_account_is_not_flagged() -> None:
    busy = {**ordinary(random.Random(5)), "events_10m": 60.0, "events_24h": 900.0}
    model = trained()
    assert busy["events_10m"] >= model.min_events and model.n >= model.warmup
    verdict = model.step(busy)  # learn_every=1: every actor is scored
    assert verdict is not None and verdict.indicators == ()
    # Its volume alone lies beyond the population's range; with no abuse indicator to
    # corroborate it, it is not flagged.
    assert verdict.score >= verdict.threshold
    assert not verdict.flagged


def test_nothing_is_flagged_during_warm_up() -> None:
    model = ActorModel(warmup=10_000, learn_every=1)
    rng = random.Random(2)
    for _ in range(500):
        model.step(ordinary(rng))
    verdict = model.step(dict(SPAMMER))
    assert verdict is not None and not verdict.flagged


def test_flagged_actors_are_not_learned() -> None:
    model = trained()
    before = model.n
    verdict = model.step(dict(SPAMMER))
    assert verdict is not None and verdict.flagged and model.n == before


@pytest.mark.parametrize("kind", ["quantile", "hst", "svm"])
def test_every_candidate_model_survives_a_checkpoint_and_resumes_identically(kind: str) -> None:
    model = trained(kind, n=600)
    twin = codec.decode(codec.encode(model))
    rng_a, rng_b = random.Random(9), random.Random(9)
    for _ in range(200):
        a, b = model.step(ordinary(rng_a)), twin.step(ordinary(rng_b))
        assert (a and a.score) == (b and b.score)


def test_an_unknown_model_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown actor model"):
        ActorModel(model="magic")


# -- stage 2 ---------------------------------------------------------------------------------
def population_windows(
    rng: random.Random, minutes: int, actors: int = 300
) -> list[list[ActorPartial]]:
    """Ordinary actors posting now and then: each window, a random third of them once."""
    out = []
    for m in range(minutes):
        start = T0 + 60 * m
        partials = []
        for a in rng.sample(range(actors), actors // 3):
            activity = Activity(
                events=1,
                times=[start + rng.uniform(0, 59)],
                kinds={"post": 1},
                surfaces={"feed": 1},
                texts=[(f"e{m}-{a}", signature(" ".join(rng.sample(WORDS, 8))) or b"")],
                created_at=T0 - 400 * 86400,
            )
            partials.append(ActorPartial("content-events:0", f"u{a}", start, activity))
        out.append(partials)
    return out


def spam_activity(start: float, i: int) -> Activity:
    return Activity(
        events=14,
        times=[start + 4 * k for k in range(14)],
        kinds={"message": 14},
        surfaces={"messenger": 14},
        targeted=14,
        targets=sorted(f"t{i}-{k}" for k in range(14)),
        texts=[(f"s{i}-{k}", signature(SPAM.format(n=k)) or b"") for k in range(8)],
        linked=14,
        domains=["gift-drop.top"],
        created_at=start - 2 * 86400,
    )


def spammer_among_ordinary_actors() -> list[Alert]:
    processor = ActorProcessor(ActorConfig(warmup=200, cooldown_s=600.0))
    rng = random.Random(4)
    alerts = []
    for m, partials in enumerate(population_windows(rng, 120)):
        start = T0 + 60 * m
        for partial in partials:
            processor.add_partial(partial)
        if 90 <= m < 100:
            spam = ActorPartial("content-events:1", "spammer", start, spam_activity(start, m))
            processor.add_partial(spam)
        alerts += processor.close(T0, start + 60).alerts
    return alerts


def test_a_spammer_among_ordinary_actors_raises_one_explained_alert_then_resolves() -> None:
    alerts = spammer_among_ordinary_actors()
    mine = [a for a in alerts if a.entity_id == "spammer"]
    assert next(a.status for a in mine) == "firing" and mine[-1].status == "resolved"
    assert all(a.entity_type == "actor" and a.detector == "actor_anomaly" for a in mine)
    assert len({a.alert_id for a in mine}) == 1
    first = mine[0]
    assert {"dup_share", "link_share"} <= set(first.evidence["indicators"])
    assert {"dup_share", "link_share"} & {d["feature"] for d in first.evidence["top_features"]}
    assert first.summary.startswith("Account spammer, 2 days old, sent ")
    assert "distinct new recipients in 10 min" in first.summary
    assert "near-identical text" in first.summary
    assert not [a for a in alerts if a.entity_id != "spammer"], "ordinary actors stay quiet"


def messaging(rng: random.Random, start: float, i: int, created_at: float) -> Activity:
    """Thirty messages to thirty accounts in a minute, at random times: nothing else unusual."""
    return Activity(
        events=30,
        times=sorted(start + rng.uniform(0, 59) for _ in range(30)),
        kinds={"message": 30},
        surfaces={"messenger": 30},
        targeted=30,
        targets=sorted(f"t{i}-{k}" for k in range(30)),
        created_at=created_at,
    )


@pytest.mark.parametrize(
    "begins_m,age,flagged",
    [(0, "old", False), (40, "old", True), (2, "created after the start", True)],
)
def test_first_contacts_count_once_the_worker_has_watched_long_enough(
    begins_m: int, age: str, flagged: bool
) -> None:
    """An account writing to many accounts at once: to a worker that has just started, all
    its contacts are new however often it wrote to them before, so they count as first ones
    only after `CONTACT_HISTORY_S` of watching, or for an account created since."""
    processor = ActorProcessor(ActorConfig(warmup=20, cooldown_s=600.0))
    created = T0 - 400 * 86400 if age == "old" else T0 + 60
    rng = random.Random(9)
    alerts = []
    for m, partials in enumerate(population_windows(rng, 60)):
        start = T0 + 60 * m
        if begins_m <= m < begins_m + 10:
            activity = messaging(rng, start, m, created)
            partials.append(ActorPartial("content-events:1", "sender", start, activity))
        for partial in partials:
            processor.add_partial(partial)
        alerts += processor.close(T0, start + 60).alerts
    firing = [a for a in alerts if a.entity_id == "sender" and a.status == "firing"]
    assert bool(firing) == flagged
    if flagged:
        found = firing[0].evidence["indicators"]  # new contacts, and nothing else
        assert "new_targets_10m" in found and set(found) <= {"new_targets_10m", "new_targets_1h"}
        assert firing[0].ts >= T0 + 60 * begins_m
    assert not [a for a in alerts if a.entity_id != "sender"], "ordinary actors stay quiet"


def test_the_processor_judges_each_actor_as_the_model_judges_its_features() -> None:
    """The processor makes features only for actors past a gate or in the learning sample;
    its verdicts, and what the model learns, are those of `step` on every actor's features."""
    config = ActorConfig(warmup=50, cooldown_s=600.0)
    processor = ActorProcessor(config)
    model = ActorModel(warmup=50, min_events=config.min_events, seed=config.seed)
    states: dict[str, ActorState] = {}
    scores, expected = [], []
    rng = random.Random(8)
    for m, partials in enumerate(population_windows(rng, 90, actors=240)):
        start = T0 + 60 * m
        busy = [  # past the ten-minute gate; past the hourly one only, twice
            ActorPartial("c:1", f"busy{i}", start, Activity(
                events=n, times=[start + 5 * k for k in range(n)], kinds={"post": n}))
            for i, n in enumerate((6, 2 * (m % 5 == 0), int(m % 3 == 0)))
            if n
        ]  # fmt: skip
        spam = [ActorPartial("c:1", "spammer", start, spam_activity(start, m))] if m > 60 else []
        for partial in [*partials, *busy, *spam]:
            processor.add_partial(partial)
        scores += processor.close(T0, start + 60).scores
        for partial in sorted([*partials, *busy, *spam], key=lambda p: p.actor):
            state = states.setdefault(partial.actor, ActorState())
            state.update(start, start + 60, partial.activity)
            verdict = model.step(state.features(start + 60))
            if verdict is not None:
                expected.append(verdict.score)
    assert len(expected) > 1000 and max(expected) > model.threshold.get()
    assert scores == expected
    assert (processor.model.n, processor.model.skipped) == (model.n, model.skipped)
    assert processor.model.threshold.get() == model.threshold.get()


def test_partials_are_idempotent_per_source_and_late_ones_are_counted() -> None:
    processor = ActorProcessor(ActorConfig(warmup=0))
    partial = ActorPartial("content-events:0", "u1", T0, Activity(events=1, times=[T0 + 1]))
    assert processor.add_partial(partial) == 0
    assert processor.add_partial(partial) == 0  # the same source again: ignored
    processor.close(T0, T0 + 60)
    assert processor.actors["u1"].events_total == 1
    assert processor.add_partial(ActorPartial("content-events:1", "u1", T0, Activity())) == 1


def test_idle_actors_expire_after_the_ttl_of_event_time() -> None:
    processor = ActorProcessor(ActorConfig(warmup=0, ttl_s=600.0))
    one = Activity(events=1, times=[T0 + 1])
    processor.add_partial(ActorPartial("c:0", "idle", T0, one))
    expired = {}
    for m in range(15):
        start = T0 + 60 * m
        activity = Activity(events=1, times=[start + 1])
        processor.add_partial(ActorPartial("c:0", "busy", start, activity))
        closed = processor.close(T0, start + 60)
        expired[m] = closed.expired
        assert closed.evicted == 0
        # idle was last active in the window ending at T0 + 60
        assert ("idle" in processor.actors) == (start + 60 - (T0 + 60) <= 600)
    assert expired == {m: int(m == 11) for m in range(15)}
    assert list(processor.actors) == ["busy"]


def test_an_actor_with_an_open_episode_never_expires() -> None:
    processor = ActorProcessor(ActorConfig(warmup=200, cooldown_s=600.0, ttl_s=120.0))
    rng = random.Random(4)
    alerts = []
    was_open = 0
    for m, partials in enumerate(population_windows(rng, 120)):
        start = T0 + 60 * m
        for partial in partials:
            processor.add_partial(partial)
        if 90 <= m < 100:
            spam = ActorPartial("content-events:1", "spammer", start, spam_activity(start, m))
            processor.add_partial(spam)
        closed = processor.close(T0, start + 60)
        alerts += [a for a in closed.alerts if a.entity_id == "spammer"]
        if "spammer" in processor.open:
            was_open += 1
            assert "spammer" in processor.actors
    # flagged from minute 90, open until ten quiet minutes after minute 99: far beyond the ttl
    assert was_open > 10
    assert alerts[0].status == "firing" and alerts[-1].status == "resolved"
    assert "spammer" not in processor.actors, "once resolved, it expires like any other"


def test_the_cap_evicts_the_least_recently_active_and_keeps_a_regular() -> None:
    processor = ActorProcessor(ActorConfig(warmup=0, max_actors=5))
    evicted = 0
    for m in range(20):
        start = T0 + 60 * m
        for actor in ("regular", f"n{m:02d}"):
            activity = Activity(events=1, times=[start + 1])
            processor.add_partial(ActorPartial("c:0", actor, start, activity))
        closed = processor.close(T0, start + 60)
        evicted += closed.evicted
        assert closed.expired == 0 and len(processor) <= 5
    assert evicted == 16  # n00 to n15
    assert list(processor.actors) == ["n16", "n17", "n18", "n19", "regular"]


def test_the_documented_actor_alert_has_the_fields_the_detector_writes() -> None:
    text = (Path(__file__).parents[2] / "docs" / "contract.md").read_text()
    body = re.search(r"<!-- example: actor-alert -->\n```json\n(.*?)```", text, re.S)
    assert body is not None
    example = orjson.loads(body.group(1))
    alert = spammer_among_ordinary_actors()[0].to_record(emitted_at=0.0)
    assert set(example) == set(alert)
    assert set(example["evidence"]) == set(alert["evidence"])
    assert set(example["evidence"]["features"]) == set(alert["evidence"]["features"])
    assert {d["feature"] for d in example["evidence"]["top_features"]} <= set(FEATURES)
