"""Coordinated behaviour: clustering of hand-built texts, link campaigns, brigade scoring, and
the same alerts however the keys are split over indexes."""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors import synchrony
from detectors.alerts import Alert
from detectors.coordination import (
    BANDS,
    COHERENT,
    COMPARED,
    MIN_SHARED,
    SAMPLE_CHARS,
    Candidate,
    CoordinationCollector,
    CoordinationConfig,
    CoordinationIndex,
    Coordinator,
    Row,
    _Group,
    bands,
)
from detectors.events import ContentEvent, Event, ReportEvent, format_rfc3339
from detectors.text import PERMUTATIONS, shingles, signature, similarity

T0 = 1795478400.0  # 2026-11-24T00:00Z
DAY = 86400.0
SPAM = "Vote NO on measure {n}, they are lying to you about the {w} plan, share this now"
WORDS = [
    "coffee",
    "morning",
    "garden",
    "dog",
    "kids",
    "school",
    "party",
    "trip",
    "beach",
    "dinner",
    "lunch",
    "movie",
    "music",
    "game",
    "weather",
    "rain",
    "sun",
    "city",
    "park",
    "book",
    "friend",
    "family",
    "birthday",
    "work",
    "week",
    "weekend",
    "happy",
    "tired",
]


def post(i: int, ts: float, actor: str, text: str, age_days: float = 400.0, **kw: Any) -> Event:
    return ContentEvent(
        event_id=f"e{i:06d}",
        ts=format_rfc3339(ts),
        actor_id=actor,
        kind=kw.pop("kind", "post"),
        text=text,
        actor_created_at=format_rfc3339(ts - age_days * DAY),
        **kw,
    )


def report(i: int, ts: float, reporter: str, target: str, reason: str, age_days: float) -> Event:
    return ReportEvent(
        event_id=f"r{i:06d}",
        ts=format_rfc3339(ts),
        reporter_id=reporter,
        target_actor_id=target,
        reason=reason,
        reporter_created_at=format_rfc3339(ts - age_days * DAY),
    )


def organic(rng: random.Random) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(6, 12)))


class Topology:
    """Stage 1 on `sources` input partitions, `partitions` indexes and one coordinator, fed in
    event order and closed a window at a time, as the pipeline runs them."""

    def __init__(self, config: CoordinationConfig, partitions: int = 1, sources: int = 1) -> None:
        self.config = config
        self.collectors = [CoordinationCollector(f"in:{s}") for s in range(sources)]
        self.indexes = [CoordinationIndex(config) for _ in range(partitions)]
        self.coordinator = Coordinator(config, sources=partitions)
        self.alerts: list[Alert] = []
        self.open_until = T0

    def run(self, events: list[Event], until: float) -> list[Alert]:
        for n, event in enumerate(sorted(events, key=lambda e: (e.ts, e.event_id))):
            self._close_before(event.ts)
            window = event.ts // 60 * 60
            text = event.text if isinstance(event, ContentEvent) else None
            sig = signature(text) if text else None
            self.collectors[n % len(self.collectors)].add(event, window, sig)
        self._close_before(until)
        return self.alerts

    def _close_before(self, ts: float) -> None:
        while self.open_until + 60 <= ts:
            self.open_until += 60
            for collector in self.collectors:
                for start, row in collector.close(self.open_until):
                    for i, keys in row.owners(len(self.indexes)).items():
                        self.indexes[i].add(start, row, keys)
            for i, index in enumerate(self.indexes):
                found = index.close(T0, self.open_until)
                closed = self.coordinator.add(f"index:{i}", found.candidates, index.closed_until)
                self.alerts += closed.alerts


def campaign_events(
    rng: random.Random, accounts: int, start: float, span: float, age: float = 5.0, first: int = 0
) -> list[Event]:
    events = []
    for k in range(accounts):
        text = SPAM.format(n=rng.randint(10, 99), w=rng.choice(("tax", "school", "road")))
        if rng.random() < 0.5:
            text = text.upper() + " !!"
        ts = start + rng.uniform(0, span)
        events.append(post(first + k, ts, f"c{k}", text, age_days=age))
    return events


