from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.evaluation import Report, format_report, score
from detectors.events import format_rfc3339

T0 = 1795514400.0  # 2026-11-24T10:00:00Z


def at(offset_s: float) -> str:
    return format_rfc3339(T0 + offset_s)


def alert(
    alert_id: str,
    start_s: float,
    end_s: float,
    *,
    entity: tuple[str, str] = ("signal", "reports.target:victim"),
    detector: str = "volume_spike",
    ts_s: float | None = None,
    members: list[str] | None = None,
    status: str = "firing",
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "schema_version": 1,
        "alert_id": alert_id,
        "detector": detector,
        "status": status,
        "severity": "warning",
        "entity": {"type": entity[0], "id": entity[1]},
        "ts": at(end_s if ts_s is None else ts_s),
        "window": {"start": at(start_s), "end": at(end_s)},
        "score": 9.0,
        "threshold": 6.0,
        "summary": "test alert",
        "evidence": {} if members is None else {"members": members},
        "emitted_at": at(end_s),
    }
    return record


def scenario(
    scenario_id: str = "s1",
    start_s: float = 0.0,
    end_s: float = 600.0,
    *,
    kind: str = "report_brigade",
    actors: tuple[str, ...] = ("r1", "r2"),
    targets: tuple[str, ...] = ("victim",),
    signals: tuple[str, ...] = ("reports.target:victim",),
) -> dict[str, Any]:
    return {
        "scenario_id": scenario_id,
        "kind": kind,
        "start": at(start_s),
        "end": at(end_s),
        "actors": list(actors),
        "targets": list(targets),
        "signals": list(signals),
    }


def detected(alerts: list[dict[str, Any]], truth: list[dict[str, Any]]) -> bool:
    report = score(alerts, truth)
    return report.scenarios[0].detected


# Overlap with [start, end + 5 min): alert windows are half-open.


def test_window_ending_exactly_at_start_does_not_overlap() -> None:
    assert not detected([alert("a", -60, 0)], [scenario()])


def test_window_ending_just_after_start_overlaps() -> None:
    assert detected([alert("a", -60, 1)], [scenario()])


def test_window_inside_scenario_overlaps() -> None:
    assert detected([alert("a", 60, 120)], [scenario()])


def test_window_spanning_scenario_overlaps() -> None:
    assert detected([alert("a", -3600, 3600)], [scenario()])


def test_window_in_grace_after_end_overlaps() -> None:
    assert detected([alert("a", 600 + 120, 600 + 180)], [scenario()])


def test_window_starting_just_before_grace_ends_overlaps() -> None:
    assert detected([alert("a", 600 + 299, 600 + 360)], [scenario()])


def test_window_starting_when_grace_ends_does_not_overlap() -> None:
    assert not detected([alert("a", 600 + 300, 600 + 360)], [scenario()])


def test_window_after_grace_does_not_overlap() -> None:
    assert not detected([alert("a", 3600, 3660)], [scenario()])


def test_window_before_start_does_not_overlap() -> None:
    assert not detected([alert("a", -3600, -60)], [scenario()])


def test_zero_length_window_is_an_instant() -> None:
    assert detected([alert("a", 0, 0)], [scenario()])
    assert not detected([alert("a", -1, -1)], [scenario()])
    assert not detected([alert("a", 900, 900)], [scenario()])


# Entity matching.


@pytest.mark.parametrize(
    ("entity", "expected"),
    [
        (("signal", "reports.target:victim"), True),
        (("signal", "reports"), False),
        (("actor", "r2"), True),
        (("actor", "bystander"), False),
        (("target", "victim"), True),
        (("target", "someone-else"), False),
        # The same id under the wrong type does not match.
        (("actor", "victim"), False),
        (("target", "r1"), False),
        (("signal", "victim"), False),
        (("unknown-type", "victim"), False),
        # A per-account series is about its account: it matches the scenario's targets.
        (("signal", "reports.reporters:victim"), True),
        (("signal", "content.contacts:victim"), True),
        (("signal", "content.target:victim"), True),
        (("signal", "content.contacts:r1"), False),  # an actor, not a target
        (("signal", "content.surface:victim"), False),  # not a per-account family
    ],
)
def test_entity_matching(entity: tuple[str, str], expected: bool) -> None:
    assert detected([alert("a", 60, 120, entity=entity)], [scenario()]) is expected


