"""Accumulated evidence: distinct accounts turning to one account over an hour
(detectors/accumulate.py), alone and through both stages."""

from __future__ import annotations

import random
import zlib

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import codec
from detectors.accumulate import Accumulator, FirstContacts
from detectors.events import ContentEvent, Event, ReportEvent, format_rfc3339
from detectors.pipeline import DetectionConfig
from detectors.spike import Verdict
from detectors.stages import Ingest, OfflinePipeline

T0 = 1_795_478_400.0  # 2026-11-24T00:00:00Z


def message(i: int, ts: float, author: str, target: str) -> ContentEvent:
    return ContentEvent(
        event_id=f"m{i}",
        ts=format_rfc3339(ts),
        actor_id=author,
        kind="message",
        surface="messenger",
        target_id=target,
        text=f"message {i}",
    )


def report(i: int, ts: float, reporter: str, target: str) -> ReportEvent:
    return ReportEvent(
        event_id=f"r{i}",
        ts=format_rfc3339(ts),
        reporter_id=reporter,
        target_actor_id=target,
        reason="harassment",
    )


# -- stage 1: first contacts ---------------------------------------------------------------


def test_an_author_counts_once_an_hour_per_target() -> None:
    contacts = FirstContacts(horizon_s=3600.0)
    seen = [
        contacts.signals(message(0, T0, "friend", "u1")),
        contacts.signals(message(1, T0 + 60, "friend", "u1")),  # the same pair: not again
        contacts.signals(message(2, T0 + 120, "friend", "u2")),  # another target
        contacts.signals(message(3, T0 + 180, "other", "u1")),  # another author
        contacts.signals(message(4, T0 + 200, "u1", "u1")),  # to oneself: no contact
        contacts.signals(report(5, T0 + 240, "friend", "u1")),  # a report is its own kind
        contacts.signals(message(6, T0 + 3660, "friend", "u1")),  # over an hour after: again
    ]
    assert seen == [
        ("content.contacts:u1",),
        (),
        ("content.contacts:u2",),
        ("content.contacts:u1",),
        (),
        ("reports.reporters:u1",),
        ("content.contacts:u1",),
    ]


def test_a_chatty_pair_keeps_itself_known_and_old_pairs_are_forgotten() -> None:
    contacts = FirstContacts(horizon_s=600.0, max_pairs=3)
    # A message every 5 minutes for an hour: the pair never goes quiet for the horizon.
    assert [contacts.signals(message(i, T0 + 300 * i, "a", "b")) for i in range(12)] == [
        ("content.contacts:b",)
    ] + [()] * 11
    for i in range(5):
        contacts.signals(message(100 + i, T0 + 3600 + i, f"x{i}", "b"))
    assert len(contacts.seen) == 3  # bounded; the pair (a, b) was the least recently seen
    assert contacts.signals(message(200, T0 + 3610, "a", "b")) == ("content.contacts:b",)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 7), st.integers(0, 3)), min_size=1, max_size=60))
def test_split_over_partitions_by_author_the_counts_add_up_to_distinct_authors(
    pairs: list[tuple[int, int]],
) -> None:
    """Authors in partitions of their own, as the input topics are keyed: the first contacts
    of all partitions, within the horizon, are the distinct (author, target) pairs."""
    partitions = [FirstContacts(horizon_s=3600.0) for _ in range(3)]
    counted = 0
    for i, (author, target) in enumerate(pairs):
        event = message(i, T0 + i, f"a{author}", f"t{target}")
        counted += len(partitions[author % 3].signals(event))
    assert counted == len({(a, t) for a, t in pairs if f"a{a}" != f"t{t}"})


# -- stage 2: the accumulator --------------------------------------------------------------


def steady(detector: Accumulator, start: int, windows: int, rate: float, rng: random.Random):
    """Poisson counts at `rate` a window; the verdicts."""
    out = []
    for w in range(start, start + windows):
        count = sum(rng.random() < rate / 8 for _ in range(8))  # binomial, mean `rate`
        out.append(detector.step(w * 60.0, count))
    return out