def background(rng: random.Random, n: int, start: float, span: float) -> list[Event]:
    return [
        post(500_000 + i, start + rng.uniform(0, span), f"o{i % 400}", organic(rng))
        for i in range(n)
    ]


def test_bands_split_the_signature_and_variants_share_buckets() -> None:
    a = signature(SPAM.format(n=12, w="tax"))
    b = signature(SPAM.format(n=87, w="road").upper())
    c = signature("completely different words about a dog in the park this morning")
    assert a is not None and b is not None and c is not None
    assert len(bands(a)) == BANDS
    assert set(bands(a)) & set(bands(b))  # near-duplicates meet in some bucket
    assert not set(bands(a)) & set(bands(c))


def test_a_copy_paste_campaign_is_one_alert_that_grows_and_resolves() -> None:
    rng = random.Random(1)
    events = campaign_events(rng, 40, T0 + 3600, 900) + background(rng, 3000, T0, 4 * 3600)
    alerts = Topology(CoordinationConfig()).run(events, T0 + 4 * 3600)
    campaigns = [a for a in alerts if a.detector == "content_campaign"]
    assert {a.alert_id for a in campaigns} == {campaigns[0].alert_id}  # one campaign
    statuses = [a.status for a in campaigns]
    assert statuses[0] == "firing" and statuses[-1] == "resolved" and "update" in statuses
    everyone = {f"c{k}" for k in range(40)}
    assert set(campaigns[-1].evidence["members"]) == everyone  # and no organic account
    last = [a for a in campaigns if a.status == "update"][-1]
    assert set(last.evidence["members"]) <= everyone
    assert len(last.evidence["members"]) >= 1.5 * len(campaigns[0].evidence["members"])
    assert "young_accounts" in last.evidence["indicators"]
    assert last.evidence["sample_texts"] and last.evidence["sample_event_ids"]
    assert last.entity_type == "campaign" and last.entity_id.startswith("cmp-")
    assert "posted near-identical text" in last.summary


def test_organic_texts_and_a_slow_meme_do_not_alert() -> None:
    rng = random.Random(2)
    meme = "nobody: my cat at 5am knocking everything off the table"
    slow = [
        post(900_000 + k, T0 + 600 + k * 240.0, f"m{k}", meme + rng.choice(("", " lol")))
        for k in range(60)  # one every 4 minutes, by old accounts, for 4 hours
    ]
    alerts = Topology(CoordinationConfig()).run(
        background(rng, 6000, T0, 5 * 3600) + slow, T0 + 5 * 3600
    )
    assert alerts == []


def test_a_popular_meme_with_no_sign_of_coordination_does_not_alert() -> None:
    rng = random.Random(9)
    meme = "me pretending to understand the group chat inside joke"
    fast = [
        post(800_000 + k, T0 + 600 + rng.uniform(0, 1800), f"m{k}", meme + rng.choice(("", " 😂")))
        for k in range(30)  # thirty old accounts in half an hour, no links: a fast meme
    ]
    assert Topology(CoordinationConfig()).run(fast, T0 + 4 * 3600) == []
    young = [post(900_000 + k, e.ts, f"y{k}", meme, age_days=3) for k, e in enumerate(fast)]
    alerts = Topology(CoordinationConfig()).run(young, T0 + 4 * 3600)
    assert alerts and alerts[0].evidence["indicators"] == ["young_accounts"]
    farm = [
        post(700_000 + k, e.ts, f"f{k}", meme, attrs={"device_hash": f"d{k % 4}"})
        for k, e in enumerate(fast)
    ]  # old accounts, but four phones between thirty of them
    alerts = Topology(CoordinationConfig()).run(farm, T0 + 4 * 3600)
    assert alerts and alerts[0].evidence["indicators"] == ["shared_devices"]
    assert alerts[0].evidence["accounts_sharing_devices"] >= 8