def test_campaign_matches_when_a_member_is_an_actor() -> None:
    member = alert("a", 60, 120, entity=("campaign", "c1"), members=["x", "r1"])
    assert detected([member], [scenario()])


def test_campaign_without_actor_members_does_not_match() -> None:
    strangers = alert("a", 60, 120, entity=("campaign", "c1"), members=["x", "y"])
    no_evidence = alert("b", 60, 120, entity=("campaign", "r1"))
    assert not detected([strangers, no_evidence], [scenario()])


def test_campaign_members_accumulate_over_updates() -> None:
    first = alert("a", 60, 120, entity=("campaign", "c1"), members=["x"])
    update = alert("a", 60, 180, entity=("campaign", "c1"), members=["x", "r2"], status="update")
    assert detected([first, update], [scenario()])


def test_campaign_member_outside_the_time_does_not_match() -> None:
    late = alert("a", 7200, 7260, entity=("campaign", "c1"), members=["r1"])
    assert not detected([late], [scenario()])


# Counting.


def test_alert_matching_no_scenario_is_a_false_positive() -> None:
    report = score([alert("a", 60, 120), alert("b", 60, 120, entity=("actor", "x"))], [scenario()])
    assert (report.alerts, report.true_positives, report.false_positives) == (2, 1, 1)
    assert report.precision == 0.5


def test_updates_of_one_alert_count_once() -> None:
    messages = [
        alert("a", 60, 120, ts_s=120),
        alert("a", 60, 600, ts_s=600, status="update"),
        alert("a", 60, 600, ts_s=1200, status="resolved"),
    ]
    report = score(messages, [scenario()])
    assert (report.alerts, report.true_positives, report.false_positives) == (1, 1, 0)
    assert report.detectors[0].alerts == 1
    assert report.scenarios[0].alerts == 1
    assert report.scenarios[0].time_to_detect_s == 120.0


def test_union_of_windows_can_reach_the_scenario() -> None:
    # Neither message alone overlaps; their union [-600, 1000) does.
    messages = [alert("a", -600, -300), alert("a", 960, 1000, status="update")]
    assert detected(messages, [scenario()])


def test_entity_of_the_first_message_counts() -> None:
    messages = [
        alert("a", 60, 120, entity=("actor", "nobody")),
        alert("a", 60, 180, entity=("actor", "r1"), status="update"),
    ]
    assert not detected(messages, [scenario()])


def test_scenario_detected_by_two_detectors() -> None:
    alerts = [
        alert("a", 60, 120, ts_s=180, detector="volume_spike"),
        alert("b", 0, 300, ts_s=90, detector="report_brigade", entity=("target", "victim")),
    ]
    report = score(alerts, [scenario()])
    s = report.scenarios[0]
    assert s.detected
    assert s.detectors == ("report_brigade", "volume_spike")
    assert s.alerts == 2
    assert s.time_to_detect_s == 90.0
    assert [d.detector for d in report.detectors] == ["report_brigade", "volume_spike"]
    assert all(d.true_positives == 1 and d.recall == 1.0 for d in report.detectors)


def test_one_alert_detecting_two_scenarios_is_one_true_positive() -> None:
    truth = [scenario("s1", 0, 600), scenario("s2", 300, 900)]
    report = score([alert("a", 400, 500)], truth)
    assert report.true_positives == 1
    assert [s.detected for s in report.scenarios] == [True, True]