def test_a_quiet_account_is_flagged_once_the_hour_holds_min_total() -> None:
    detector = Accumulator(min_total=15, ratio=4.0, prior_windows=1440)  # quiet for a day
    verdicts = [detector.step(w * 60.0, 1 if w % 3 == 0 else 0) for w in range(60)]
    flagged = [w for w, v in enumerate(verdicts) if v.flagged]
    assert flagged and flagged[0] == 42  # the 15th account, in the 43rd minute
    assert max(v.observed for v in verdicts[:42]) == 14
    assert verdicts[42].upper == 15 and verdicts[42].score >= detector.threshold


def test_a_popular_account_needs_ratio_times_its_usual_hour() -> None:
    rng = random.Random(3)
    # As the processor makes it at a cold start: no prior, a horizon learnt before it flags.
    detector = Accumulator(min_total=15, ratio=4.0, warmup=120, prior_windows=0)
    usual = steady(detector, 0, 600, 0.5, rng)  # 30 new people an hour, for ten hours
    assert not any(v.flagged for v in usual)
    assert 25 < usual[-1].expected < 35
    viral = steady(detector, 600, 60, 1.5, rng)  # three times as many: not four
    assert not any(v.flagged for v in viral)
    piled = steady(detector, 660, 60, 3.0, rng)  # six times as many
    assert any(v.flagged for v in piled)


def test_the_hour_judged_never_raises_its_own_baseline() -> None:
    """A slow stream that lasts: flagged as long as it lasts (up to `max_flagged_s`), not
    learnt as the account's new normal after an hour."""
    detector = Accumulator(min_total=15, ratio=4.0, prior_windows=60, max_flagged_s=4 * 3600)
    verdicts = [detector.step(w * 60.0, 1 if w % 2 else 0) for w in range(180)]
    assert all(v.flagged for v in verdicts[40:180])
    assert verdicts[-1].expected == 0.0
    # Flagged for longer than `max_flagged_s`: the level becomes the norm and the flag ends.
    verdicts = [detector.step(w * 60.0, 1 if w % 2 else 0) for w in range(180, 720)]
    assert not verdicts[-1].flagged and verdicts[-1].expected > 20


def test_the_river_interface_scores_as_step_judges_while_nothing_is_flagged() -> None:
    a, b = (Accumulator(min_total=500, prior_windows=0) for _ in range(2))
    for w in range(200):
        count = w % 4
        score = a.score_one({"t": w * 60.0, "count": count})
        assert score == b.step(w * 60.0, count).score
        a.learn_one({"t": w * 60.0, "count": count})
    assert a.mean == b.mean and a.total == b.total and a.mean > 1
    assert "horizon_s=3600." in repr(a)


def test_a_stream_too_slow_for_the_hour_is_flagged_over_the_hours() -> None:
    def verdicts(long_horizon_s: float) -> list[Verdict]:
        detector = Accumulator(min_total=15, prior_windows=1440, long_horizon_s=long_horizon_s)
        return [detector.step(w * 60.0, 1 if w % 7 == 0 else 0) for w in range(400)]

    assert not any(v.flagged for v in verdicts(0.0))  # never more than 9 in an hour
    hours = verdicts(3 * 3600.0)
    flagged = [w for w, v in enumerate(hours) if v.flagged]
    assert flagged and flagged[0] == 98  # the 15th account, in the 99th minute
    assert hours[98].observed == 15 and hours[98].upper == 15
    # The sum is over the last three hours, to the block: never what came before them.
    for w in flagged:
        assert sum(1 for c in range(w - 179, w + 1) if c % 7 == 0) >= hours[w].observed >= 15


def test_what_the_hour_flagged_is_not_flagged_again_over_the_hours() -> None:
    detector = Accumulator(min_total=15, prior_windows=1440, long_horizon_s=3 * 3600.0)
    verdicts = [detector.step(w * 60.0, 1 if w < 30 else 0) for w in range(300)]
    flagged = [w for w, v in enumerate(verdicts) if v.flagged]
    assert flagged[0] == 14 and flagged[-1] < 90  # the hour's, not the three hours'
    assert detector.judged_s == 3600.0