def test_sharing_one_band_is_not_enough_without_similar_texts() -> None:
    config = CoordinationConfig(min_actors=3)
    near = CoordinationIndex(config)
    chance = CoordinationIndex(config)
    variants = [SPAM.format(n=n, w="tax") for n in (11, 22, 33)]
    unrelated = ["rain coffee morning walk", "dog school party tonight", "beach movie game night"]
    for k, (a, b) in enumerate(zip(variants, unrelated, strict=True)):
        # Three texts in one bucket: near-duplicates, or unrelated ones by a chance collision.
        for index, text in ((near, a), (chance, b)):
            sig = signature(text)
            assert sig is not None
            index.add(
                T0, Row("text", ("0:00000000",), T0 + k, f"a{k}", f"e{k}", None, text, (), sig)
            )
    assert [c.actors for c in near.close(T0, T0 + 60).candidates] == [("a0", "a1", "a2")]
    assert chance.close(T0, T0 + 60).candidates == []


def test_short_texts_are_kept_when_they_are_one_text_not_when_they_share_common_words() -> None:
    """Short texts of common words are as similar as variants of one text, by their share of
    words and pairs: "going with the" and "with the brand" share three of seven. What tells
    them apart is how many they share; one short text posted again and again is kept."""
    config = CoordinationConfig(min_actors=3)
    chance, repeated, varied = (CoordinationIndex(config) for _ in range(3))
    for index, texts in (
        (chance, ["going with the", "with the brand", "going with the", "off with the"]),
        (repeated, ["check my profile"] * 4),
        (varied, ["free gift card now", "free gift card here", "free gift card now"]),
    ):
        for k, text in enumerate(texts):
            sig = signature(text)
            assert sig is not None
            row = Row("text", ("0:00000000",), T0 + k, f"a{k}", f"e{k}", None, text, (), sig)
            index.add(T0, row)
    assert similarity(*map(signature, ("going with the", "with the brand"))) >= COHERENT
    assert chance.close(T0, T0 + 60).candidates == []
    assert [c.actors for c in repeated.close(T0, T0 + 60).candidates] == [("a0", "a1", "a2", "a3")]
    assert [c.actors for c in varied.close(T0, T0 + 60).candidates] == [("a0", "a1", "a2")]


def reference_coherent(rows: list[Row]) -> list[Row]:
    """The rows `_coherent` keeps, as first written: similarity pair by pair."""
    common = [sig for sig, _ in Counter(row.sig for row in rows).most_common(COMPARED)]
    reference = max(common, key=lambda a: (sum(similarity(a, b) for b in common), a))
    sample = {row.sig: row.detail for row in rows}
    near = set()
    for sig in sample:
        a, b = shingles(sample[reference]), shingles(sample[sig])
        j = similarity(reference, sig)
        if len(sample[reference]) < SAMPLE_CHARS and len(sample[sig]) < SAMPLE_CHARS:
            shared = len(a & b)
        else:
            shared = j * (len(a) + len(b)) / (1 + j)
        if j >= COHERENT and shared >= MIN_SHARED:
            near.add(sig)
    return [row for row in rows if row.sig in near]


@given(st.lists(st.integers(0, 40), min_size=1, max_size=60), st.integers(0, 2**32))
def test_a_bucket_keeps_the_texts_the_pairwise_comparison_keeps(
    picks: list[int], seed: int
) -> None:
    # Signatures from a pool of variants of a few texts: repeats, near copies, strangers.
    rng = random.Random(seed)
    bases = [bytes(rng.randrange(4) for _ in range(PERMUTATIONS)) for _ in range(3)]
    pool = [
        bytes(b if rng.random() < 0.3 * (n % 4) else rng.randrange(4) for b in bases[n % 3])
        for n in range(41)
    ]
    # Each signature's text sample: from 3 to 8 words, so that some are too short to keep,
    # and some cut (then the signatures are compared).
    words = [" ".join(f"w{i}" for i in range(3 + n % 6)) for n in range(41)]
    words = [w if n % 5 else (w + " x" * SAMPLE_CHARS)[:SAMPLE_CHARS] for n, w in enumerate(words)]
    rows = [
        Row("text", ("0:00000000",), T0 + k, f"a{k}", f"e{k}", None, words[n], (), pool[n])
        for k, n in enumerate(picks)
    ]
    kept = CoordinationIndex(CoordinationConfig())._coherent(rows)
    assert kept == reference_coherent(rows)