def test_precision_and_recall_arithmetic() -> None:
    truth = [
        scenario("s1", 0, 600, kind="brigade", signals=("sig1",), actors=(), targets=()),
        scenario("s2", 7200, 7800, kind="brigade", signals=("sig2",), actors=(), targets=()),
        scenario("s3", 14400, 15000, kind="spam", signals=("sig3",), actors=(), targets=()),
        scenario("s4", 21600, 22200, kind="spam", signals=("sig4",), actors=(), targets=()),
    ]
    alerts = [
        # volume_spike: 3 alerts, 2 true (both on s1), 1 false; finds 1 of 4 scenarios.
        alert("v1", 60, 120, entity=("signal", "sig1")),
        alert("v2", 300, 360, entity=("signal", "sig1")),
        alert("v3", 30000, 30060, entity=("signal", "sig1")),
        # actor_anomaly: 4 alerts, 2 true (s2, s3), 2 false; finds 2 of 4.
        alert("x1", 7260, 7320, entity=("signal", "sig2"), detector="actor_anomaly"),
        alert("x2", 14460, 14520, entity=("signal", "sig3"), detector="actor_anomaly"),
        alert("x3", 14460, 14520, entity=("signal", "nope"), detector="actor_anomaly"),
        alert("x4", 40000, 40060, entity=("signal", "sig4"), detector="actor_anomaly"),
    ]
    report = score(alerts, truth)
    by_detector = {d.detector: d for d in report.detectors}
    v, x = by_detector["volume_spike"], by_detector["actor_anomaly"]
    assert (v.alerts, v.true_positives, v.false_positives) == (3, 2, 1)
    assert v.precision == pytest.approx(2 / 3)
    assert v.recall == 0.25
    assert (x.alerts, x.true_positives, x.false_positives) == (4, 2, 2)
    assert x.precision == 0.5
    assert x.recall == 0.5
    assert (report.alerts, report.true_positives, report.false_positives) == (7, 4, 3)
    assert report.precision == pytest.approx(4 / 7)
    assert report.recall == 0.75
    kinds = {k.kind: k for k in report.kinds}
    assert (kinds["brigade"].scenarios, kinds["brigade"].detected, kinds["brigade"].recall) == (
        2,
        2,
        1.0,
    )
    assert (kinds["spam"].scenarios, kinds["spam"].detected, kinds["spam"].recall) == (2, 1, 0.5)
    assert [s.detected for s in report.scenarios] == [True, True, True, False]


def test_no_alerts_and_no_truth() -> None:
    empty = score([], [])
    assert (empty.alerts, empty.precision, empty.recall) == (0, None, None)
    assert empty.false_positives_per_day is None
    assert (empty.detectors, empty.kinds, empty.scenarios) == ((), (), ())
    missed = score([], [scenario()])
    assert missed.recall == 0.0
    assert missed.precision is None
    assert missed.scenarios[0].detectors == ()
    assert missed.scenarios[0].time_to_detect_s is None
    assert missed.kinds[0].median_time_to_detect_s is None
    only_alerts = score([alert("a", 0, 60)], [])
    assert only_alerts.detectors[0].recall is None
    assert only_alerts.false_positives == 1


# Time to detect.


def test_time_to_detect_is_earliest_raise_minus_start() -> None:
    alerts = [alert("late", 200, 260, ts_s=260), alert("early", 60, 120, ts_s=125)]
    assert score(alerts, [scenario()]).scenarios[0].time_to_detect_s == 125.0


def test_time_to_detect_ignores_non_detecting_alerts() -> None:
    alerts = [alert("other", 0, 10, ts_s=10, entity=("actor", "x")), alert("a", 60, 120)]
    assert score(alerts, [scenario()]).scenarios[0].time_to_detect_s == 120.0


def test_time_to_detect_is_clamped_at_zero() -> None:
    early = alert("a", -600, 60, ts_s=-30)
    assert score([early], [scenario()]).scenarios[0].time_to_detect_s == 0.0