def test_the_hours_need_ratio_times_the_usual_hours_too() -> None:
    rng = random.Random(5)
    # As the processor makes it at a cold start: no prior, a horizon learnt before it flags.
    detector = Accumulator(min_total=15, warmup=120, prior_windows=0, long_horizon_s=10800)
    assert not any(v.flagged for v in steady(detector, 0, 900, 0.1, rng))  # 6 an hour
    assert detector.long is not None and detector.long.judge(0).upper > 4 * 18
    assert not any(v.flagged for v in steady(detector, 900, 180, 0.25, rng))  # 2.5 times
    # A popular account (120 new people an hour) met at a cold start: its hours are learnt
    # before they are judged.
    popular = Accumulator(min_total=15, warmup=120, prior_windows=0, long_horizon_s=10800)
    assert not any(v.flagged for v in steady(popular, 0, 900, 2.0, random.Random(1)))


# -- both stages ---------------------------------------------------------------------------


def day(pile_on: bool, chatty: bool) -> list[Event]:
    """Three hours of background messages among 400 accounts (each message to a new
    target), and in the third hour a slow pile-on (40 accounts, one message each, about one
    a minute, to one account) or a chatty pair (a message a minute for the hour)."""
    rng = random.Random(7)
    events: list[Event] = []
    for i in range(3 * 3600 // 2):
        ts = T0 + 2 * i + rng.random()
        author, target = rng.sample(range(400), 2)
        events.append(message(i, ts, f"u{author}", f"u{target}"))
    start = T0 + 2 * 3600
    if pile_on:
        for j in range(40):
            events.append(message(10_000 + j, start + 90 * j + 5, f"p{j}", "victim"))
    if chatty:
        for j in range(60):
            events.append(message(20_000 + j, start + 60 * j + 7, "friend", "victim"))
    return sorted(events, key=lambda e: e.ts)


def alerts_of(events: list[Event]) -> list[dict]:
    config = DetectionConfig(warmup_windows=10)
    pipeline = OfflinePipeline(config, {"content-events": {0}, "report-events": set()})
    out = []
    for i in range(0, len(events), 500):
        out += pipeline.feed("content-events", 0, events[i : i + 500])
    return [a.to_record(emitted_at=0.0) for a in out]


def test_a_slow_pile_on_is_found_within_the_hour_and_a_chatty_friend_is_not() -> None:
    alerts = alerts_of(day(pile_on=True, chatty=False))
    found = [a for a in alerts if a["entity"]["id"] == "content.contacts:victim"]
    assert found, "no alert on the victim's first contacts"
    first = found[0]
    assert first["detector"] == "volume_spike" and first["status"] == "firing"
    assert first["evidence"]["horizon_seconds"] == 3600.0
    assert first["evidence"]["observed"] >= 15
    # Found before the pile-on's end (40 accounts over an hour), and about its 15th account.
    assert first["ts"] < format_rfc3339(T0 + 3 * 3600)
    assert "Accounts addressing account victim" in first["summary"]
    # No minute holds enough for the per-minute detector.
    assert not any(a["entity"]["id"] == "content.target:victim" for a in alerts)

    quiet = alerts_of(day(pile_on=False, chatty=True))
    assert not any("victim" in a["entity"]["id"] for a in quiet)
    assert not any(a["entity"]["id"].startswith("content.contacts:") for a in quiet)


def test_a_pile_on_too_slow_for_the_hour_is_found_over_the_hours() -> None:
    """Twenty accounts, one every 7.5 minutes from the third hour: never more than eight in
    an hour."""
    rng = random.Random(7)
    events: list[Event] = []
    for i in range(6 * 3600 // 2):
        author, target = rng.sample(range(400), 2)
        events.append(message(i, T0 + 2 * i + rng.random(), f"u{author}", f"u{target}"))
    start = T0 + 2 * 3600
    events += [message(10_000 + j, start + 450 * j + 5, f"p{j}", "victim") for j in range(20)]
    alerts = alerts_of(sorted(events, key=lambda e: e.ts))
    found = [a for a in alerts if a["entity"]["id"] == "content.contacts:victim"]
    assert found and found[0]["status"] == "firing"
    assert found[0]["evidence"]["horizon_seconds"] == 10800.0
    assert found[0]["evidence"]["observed"] == 15
    assert "15 in the 180 min" in found[0]["summary"]
    assert not any(a["entity"]["id"].startswith("content.contacts:u") for a in alerts)


def test_an_ingest_checkpoint_of_the_layout_before_first_contacts_resumes() -> None:
    config = DetectionConfig()
    unit = Ingest(config, "content-events", 0, 1)
    unit.process([message(i, T0 + i, f"a{i}", "t") for i in range(5)])
    spec = codec.TYPES["Ingest"]
    values = {name: getattr(unit, name) for name in spec.fields}
    tree = ["Ingest", 1, *codec.Encoder().items([values[f] for f in spec.layouts[1]])]
    resumed = codec.decode(zlib.compress(msgspec.msgpack.encode(tree)))
    assert isinstance(resumed.contacts, FirstContacts) and not resumed.contacts.seen
    assert resumed.counter.seen == unit.counter.seen
    later = resumed.process([message(9, T0 + 9, "a1", "t")])  # counted as new once
    assert later.outcomes["counted"] == 1
    assert resumed.contacts.signals(message(10, T0 + 10, "a1", "t")) == ()
    again = codec.decode(codec.encode(resumed))  # the current version round-trips as it is
    assert list(again.contacts.seen) == list(resumed.contacts.seen)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 3), min_size=1, max_size=200),
    st.integers(0, 3000),
    st.integers(0, 60),
    st.sampled_from([0.0, 7200.0]),
)
def test_idle_windows_at_once_are_as_many_empty_steps(
    counts: list[int], idle: int, prior: int, long_horizon_s: float
) -> None:
    one, many = (
        Accumulator(
            min_total=3, memory_s=600 * 60.0, prior_windows=prior, long_horizon_s=long_horizon_s
        )
        for _ in "ab"
    )
    for w, count in enumerate(counts):
        one.step(w * 60.0, count)
        many.step(w * 60.0, count)
    for w in range(idle):
        one.step(w * 60.0, 0)
    many.skip(idle)
    assert same_state(one, many)
    if long_horizon_s:
        assert one.long is not None and many.long is not None
        assert one.partial == many.partial and same_state(one.long, many.long)
        (a, b) = (x.step(0.0, 2) for x in (one, many))
        assert (a.flagged, a.observed, one.judged_s) == (b.flagged, b.observed, many.judged_s)
        assert abs(a.upper - b.upper) <= 1e-9 * a.upper