def reference_overlapping(coordinator: Coordinator, c: Candidate, kind: str) -> str | None:
    """The campaign `_overlapping` finds, as first written: every open group in turn."""
    cfg = coordinator.config
    best, most = None, max(3.0, cfg.member_overlap * len(c.actors))
    slots = synchrony.elements(c.schedule, cfg.synchrony_slot_s)
    for ident in sorted(coordinator.groups):
        group = coordinator.groups[ident]
        if group.kind != kind:
            continue
        shared = sum(1 for actor in c.actors if actor in group.members)
        if shared >= most:
            best, most = ident, shared + 0.5
        elif best is None and slots and coordinator._same_schedule(group, slots):
            best = ident
    return best


def candidate(
    kind: str, key: str, actors: list[str], schedule: tuple[float, ...] = ()
) -> Candidate:
    actors_ = tuple(sorted(set(actors)))
    return Candidate(
        kind, key, T0, actors_, (), 0, 0, 0, len(actors_), T0, T0, 0.0, (), (), {}, {}, schedule
    )


@given(st.data())
def test_a_candidate_joins_the_campaign_the_walk_over_every_group_finds(
    data: st.DataObject,
) -> None:
    accounts = [f"u{i}" for i in range(12)]
    schedules = [(), (T0, T0 + 3600.0), (T0 + 60.0, T0 + 7200.0)]
    coordinator = Coordinator(CoordinationConfig(), sources=1)
    for g in range(data.draw(st.integers(0, 8))):
        kind = data.draw(st.sampled_from(["campaign", "synchronised", "brigade"]))
        group = coordinator.groups[f"g{g}"] = _Group(f"g{g}", kind, T0)
        members = data.draw(st.lists(st.sampled_from(accounts), min_size=1, max_size=12))
        group.absorb(candidate("text", f"k{g}", members, data.draw(st.sampled_from(schedules))))
    kind = data.draw(st.sampled_from(["campaign", "synchronised"]))
    actors = data.draw(st.lists(st.sampled_from(accounts), min_size=1, max_size=12))
    c = candidate("text", "new", actors, data.draw(st.sampled_from(schedules)))
    found = coordinator._overlapping(c, kind, coordinator._joined())
    assert found == reference_overlapping(coordinator, c, kind)


def test_a_new_domain_shared_by_many_accounts_is_a_link_campaign() -> None:
    rng = random.Random(3)
    established = [
        post(i, T0 + rng.uniform(0, 7200), f"o{i % 300}", organic(rng), links=["https://news.example/a"])
        for i in range(600)
    ]  # fmt: skip
    fresh = [
        post(10_000 + k, T0 + 7200 + k * 15.0, f"l{k}", organic(rng),
             links=[f"https://brand-new{k % 1}.top/{k}"])
        for k in range(30)
    ]  # fmt: skip
    alerts = Topology(CoordinationConfig()).run(established + fresh, T0 + 4 * 3600)
    firing = [a for a in alerts if a.status == "firing"]
    assert len(firing) == 1
    assert firing[0].evidence["new_domains"] == ["brand-new0.top"]
    assert firing[0].evidence["campaign_kind"] == "link"
    assert alerts[-1].alert_id == firing[0].alert_id and alerts[-1].status == "resolved"
    assert set(alerts[-1].evidence["members"]) == {f"l{k}" for k in range(30)}
    assert "news.example" not in str(firing[0].evidence)  # established: seen in the warm-up


def ring_reports(rng: random.Random, targets: list[str], start: float) -> list[Event]:
    events = []
    ring = [f"ring{k}" for k in range(20)]
    for t, target in enumerate(targets):
        for k, reporter in enumerate(ring):
            ts = start + t * 1200 + rng.uniform(0, 120)
            events.append(report(t * 100 + k, ts, reporter, target, "hate", age_days=3))
    return events