def test_median_time_to_detect_per_kind() -> None:
    truth = [
        scenario("s1", 0, 600, signals=("sig1",)),
        scenario("s2", 7200, 7800, signals=("sig2",)),
        scenario("s3", 14400, 15000, signals=("sig3",)),
        scenario("s4", 21600, 22200, signals=("sig4",)),
    ]
    alerts = [
        alert("a1", 0, 60, ts_s=60, entity=("signal", "sig1")),
        alert("a2", 7200, 7380, ts_s=7380, entity=("signal", "sig2")),
        alert("a3", 14400, 14700, ts_s=14700, entity=("signal", "sig3")),
    ]
    kind = score(alerts, truth).kinds[0]
    assert (kind.scenarios, kind.detected, kind.recall) == (4, 3, 0.75)
    assert kind.median_time_to_detect_s == 180.0


# False positives per day.


def test_false_positives_per_day_from_duration() -> None:
    alerts = [alert(f"fp{i}", 7200 + 60 * i, 7260 + 60 * i) for i in range(3)]
    report = score(alerts, [scenario()], duration_s=43200.0)
    assert report.false_positives == 3
    assert report.false_positives_per_day == 6.0
    assert report.duration_s == 43200.0


def test_false_positives_per_day_from_span() -> None:
    # Span: scenario start (0) to the last alert's window end (21600): a quarter day.
    alerts = [alert("fp", 21540, 21600)]
    report = score(alerts, [scenario()])
    assert report.duration_s == 21600.0
    assert report.false_positives_per_day == 4.0


def test_false_positives_per_day_without_a_span() -> None:
    assert score([alert("a", 0, 0)], []).false_positives_per_day is None
    assert score([alert("a", 0, 60)], [], duration_s=0.0).false_positives_per_day is None


# Input errors.


@pytest.mark.parametrize("missing", ["scenario_id", "kind", "start", "end"])
def test_truth_record_missing_a_field(missing: str) -> None:
    record = scenario()
    del record[missing]
    with pytest.raises(ValueError, match=f"truth record 1: no '{missing}'"):
        score([], [record])


def test_truth_record_bad_time_and_ids() -> None:
    with pytest.raises(ValueError, match="truth record 1: not an RFC 3339 time"):
        score([], [{**scenario(), "start": "yesterday"}])
    with pytest.raises(ValueError, match="'actors' is not a list of strings"):
        score([], [{**scenario(), "actors": "r1"}])


def test_alert_message_missing_a_field() -> None:
    record = alert("a", 0, 60)
    del record["window"]
    with pytest.raises(ValueError, match="alert message 2: no 'window'"):
        score([alert("b", 0, 60), record], [])


def test_optional_truth_lists_may_be_absent() -> None:
    record = {k: v for k, v in scenario().items() if k not in ("actors", "targets")}
    assert detected([alert("a", 60, 120)], [record])


# Output.


def sample_report() -> Report:
    truth = [
        scenario("brigade-1", 0, 600, kind="report_brigade"),
        scenario("spam-1", 7200, 7800, kind="spam_wave", signals=("content",), actors=("s1",)),
    ]
    alerts = [
        alert("a", 60, 120, ts_s=150),
        alert(
            "b",
            60,
            120,
            ts_s=150,
            detector="content_campaign",
            entity=("campaign", "c9"),
            members=["r1", "r2"],
        ),
        alert("c", 30000, 30060, entity=("signal", "content")),
    ]
    return score(alerts, truth, duration_s=86400.0)


