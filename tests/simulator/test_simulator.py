"""The traffic simulator: reproducible, on the wire contract, realistic, and its attacks show."""

from __future__ import annotations

import itertools
import statistics
import time
from collections import Counter, defaultdict
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest

from detectors.actor_features import domain_of
from detectors.events import ContentEvent, Event, ReportEvent, parse_event, parse_rfc3339
from detectors.signals import content_signals, report_signals
from detectors.text import signature, similarity
from simulator.core import SimConfig, generate, truth, write_files
from simulator.organic import diurnal

HOUR = 3600.0
DAY = 86400.0

# Three hours with an attack every half hour: each scenario once, then a second spam wave.
SMALL = SimConfig(
    duration_s=3 * HOUR,
    rate=2.0,
    actors=3000,
    first_attack_s=1800.0,
    attack_every_s=1800.0,
    duplicate_ratio=0.01,
    actor_scenarios=(),  # the volume attacks alone; the others are tested below
    group_scenarios=(),
)


@cache
def events_of(config: SimConfig) -> list[tuple[str, dict[str, Any]]]:
    return list(generate(config))


@cache
def parsed(config: SimConfig) -> list[Event]:
    """The events of `config` as the worker sees them, duplicates dropped."""
    seen: set[str] = set()
    out: list[Event] = []
    for topic, value in events_of(config):
        if value["event_id"] not in seen:
            seen.add(value["event_id"])
            out.append(parse_event(topic, orjson.dumps(value)))
    return out