def test_a_reporter_ring_across_three_targets_is_a_coordinated_brigade() -> None:
    rng = random.Random(4)
    events = ring_reports(rng, ["t1", "t2", "t3"], T0 + 3600)
    alerts = Topology(CoordinationConfig()).run(events, T0 + 4 * 3600)
    brigades = [a for a in alerts if a.detector == "report_brigade" and a.status != "resolved"]
    assert {a.entity_id for a in brigades} == {"t1", "t2", "t3"}
    assert all(a.entity_type == "target" for a in brigades)
    assert all(a.evidence["pattern"] == "coordinated" for a in brigades)
    last = {a.entity_id: a for a in brigades}
    assert last["t3"].evidence["same_reporters_also_targeted"] == ["t1", "t2"]
    assert last["t2"].evidence["same_reporters_also_targeted"] == ["t1", "t3"]  # updated
    assert last["t3"].severity == "critical"
    assert "looks coordinated" in last["t3"].summary
    assert set(last["t1"].evidence["reporters"]) <= {f"ring{k}" for k in range(20)}


def test_an_organic_report_wave_is_told_apart_from_a_brigade() -> None:
    rng = random.Random(5)
    reasons = ("hate", "harassment", "violence", "other")
    wave = [
        report(k, T0 + 3600 + rng.expovariate(1 / 900), f"p{k}", "viral", rng.choice(reasons),
               age_days=rng.uniform(60, 3000))
        for k in range(80)
    ]  # fmt: skip
    small = [
        report(1000 + k, T0 + 3600 + k * 150.0, f"q{k}", "chronic", rng.choice(reasons), 500)
        for k in range(12)
    ]
    alerts = Topology(CoordinationConfig()).run(wave + small, T0 + 4 * 3600)
    firing = [a for a in alerts if a.status == "firing"]
    assert [a.entity_id for a in firing] == ["viral"]  # a dozen spread-out reports: no alert
    assert firing[0].severity == "info" and firing[0].evidence["pattern"] == "organic"
    assert "review the reported content" in firing[0].summary


@pytest.mark.parametrize("after_s", [0.0, 240.0, 3600.0])
def test_timing_is_tight_only_where_the_quiet_before_it_was_watched(after_s: float) -> None:
    """Twenty established accounts reporting one account for spam within two minutes: tight
    timing, and with one reason a brigade, once the index has watched long enough to have
    seen reports before them if there were any. When it started watching with them, they may
    be the middle of a steady stream of reports (a spammer's, say): not tight."""
    wave = [report(k, T0 + after_s + 6 * k, f"p{k}", "x", "spam", age_days=400) for k in range(20)]
    alerts = Topology(CoordinationConfig()).run(wave, T0 + 4 * 3600)
    firing = [a for a in alerts if a.status == "firing"]
    if after_s < CoordinationConfig().brigade_tight_s:
        assert firing == []  # one reason alone, from fewer than `organic_reporters`
    else:
        [alert] = firing
        assert alert.evidence["indicators"] == ["one_reason", "tight_timing"]
        assert alert.severity == "warning"


@pytest.mark.parametrize("partitions,sources", [(2, 1), (3, 2), (5, 3)])
def test_alerts_do_not_depend_on_how_keys_and_events_are_split(
    partitions: int, sources: int
) -> None:
    rng = random.Random(6)
    events = campaign_events(rng, 30, T0 + 1800, 600) + background(rng, 2000, T0, 3 * 3600)
    events += ring_reports(rng, ["t1", "t2"], T0 + 5400)
    one = Topology(CoordinationConfig()).run(events, T0 + 4 * 3600)
    many = Topology(CoordinationConfig(), partitions, sources).run(events, T0 + 4 * 3600)
    assert {a.detector for a in one} == {"content_campaign", "report_brigade"}
    assert many == one


def actor_alert(actor: str, status: str, ts: float) -> Alert:
    return Alert(f"id-{actor}", "actor_anomaly", status, "warning", "actor", actor, ts,
                 ts - 60, ts, 0.9, 0.5, f"Account {actor}", {})  # fmt: skip