def test_format_report_contains_the_figures() -> None:
    text = format_report(sample_report())
    lines = text.splitlines()
    for heading in ("Per detector", "Per scenario kind", "Per scenario"):
        assert heading in lines
    detector_lines = {line.split()[0]: line.split() for line in lines if line.startswith("  ")}
    assert detector_lines["volume_spike"] == ["volume_spike", "2", "1", "1", "50.0%", "50.0%"]
    assert detector_lines["content_campaign"] == [
        "content_campaign",
        "1",
        "1",
        "0",
        "100.0%",
        "50.0%",
    ]
    assert detector_lines["report_brigade"] == ["report_brigade", "1", "1", "100.0%", "150.0"]
    assert detector_lines["spam_wave"] == ["spam_wave", "1", "0", "0.0%", "-"]
    assert "brigade-1" in text and "content_campaign, volume_spike" in text
    assert any(line.split()[:4] == ["spam-1", "spam_wave", at(7200), "no"] for line in lines)
    overall = lines[-1]
    assert overall.startswith("Overall: 3 alerts, 2 true positives, 1 false positives")
    assert "precision 66.7%" in overall
    assert "recall 50.0%" in overall
    assert "1.0 false positives per day" in overall


def test_format_report_columns_are_aligned() -> None:
    lines = format_report(sample_report()).splitlines()
    table = lines[1 : lines.index("")]
    # Right-aligned numeric columns end at the same place on every row.
    assert len({len(line) for line in table}) == 1


def test_format_report_of_an_empty_report() -> None:
    text = format_report(score([], []))
    assert text.count("(none)") == 3
    assert "precision -, recall -, - false positives per day" in text


def test_to_dict_round_trips_through_orjson() -> None:
    report = sample_report()
    data = report.to_dict()
    assert orjson.loads(orjson.dumps(data)) == data
    assert data["true_positives"] == 2
    assert data["detectors"][0]["detector"] == "content_campaign"
    assert data["scenarios"][0]["detectors"] == ["content_campaign", "volume_spike"]
    assert data["scenarios"][1]["time_to_detect_s"] is None
    assert set(data) >= {"precision", "recall", "false_positives_per_day", "kinds"}


# Properties.

ENTITIES = [
    ("signal", "sig0"),
    ("signal", "sig1"),
    ("actor", "u0"),
    ("actor", "u1"),
    ("target", "u2"),
    ("campaign", "c0"),
    ("other", "u0"),
]

alert_messages = st.lists(
    st.builds(
        lambda ident, det, entity, start, length, members: alert(
            f"a{ident}",
            start,
            start + length,
            detector=det,
            entity=entity,
            members=members,
        ),
        st.integers(0, 12),
        st.sampled_from(["volume_spike", "actor_anomaly", "content_campaign"]),
        st.sampled_from(ENTITIES),
        st.integers(-3600, 14400),
        st.integers(0, 1800),
        st.one_of(st.none(), st.lists(st.sampled_from(["u0", "u1", "u2", "u3"]), max_size=3)),
    ),
    max_size=25,
)

truth_records = st.lists(
    st.builds(
        lambda n, kind, start, length, actors, targets, signals: scenario(
            f"s{n}",
            start,
            start + length,
            kind=kind,
            actors=tuple(actors),
            targets=tuple(targets),
            signals=tuple(signals),
        ),
        st.integers(0, 1000),
        st.sampled_from(["brigade", "spam"]),
        st.integers(0, 10800),
        st.integers(0, 3600),
        st.lists(st.sampled_from(["u0", "u1", "u3"]), max_size=2),
        st.lists(st.sampled_from(["u2", "u3"]), max_size=2),
        st.lists(st.sampled_from(["sig0", "sig1", "sig2"]), max_size=2),
    ),
    max_size=6,
)


def in_unit(value: float | None) -> bool:
    return value is None or 0.0 <= value <= 1.0