def per_minute(config: SimConfig) -> dict[str, Counter[int]]:
    """signal -> minute offset from start -> events counted."""
    counts: dict[str, Counter[int]] = defaultdict(Counter)
    for event in parsed(config):
        if isinstance(event, ContentEvent):
            signals = content_signals(event)
        else:
            assert isinstance(event, ReportEvent)
            signals = report_signals(event)
        minute = int((event.ts - config.start) // 60)
        for signal in signals:
            counts[signal][minute] += 1
    return counts


def test_same_seed_same_bytes_and_different_seed_different() -> None:
    config = SimConfig(duration_s=HOUR, rate=2.0, actors=1000, first_attack_s=600.0)
    first = [orjson.dumps(e) for e in generate(config)]
    assert first == [orjson.dumps(e) for e in generate(config)]
    assert truth(config) == truth(config)
    other = SimConfig(duration_s=HOUR, rate=2.0, actors=1000, first_attack_s=600.0, seed=8)
    assert first != [orjson.dumps(e) for e in generate(other)]
    assert truth(config) != truth(other)


def test_every_event_meets_the_contract() -> None:
    for topic, value in events_of(SMALL):
        assert topic in ("content-events", "report-events")
        parse_event(topic, orjson.dumps(value))


def test_time_order_ids_and_duplicates() -> None:
    first: dict[str, dict[str, Any]] = {}
    last_ts = 0.0
    duplicates = 0
    for _, value in events_of(SMALL):
        known = first.get(value["event_id"])
        if known is not None:
            assert value == known  # a retry repeats the event verbatim
            duplicates += 1
            continue
        first[value["event_id"]] = value
        ts = parse_rfc3339(value["ts"])
        assert ts >= last_ts
        last_ts = ts
    assert SMALL.start <= last_ts < SMALL.start + SMALL.duration_s
    total = len(events_of(SMALL))
    assert 0.5 * SMALL.duplicate_ratio * total < duplicates < 2 * SMALL.duplicate_ratio * total
    content_ids = [v["content_id"] for v in first.values() if "content_id" in v]
    assert len(content_ids) == len(set(content_ids))


def test_duplicates_follow_shortly() -> None:
    """About `duplicate_ratio` of the events are sent once more, verbatim, a few events later."""
    first: dict[str, tuple[int, dict[str, Any]]] = {}
    gaps = []
    for i, (_, value) in enumerate(events_of(SMALL)):
        seen = first.get(value["event_id"])
        if seen is None:
            first[value["event_id"]] = (i, value)
            continue
        assert value == seen[1]
        gaps.append(i - seen[0])
    assert len(gaps) == pytest.approx(SMALL.duplicate_ratio * len(first), rel=0.5)
    assert all(0 < gap <= 60 for gap in gaps)
    again = Counter(value["event_id"] for _, value in events_of(SMALL))
    assert max(again.values()) == 2


def test_no_duplicates_when_disabled() -> None:
    config = SimConfig(duration_s=HOUR, rate=2.0, actors=1000, duplicate_ratio=0.0)
    ids = [v["event_id"] for _, v in generate(config)]
    assert len(ids) == len(set(ids))


def test_truth_records() -> None:
    records = truth(SMALL)
    assert [r["kind"] for r in records] == [
        "spam_wave",
        "report_brigade",
        "surface_surge",
        "harassment_burst",
        "spam_wave",
    ]
    assert [r["scenario_id"] for r in records][-1] == "spam_wave-2"
    end_of_run = SMALL.start + SMALL.duration_s
    for record in records:
        assert set(record) == {
            "scenario_id",
            "kind",
            "start",
            "end",
            "actors",
            "targets",
            "signals",
        }
        start, end = parse_rfc3339(record["start"]), parse_rfc3339(record["end"])
        assert record["start"].endswith("Z") and record["end"].endswith("Z")
        assert SMALL.start <= start < end <= end_of_run
        assert record["actors"] and record["signals"]
        assert all(isinstance(x, str) and x for x in record["actors"] + record["targets"])
    brigade = records[1]
    assert len(brigade["targets"]) == 1
    assert 40 <= len(brigade["actors"]) <= 80
    assert f"reports.target:{brigade['targets'][0]}" in brigade["signals"]
    harassment = records[3]
    assert 20 <= len(harassment["actors"]) <= 40
    assert f"content.target:{harassment['targets'][0]}" in harassment["signals"]
    assert 40 <= len(records[0]["actors"]) <= 80


@pytest.mark.parametrize(
    "config",
    [
        SimConfig(duration_s=2 * HOUR, first_attack_s=5000.0, attack_every_s=900.0),
        SimConfig(duration_s=2 * HOUR, first_attack_s=600.0),
        SimConfig(duration_s=5 * HOUR, first_attack_s=1200.0, attack_every_s=100.0),
        SimConfig(duration_s=HOUR, first_attack_s=2 * HOUR),
    ],
)
def test_attacks_stay_inside_the_run(config: SimConfig) -> None:
    end_of_run = config.start + config.duration_s
    records = truth(config)
    for record in records:
        assert parse_rfc3339(record["end"]) <= end_of_run
    if config.first_attack_s >= config.duration_s:
        assert records == []
    if config.attack_every_s is None and records:
        kinds = (*config.scenarios, *config.actor_scenarios, *config.group_scenarios)
        assert len(records) <= len(kinds)


def test_attacks_do_not_overlap() -> None:
    config = SimConfig(
        duration_s=3 * HOUR,
        first_attack_s=600.0,
        attack_every_s=20 * 60.0,
        actor_scenarios=(),
        group_scenarios=(),  # decoys such as a meme overlap attacks by design
    )
    records = truth(config)
    assert len(records) == 8
    for a, b in itertools.pairwise(records):
        assert parse_rfc3339(a["end"]) <= parse_rfc3339(b["start"])


def test_diurnal_profile() -> None:
    assert 0.25 < diurnal(4 * HOUR) < 0.35 < 1.5 < diurnal(20 * HOUR) < 1.7
    day = sum(diurnal(m * 60.0) for m in range(1440)) / 1440
    assert abs(day - 1.0) < 1e-6

    config = SimConfig(rate=0.5, actors=2000, scenarios=(), actor_scenarios=(), group_scenarios=())
    minutes: Counter[int] = Counter()
    for topic, value in generate(config):
        if topic == "content-events":
            minutes[int((parse_rfc3339(value["ts"]) - config.start) // 60)] += 1
    night = statistics.mean(minutes[m] for m in range(180, 300))  # 03:00-05:00
    evening = statistics.mean(minutes[m] for m in range(1140, 1260))  # 19:00-21:00
    assert night < 0.35 * evening
    assert 0.9 * 0.5 * DAY < sum(minutes.values()) < 1.1 * 0.5 * DAY
    assert len({minutes[m] for m in range(1140, 1160)}) > 5  # Poisson noise, not a smooth curve


def test_organic_traffic_looks_real() -> None:
    config = SimConfig(
        duration_s=2 * HOUR,
        rate=3.0,
        actors=5000,
        scenarios=(),
        actor_scenarios=(),
        group_scenarios=(),
    )
    content = [e for e in parsed(config) if isinstance(e, ContentEvent)]
    reports = [e for e in parsed(config) if isinstance(e, ReportEvent)]
    surfaces = Counter(e.surface for e in content)
    share = {s: n / len(content) for s, n in surfaces.items()}
    assert share["feed"] > share["groups"] > share["marketplace"]
    assert share["messenger"] > share["marketplace"] > 0.02
    for event in content:
        assert event.kind in ("post", "comment", "message", "share")
        if event.surface == "messenger":
            assert event.kind == "message"
        assert (event.target_id is not None) == (event.kind in ("message", "comment"))
        assert event.target_id != event.actor_id
        assert event.text is not None and 3 <= len(event.text.split()) <= 25
        assert event.actor_created_at is not None and event.actor_created_at < event.ts
        assert event.attrs is not None and set(event.attrs) == {"country", "device_hash"}
    assert len({e.text for e in content}) > 0.99 * len(content)
    linked = [e for e in content if e.links]
    assert 0.05 < len(linked) / len(content) < 0.3
    assert len({link.split("/")[2] for e in linked for link in e.links or ()}) > 10

    young = sum(1 for e in content if e.ts - (e.actor_created_at or 0) < 7 * DAY)
    assert 0.01 < young / len(content) < 0.04

    # Heavy-tailed activity: the busiest 1% of accounts write a large share of the content.
    per_actor = sorted(Counter(e.actor_id for e in content).values(), reverse=True)
    assert sum(per_actor[: config.actors // 100]) > 0.15 * len(content)
    assert per_actor[0] < 0.02 * len(content)

    assert 0.015 < len(reports) / len(content) < 0.025
    reasons = Counter(e.reason for e in reports).most_common()
    assert reasons[0][0] == "spam" and len(reasons) >= 6
    targets = Counter(e.target_actor_id for e in reports)
    assert targets.most_common(1)[0][1] >= 5  # a few accounts draw repeated reports
    assert len(targets) > len(reports) / 3  # and many are reported once
    assert all(e.reporter_id != e.target_actor_id for e in reports)


@pytest.mark.parametrize("start_hour", [0, 16])
def test_each_attack_lifts_its_signals(start_hour: int) -> None:
    config = SimConfig(
        start=SimConfig().start + start_hour * HOUR,
        duration_s=3 * HOUR,
        rate=2.0,
        actors=3000,
        first_attack_s=1800.0,
        attack_every_s=1800.0,
        actor_scenarios=(),
        group_scenarios=(),
    )
    counts = per_minute(config)
    records = truth(config)
    windows = [
        (
            int((parse_rfc3339(r["start"]) - config.start) // 60),
            int(-(-(parse_rfc3339(r["end"]) - config.start) // 60)),
        )
        for r in records
    ]
    for record, (first, end) in zip(records, windows, strict=True):
        busy = {m for lo, hi in windows for m in range(lo, hi)}
        before = [m for m in range(max(0, first - 60), first) if m not in busy]
        assert len(before) >= 20
        for signal in record["signals"]:
            baseline = statistics.median(counts[signal][m] for m in before)
            inside = statistics.mean(counts[signal][m] for m in range(first, end))
            lift = max(3.0, 0.25 * baseline, 3.0 * baseline**0.5)
            assert inside >= baseline + lift, (record["scenario_id"], signal, baseline, inside)


def test_attack_scale_multiplies_volume() -> None:
    def spam(scale: float) -> int:
        config = SimConfig(
            duration_s=HOUR,
            rate=2.0,
            actors=1000,
            scenarios=("spam_wave",),
            first_attack_s=600.0,
            attack_scale=scale,
        )
        actors = set(truth(config)[0]["actors"])
        return sum(1 for _, v in generate(config) if v.get("actor_id") in actors)

    assert 1.6 < spam(2.0) / spam(1.0) < 2.4


def test_spam_is_near_duplicate_link_posts_by_new_accounts() -> None:
    record = truth(SMALL)[0]
    actors = set(record["actors"])
    posts = [e for e in parsed(SMALL) if isinstance(e, ContentEvent) and e.actor_id in actors]
    assert len({e.actor_id for e in posts}) == len(actors)
    domains = Counter(link.split("/")[2] for e in posts for link in e.links or ())
    assert len(domains) == 1 and sum(domains.values()) == len(posts)
    assert len({e.text for e in posts}) > 0.5 * len(posts)  # varied ...
    skeletons = Counter(
        " ".join(w for w in (e.text or "").split()[:4] if w.isalpha()) for e in posts
    )
    assert skeletons.most_common(1)[0][1] > 0.1 * len(posts)  # ... but one template
    for e in posts:
        assert (e.kind, e.surface) == ("post", "feed")
        assert e.actor_created_at is not None and 0 < e.ts - e.actor_created_at < DAY


def test_write_files(tmp_path: Path) -> None:
    config = SimConfig(duration_s=HOUR, rate=1.0, actors=500, first_attack_s=900.0)
    path = tmp_path / "events.jsonl"
    events, scenarios = write_files(path, config)
    lines = path.read_bytes().splitlines()
    assert events == len(lines) == len(list(generate(config)))
    assert [orjson.loads(line) for line in lines] == [
        {"topic": t, "value": v} for t, v in generate(config)
    ]
    truth_lines = Path(f"{path}.truth.jsonl").read_bytes().splitlines()
    assert scenarios == len(truth_lines) == len(truth(config)) > 0
    assert [orjson.loads(line) for line in truth_lines] == truth(config)
    events_again, _ = write_files(str(path), config)
    assert events_again == events and path.read_bytes().splitlines() == lines


def test_generation_is_lazy() -> None:
    config = SimConfig(duration_s=7 * DAY, first_attack_s=600.0, attack_every_s=1200.0)
    began = time.monotonic()
    stream = generate(config)
    first = [next(stream) for _ in range(1000)]
    assert time.monotonic() - began < 5
    assert first[0][1]["ts"].startswith("2026-11-01T00:00")


def test_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError, match="unknown scenarios"):
        SimConfig(scenarios=("meteor_strike",))
    with pytest.raises(ValueError):
        SimConfig(rate=0.0)
    with pytest.raises(ValueError):
        SimConfig(attack_every_s=0.0)


ACTOR_KINDS = (
    "bot_ring",
    "compromised_account",
    "fake_engagement",
    "mass_messaging",
    "popular_account",
    "new_account",
)
ACTORS_ONLY = SimConfig(
    duration_s=4 * HOUR,
    rate=1.0,
    actors=2000,
    scenarios=(),
    actor_scenarios=ACTOR_KINDS,
    group_scenarios=(),
    first_attack_s=600.0,
    attack_every_s=1800.0,
)


@cache
def actor_run() -> tuple[list[dict[str, Any]], dict[str, list[ContentEvent]]]:
    by_actor: dict[str, list[ContentEvent]] = defaultdict(list)
    for topic, value in generate(ACTORS_ONLY):
        event = parse_event(topic, orjson.dumps(value))
        if isinstance(event, ContentEvent):
            by_actor[event.actor_id].append(event)
    return truth(ACTORS_ONLY), by_actor


def test_actor_scenarios_name_their_accounts_and_mark_the_decoys() -> None:
    records, by_actor = actor_run()
    assert [r["kind"] for r in records][: len(ACTOR_KINDS)] == list(ACTOR_KINDS)
    for record in records:
        assert record["actors"] and all(by_actor[a] for a in record["actors"])
        assert record.get("decoy", False) == (record["kind"] in {"popular_account", "new_account"})


def events_in(record: dict[str, Any], events: list[ContentEvent]) -> list[ContentEvent]:
    start, end = parse_rfc3339(record["start"]), parse_rfc3339(record["end"])
    return [e for e in events if start <= e.ts < end]


def test_each_actor_scenario_behaves_as_described() -> None:
    records, by_actor = actor_run()
    kinds = {r["kind"]: r for r in records}
    # A bot ring posts on a fixed schedule: the gaps barely vary.
    member = kinds["bot_ring"]["actors"][0]
    times = sorted(e.ts for e in events_in(kinds["bot_ring"], by_actor[member]))
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) >= 15 and statistics.pstdev(gaps) / statistics.mean(gaps) < 0.05
    # A taken-over old account and a mass messager send links to many distinct accounts.
    for kind in ("compromised_account", "mass_messaging"):
        [actor] = kinds[kind]["actors"]
        sent = events_in(kinds[kind], by_actor[actor])
        assert len({e.target_id for e in sent}) > 0.9 * len(sent) > 50
        assert all(e.links and e.kind == "message" for e in sent)
    [old] = kinds["compromised_account"]["actors"]
    first = by_actor[old][0]
    assert first.actor_created_at is not None and first.ts - first.actor_created_at > 365 * DAY
    # A fake-engagement ring comments on and shares a few accounts' content.
    ring = events_in(kinds["fake_engagement"], by_actor[kinds["fake_engagement"]["actors"][0]])
    assert {e.target_id for e in ring} <= set(kinds["fake_engagement"]["targets"])
    assert {e.kind for e in ring} <= {"comment", "share"}
    # The decoys: a busy creator replying to the same friends, a new but ordinary account.
    [creator] = kinds["popular_account"]["actors"]
    busy = events_in(kinds["popular_account"], by_actor[creator])
    assert len(busy) > 60 and len({e.text for e in busy}) > 0.9 * len(busy)
    assert len({e.target_id for e in busy if e.target_id}) <= 15
    [newcomer] = kinds["new_account"]["actors"]
    joined = by_actor[newcomer][0]
    assert joined.actor_created_at is not None and joined.ts - joined.actor_created_at < 2 * DAY


GROUP_KINDS = (
    "copy_paste_campaign",
    "link_campaign",
    "brigade_ring",
    "organic_meme",
    "viral_report_wave",
)
GROUPS_ONLY = SimConfig(
    duration_s=6 * HOUR,
    rate=1.0,
    actors=2000,
    scenarios=(),
    actor_scenarios=(),
    group_scenarios=GROUP_KINDS,
    first_attack_s=600.0,
    attack_every_s=3600.0,
)


def test_each_group_scenario_behaves_as_described() -> None:
    records = {r["kind"]: r for r in truth(GROUPS_ONLY)}
    assert list(records) == list(GROUP_KINDS)
    events = parsed(GROUPS_ONLY)

    def of(kind: str) -> list[Event]:
        record = records[kind]
        start, end = parse_rfc3339(record["start"]), parse_rfc3339(record["end"])
        actors = set(record["actors"])
        return [
            e
            for e in events
            if start <= e.ts < end
            and (e.actor_id if isinstance(e, ContentEvent) else e.reporter_id) in actors  # type: ignore[union-attr]
        ]

    # Copy-paste: every member pastes a time or two, near-identical text, no links (some
    # members are established accounts that also post their own things meanwhile).
    posts = [e for e in of("copy_paste_campaign") if isinstance(e, ContentEvent)]
    sigs = [signature(e.text or "") or bytes(32) for e in posts]
    pasted_text = max(sigs[:5], key=lambda a: sum(similarity(a, b) >= 0.4 for b in sigs))
    pasted = [e for e, sig in zip(posts, sigs, strict=True) if similarity(pasted_text, sig) >= 0.4]
    per_actor = Counter(e.actor_id for e in pasted)
    assert len(per_actor) == len(records["copy_paste_campaign"]["actors"]) >= 30
    assert max(per_actor.values()) <= 2 and len(pasted) >= 0.8 * len(posts)
    assert not any(e.links for e in pasted)
    # A link campaign: one new domain, each account its own words.
    shared = [e for e in of("link_campaign") if isinstance(e, ContentEvent)]
    assert len({domain_of(e.links[0]) for e in shared if e.links}) == 1
    assert len({e.text for e in shared}) == len(shared) and len(shared) >= 25
    # A brigade ring: the same young reporters on three targets, one reason and a few
    # minutes each.
    ring = [e for e in of("brigade_ring") if isinstance(e, ReportEvent)]
    assert {e.target_actor_id for e in ring} == set(records["brigade_ring"]["targets"])
    for target in records["brigade_ring"]["targets"]:
        hits = [e for e in ring if e.target_actor_id == target]
        assert len({e.reason for e in hits}) == 1
        assert max(e.ts for e in hits) - min(e.ts for e in hits) <= 180
    assert all(e.reporter_created_at and e.ts - e.reporter_created_at <= 21 * DAY for e in ring)
    # The decoys: a meme spread over hours, and a report wave of many reasons and ages.
    meme = records["organic_meme"]
    assert meme["decoy"] and len(meme["actors"]) >= 120
    posted = sorted(e.ts for e in of("organic_meme"))  # the start of its 12 hours, here
    assert posted and max(Counter(int(t // 1800) for t in posted).values()) < 24
    wave = records["viral_report_wave"]
    assert wave["decoy"] and {"detector": "volume_spike"} in wave["allowed"]
    reports = [e for e in of("viral_report_wave") if isinstance(e, ReportEvent)]
    assert len({e.reason for e in reports}) >= 3 and len(reports) >= 60
    ages = [e.ts - e.reporter_created_at for e in reports if e.reporter_created_at]
    assert 0.1 < sum(age < 30 * DAY for age in ages) / len(ages) < 0.5