def test_alerts_of_campaign_members_are_folded_into_the_campaign() -> None:
    rng = random.Random(7)
    topology = Topology(CoordinationConfig())
    events = campaign_events(rng, 20, T0 + 600, 300)
    topology.run(events, T0 + 1200)
    [campaign] = [a for a in topology.alerts if a.status == "firing"]
    coordinator = topology.coordinator
    now = coordinator.closed_until
    member = actor_alert("c3", "firing", now + 60)
    outsider = actor_alert("o1", "firing", now + 60)
    closed = coordinator.add("index:0", [], now + 60, [member, outsider])
    assert closed.alerts == [outsider] and closed.folded == 1
    resolved = actor_alert("c3", "resolved", now + 120)
    closed = coordinator.add("index:0", [], now + 120, [resolved])
    assert closed.alerts == [] and closed.folded == 1  # its whole episode stays folded
    group = coordinator.groups[campaign.entity_id]
    assert group.flagged == {"c3"}
    # A replay of the index sends the same windows again: the folded alert stays folded,
    # and the outsider's, published the first time, is not raised twice.
    closed = coordinator.add("index:0", [], now + 60, [member, outsider])
    assert closed.alerts == [] and closed.late == 2


def test_a_campaign_is_raised_before_the_actor_windows_close_and_their_alerts_still_fold() -> None:
    """A partition closes its index before its actor windows, the slower part of a close: a
    window's campaigns come as soon as every index has closed it, and its actor alerts are
    folded into them when every partition's actor windows have. The same alerts, in the same
    order, as with one clock for both, the campaign earlier."""
    rng = random.Random(7)
    topology = Topology(CoordinationConfig(), partitions=2)
    closes: list[tuple[str, list[Candidate], float]] = []

    class Recording(Coordinator):
        def add(self, source: str, candidates: Any, closed_until: float, *rest: Any) -> Any:
            closes.append((source, list(candidates), closed_until))
            return super().add(source, candidates, closed_until, *rest)

    topology.coordinator = Recording(CoordinationConfig(), sources=2)
    topology.run(campaign_events(rng, 20, T0 + 600, 300), T0 + 1200)
    [campaign] = [a for a in topology.alerts if a.status == "firing"]
    member, outsider = (
        actor_alert("c3", "firing", campaign.ts),
        actor_alert("o1", "firing", campaign.ts),
    )

    def replay(one_clock: bool) -> list[list[Alert]]:
        coordinator = Coordinator(CoordinationConfig(), sources=2)
        out, actors_until = [], -math.inf
        for source, candidates, until in closes:
            alerts = [member, outsider] if until == campaign.ts and source == "index:1" else []
            if one_clock:
                out.append(coordinator.add(source, candidates, until, alerts).alerts)
                continue
            if source == "index:0":
                actors_until = until - 60  # both actor windows one window behind the indexes
            out.append(coordinator.add(source, candidates, until, (), actors_until).alerts)
            if source == "index:1":  # then both partitions' actor windows close
                out.append(coordinator.add("index:0", (), until, (), until).alerts)
                out.append(coordinator.add("index:1", (), until, alerts, until).alerts)
        return out

    one, two = replay(one_clock=True), replay(one_clock=False)
    assert [a for alerts in two for a in alerts] == [a for alerts in one for a in alerts]
    assert [campaign.alert_id, outsider.alert_id] in [[a.alert_id for a in x] for x in one]
    assert [campaign.alert_id] in [[a.alert_id for a in x] for x in two], "before the actors"
    assert [outsider.alert_id] in [[a.alert_id for a in x] for x in two], "the member folded"


@pytest.mark.parametrize("name", ["campaign-alert", "brigade-alert"])
def test_the_documented_examples_have_the_fields_the_detectors_write(name: str) -> None:
    text = (Path(__file__).parents[2] / "docs" / "contract.md").read_text()
    body = re.search(rf"<!-- example: {name} -->\n```json\n(.*?)```", text, re.S)
    assert body is not None
    example = orjson.loads(body.group(1))
    rng = random.Random(8)
    if name == "campaign-alert":
        events = campaign_events(rng, 30, T0 + 600, 300)
    else:
        events = ring_reports(rng, ["t1", "t2"], T0 + 600)
    alerts = Topology(CoordinationConfig()).run(events, T0 + 3600)
    alert = next(a for a in alerts if a.status == "firing").to_record(emitted_at=0.0)
    assert (example["detector"], example["entity"]["type"]) == (
        alert["detector"],
        alert["entity"]["type"],
    )
    assert set(example) == set(alert)
    assert set(example["evidence"]) == set(alert["evidence"])