@given(alert_messages, truth_records)
def test_scores_are_consistent(alerts: list[dict[str, Any]], truth: list[dict[str, Any]]) -> None:
    report = score(alerts, truth)
    distinct = {a["alert_id"] for a in alerts}
    assert report.true_positives + report.false_positives == report.alerts == len(distinct)
    assert in_unit(report.precision) and in_unit(report.recall)
    assert sum(d.alerts for d in report.detectors) == len(distinct)
    for d in report.detectors:
        assert d.true_positives + d.false_positives == d.alerts
        assert in_unit(d.precision) and in_unit(d.recall)
        # Overall recall is at least any one detector's.
        assert (report.recall or 0.0) >= (d.recall or 0.0)
    for k in report.kinds:
        assert in_unit(k.recall)
    assert sum(k.scenarios for k in report.kinds) == len(truth)
    for s in report.scenarios:
        assert s.detected == bool(s.detectors) == (s.time_to_detect_s is not None)
        assert s.time_to_detect_s is None or s.time_to_detect_s >= 0
    assert orjson.loads(orjson.dumps(report.to_dict())) == report.to_dict()
    format_report(report)


def test_alerts_on_a_decoy_are_false_positives_and_listed_under_it() -> None:
    decoy = {
        **scenario(
            "popular_account-1", kind="popular_account", actors=("creator",), targets=(), signals=()
        ),
        "decoy": True,
    }
    truth = [scenario(), decoy]
    alerts = [
        alert("a1", 60.0, 120.0, entity=("actor", "creator"), detector="actor_anomaly"),
        alert("a2", 60.0, 120.0),
    ]
    report = score(alerts, truth, duration_s=86400.0)
    assert [s.scenario_id for s in report.scenarios] == ["s1"]  # not a scenario to detect
    assert report.recall == 1.0 and report.false_positives == 1
    [listed] = report.decoys
    assert (listed.scenario_id, listed.alerts, listed.detectors) == (
        "popular_account-1",
        1,
        ("actor_anomaly",),
    )
    assert "popular_account-1  popular_account" in format_report(report)


def test_a_family_of_kinds_gets_a_table_of_its_own() -> None:
    families = {
        "slow": ("slow_brigade_20", "slow_brigade_80", "slow_wave"),
        "absent": ("shift", "slow_wave"),
    }
    truth = [
        scenario("b20", kind="slow_brigade_20", actors=("r1",), targets=("v1",), signals=()),
        scenario("b80", 3600.0, 4200.0, kind="slow_brigade_80", actors=("r2",), targets=("v2",)),
        scenario("spam", kind="spam_wave", actors=("s1",), targets=(), signals=("content",)),
        {**scenario("w1", kind="slow_wave", actors=("o1",), targets=(), signals=()), "decoy": True},
    ]
    alerts = [
        alert("a1", 3600.0, 3660.0, entity=("target", "v2"), detector="report_brigade"),
        alert("a2", 60.0, 120.0, entity=("actor", "o1"), detector="actor_anomaly"),
        alert("a3", 60.0, 120.0, entity=("signal", "content")),
    ]
    report = score(alerts, truth, duration_s=86400.0, families=families)
    [family] = report.families  # one with none of its attacks in the truth is left out
    assert family.family == "slow"
    assert [(k.kind, k.detected, k.median_time_to_detect_s) for k in family.kinds] == [
        ("slow_brigade_20", 0, None),
        ("slow_brigade_80", 1, 60.0),
    ]
    assert [(d.scenario_id, d.alerts) for d in family.decoys] == [("w1", 1)]
    text = format_report(report)
    per_kind = text.split("Per scenario kind\n")[1].split("\n\n")[0]
    assert "spam_wave" in per_kind and "slow_brigade" not in per_kind
    table = text.split("Family slow\n")[1].split("\n\n")[0].splitlines()
    assert table[1].split() == ["slow_brigade_20", "1", "0", "0.0%", "-"]
    assert table[2].split() == ["slow_brigade_80", "1", "1", "100.0%", "60.0"]
    assert table[4].split() == ["slow_wave", "1", "1", "actor_anomaly", "0"]
    # Without families, the same report as before.
    plain = format_report(score(alerts, truth, duration_s=86400.0))
    assert "Family" not in plain and "slow_brigade_80" in plain.split("Per scenario kind")[1]