def test_idle_windows_at_once_flag_a_sum_at_the_line_as_empty_steps_do() -> None:
    """A long quiet history takes the line down to `min_total`: the sum at it, carried into
    idle windows, is flagged in them whether they are stepped one by one or at once."""
    one, many = (Accumulator(min_total=3, ratio=1, prior_windows=200) for _ in "ab")
    for w, count in enumerate([0] * 100 + [1, 1, 1]):
        one.step(w * 60.0, count)
        many.step(w * 60.0, count)
    assert one.line() == 3
    for w in range(5):
        one.step(w * 60.0, 0)
    many.skip(5)
    assert one.last_flag == one.n and same_state(one, many)


def same_state(one: Accumulator, many: Accumulator) -> bool:
    """The same state, but for the mean, learnt in closed form over many empty windows."""
    return (
        (one.n, one.total, one.ring, one.at, one.last_flag, one.run, one.weight)
        == (many.n, many.total, many.ring, many.at, many.last_flag, many.run, many.weight)
        and abs(one.mean - many.mean) <= 1e-9 * max(1.0, one.mean)
    )  # fmt: skip


def test_checkpoints_of_the_layouts_before_the_longer_span_resume() -> None:
    detector = Accumulator(min_total=15, prior_windows=1440)
    for w in range(30):
        detector.step(w * 60.0, 1 if w % 3 == 0 else 0)
    old = codec.decode(zlib.compress(msgspec.msgpack.encode(layout(detector, 1))))
    assert old.long is None and old.judged_s == 3600.0 and old.block == 10
    assert [old.step(w * 60.0, 1) for w in range(30, 40)] == [
        detector.step(w * 60.0, 1) for w in range(30, 40)
    ]  # the hour alone, as before
    config = codec.decode(zlib.compress(msgspec.msgpack.encode(layout(DetectionConfig(), 2))))
    assert config == DetectionConfig() and config.accumulate_long_horizon_s == 10800.0


def layout(obj: object, version: int) -> list[object]:
    """`obj` as a checkpoint of an earlier layout wrote it."""
    spec = codec.BY_CLASS[type(obj)]
    values = {name: getattr(obj, name) for name in spec.fields}
    return [spec.name, version, *codec.Encoder().items([values[f] for f in spec.layouts[version]])]