# -- memory limits, expiry and replays ---------------------------------------------------------
def report_row(n: int, ts: float, reporter: str, target: str) -> Row:
    return Row("report", (target,), ts, reporter, f"r{n:06d}", ts - 3 * DAY, "hate")


def test_a_key_keeps_its_latest_rows_up_to_twice_the_cap_and_proposes_from_the_latest() -> None:
    index = CoordinationIndex(CoordinationConfig(max_rows=5, min_reporters=3))
    n = 0
    for minute in range(10):
        start = T0 + 60 * minute
        for k in range(7):
            index.add(start, report_row(n, start + k, f"p{n}", "victim"))
            n += 1
        closed = index.close(T0, start + 60)
        held = index.rows("report:victim")
        assert 5 <= len(held) <= 10
        assert [row.event_id for row in held] == [f"r{i:06d}" for i in range(n - len(held), n)]
        [candidate] = closed.candidates
        assert candidate.events == 5
        assert candidate.actors == tuple(sorted(f"p{i}" for i in range(n - 5, n)))


def test_the_key_cap_evicts_the_least_recently_touched_and_keeps_a_busy_key() -> None:
    index = CoordinationIndex(CoordinationConfig(max_keys=3))
    evicted = 0
    n = 0
    for minute in range(8):
        start = T0 + 60 * minute
        for target in ("busy", f"t{minute}"):
            index.add(start, report_row(n, start + 1, f"p{n}", target))
            n += 1
        closed = index.close(T0, start + 60)
        evicted += closed.evicted
        assert len(index) <= 3
    # Each window busy is touched first, then a new key needs room: from the third window
    # on, the oldest of the others goes, t0 to t5.
    assert evicted == 6
    assert list(index.keys) == ["report:t6", "report:busy", "report:t7"]


def test_a_window_with_more_keys_than_the_cap_keeps_the_last_ones() -> None:
    index = CoordinationIndex(CoordinationConfig(max_keys=3, min_reporters=1))
    for k in range(5):
        index.add(T0, report_row(k, T0 + 1, f"p{k}", f"t{k}"))
    closed = index.close(T0, T0 + 60)
    assert closed.evicted == 2
    assert list(index.keys) == ["report:t2", "report:t3", "report:t4"]
    assert [c.key for c in closed.candidates] == ["t2", "t3", "t4"]


def test_remembered_domains_are_capped_keeping_the_most_recently_seen() -> None:
    index = CoordinationIndex(CoordinationConfig(max_keys=3))
    for minute, domain in enumerate(["a.top", "b.top", "c.top", "a.top", "d.top", "e.top"]):
        start = T0 + 60 * minute
        row = Row("link", (domain,), start + 1, f"u{minute}", f"e{minute}", None, "")
        index.add(start, row)
        index.close(T0, start + 60)
    # a.top, seen again in the fourth window, keeps the time it was first seen
    assert index.domains_seen == {"a.top": T0, "d.top": T0 + 240, "e.top": T0 + 300}
    assert list(index.domains_seen) == ["a.top", "d.top", "e.top"]


def brigade_on(target: str, start: float, first: int) -> list[Event]:
    """Twenty young accounts of one ring reporting `target` within two minutes."""
    return [
        report(first + k, start + 6 * k, f"ring{k}", target, "hate", age_days=3) for k in range(20)
    ]


@pytest.mark.parametrize("gap_h", [1.0, 2.5])
def test_brigades_are_compared_for_shared_reporters_only_within_the_lockstep_span(
    gap_h: float,
) -> None:
    config = CoordinationConfig()  # lockstep_s: two hours
    events = brigade_on("t1", T0 + 3600, 0) + brigade_on("t2", T0 + 3600 + gap_h * 3600, 100)
    topology = Topology(config)
    alerts = topology.run(events, T0 + 8 * 3600)
    [second] = [a for a in alerts if a.entity_id == "t2" and a.status == "firing"]
    within = gap_h * 3600 <= config.lockstep_s
    assert second.evidence["same_reporters_also_targeted"] == (["t1"] if within else [])
    assert ("same_reporters_other_targets" in second.evidence["indicators"]) == within
    # t1's reporters are dropped from the comparison when t2 comes after the span
    assert [t for _, t, _ in topology.coordinator.recent] == (["t1", "t2"] if within else ["t2"])


def test_near_identical_texts_linking_to_one_established_domain_show_a_shared_link() -> None:
    rng = random.Random(10)
    warm = [
        post(i, T0 + rng.uniform(0, 1800), f"o{i}", organic(rng), links=["https://shop.example/x"])
        for i in range(20)
    ]  # seen in the first hour: established, never a new domain
    promo = "Huge summer sale on garden furniture this week only, see the catalogue"
    spread = [
        post(1000 + k, T0 + 7200 + 75.0 * k, f"s{k}", promo, links=[f"https://shop.example/{k}"])
        for k in range(20)
    ]  # twenty old accounts, one every 75 s: under the pace of tight timing
    alerts = Topology(CoordinationConfig()).run(warm + spread, T0 + 5 * 3600)
    firing = [a for a in alerts if a.status == "firing"]
    assert [a.evidence["indicators"] for a in firing] == [["shared_link"]]
    assert firing[0].evidence["new_domains"] == []
    assert firing[0].evidence["shared_domains"] == {"shop.example": 12}
    plain = [post(1000 + k, e.ts, f"s{k}", promo) for k, e in enumerate(spread)]
    assert Topology(CoordinationConfig()).run(warm + plain, T0 + 5 * 3600) == []


def test_a_replay_of_closed_windows_is_late_everywhere_and_raises_nothing_again() -> None:
    config = CoordinationConfig()
    collector = CoordinationCollector("in:0")
    for event in brigade_on("victim", T0 + 3600, 0):
        collector.add(event, event.ts // 60 * 60, None)
    rows = collector.close(T0 + 3720)
    index = CoordinationIndex(config)
    coordinator = Coordinator(config, sources=1)
    assert sum(index.add(start, row) for start, row in rows) == 0
    found = index.close(T0, T0 + 3720)
    first = coordinator.add("index:0", found.candidates, index.closed_until)
    assert [(a.entity_id, a.status) for a in first.alerts] == [("victim", "firing")]
    assert first.late == 0 and found.candidates
    # The same rows and candidates again, as after a rebalance to a checkpoint before them.
    assert sum(index.add(start, row) for start, row in rows) == len(rows)
    again = index.close(T0, T0 + 3720)
    assert again.candidates == [] and again.windows == 0
    replayed = coordinator.add("index:0", found.candidates, index.closed_until)
    assert replayed.alerts == [] and replayed.late == len(found.candidates)


def test_an_open_window_holds_each_event_of_a_key_once_in_event_id_order() -> None:
    index = CoordinationIndex(CoordinationConfig(min_reporters=3))
    rows = [report_row(n, T0 + 10 - n, f"p{n}", "victim") for n in (3, 1, 2)]
    rows.append(report_row(4, T0 + 5, "p4", "other"))
    for _ in range(2):  # the same rows again before the window closes, as a replay sends them
        for row in rows:
            index.add(T0 - 60, row)  # a window before the first one closed: late
            index.add(T0, row)
    # A row of the same event with new values replaces the one held for that key.
    index.add(T0, report_row(2, T0 + 30, "p2", "victim"))
    closed = index.close(T0, T0 + 60)
    assert closed.late == 4
    assert [(row.event_id, row.ts) for row in index.rows("report:victim")] == [
        ("r000001", T0 + 9),
        ("r000002", T0 + 30),
        ("r000003", T0 + 7),
    ]
    assert [row.event_id for row in index.rows("report:other")] == ["r000004"]
    assert type(index.keys["report:other"]) is Row, "a key's one row, with no list"
    [candidate] = closed.candidates
    assert (candidate.key, candidate.events, candidate.last_ts) == ("victim", 3, T0 + 30)
