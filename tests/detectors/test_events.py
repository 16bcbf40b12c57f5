"""Validation of input messages: every bad message gets a reason, never another exception."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.events import (
    REASONS,
    ContentEvent,
    InvalidEvent,
    ReportEvent,
    format_rfc3339,
    parse_event,
    parse_rfc3339,
)

CONTENT = {
    "event_id": "c1",
    "ts": "2026-11-24T10:00:00.250Z",
    "actor_id": "u1",
    "kind": "message",
    "surface": "messenger",
    "target_id": "u2",
    "links": ["example.com"],
    "actor_created_at": "2026-11-20T00:00:00+02:00",
    "attrs": {"country": "de"},
    "unknown_field": {"ignored": True},
}


def reason_of(topic: str, raw: bytes) -> str:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(topic, raw)
    return caught.value.reason


def test_a_full_content_event() -> None:
    event = parse_event("content-events", orjson.dumps(CONTENT))
    assert isinstance(event, ContentEvent)
    assert event.ts == parse_rfc3339("2026-11-24T10:00:00.250Z")
    assert event.actor_created_at == parse_rfc3339("2026-11-19T22:00:00Z")
    assert event.key == "u1"


def test_optional_fields_default() -> None:
    event = parse_event(
        "content-events",
        b'{"event_id": "c", "ts": "2026-11-24T10:00:00Z", "actor_id": "a", "kind": "post"}',
    )
    assert isinstance(event, ContentEvent)
    assert event.surface == "unknown" and event.target_id is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"ts": None}, "wrong_type"),
        ({"ts": 1795514400}, "wrong_type"),
        ({"ts": "2026-11-24T10:00:00"}, "invalid_value"),  # no offset
        ({"ts": "2026-11-24"}, "invalid_value"),
        ({"ts": "2026-02-30T10:00:00Z"}, "invalid_value"),
        ({"event_id": ""}, "invalid_value"),
        ({"event_id": "x" * 257}, "invalid_value"),
        ({"event_id": 7}, "wrong_type"),
        ({"kind": "Post"}, "invalid_value"),
        ({"links": "example.com"}, "wrong_type"),
        ({"links": [1]}, "wrong_type"),
        ({"attrs": {"n": 1}}, "wrong_type"),
        ({"text": 3.5}, "wrong_type"),
    ],
)
def test_bad_fields(change: dict[str, object], reason: str) -> None:
    assert reason_of("content-events", orjson.dumps({**CONTENT, **change})) == reason


def test_missing_field() -> None:
    value = {k: v for k, v in CONTENT.items() if k != "actor_id"}
    assert reason_of("content-events", orjson.dumps(value)) == "missing_field"


def test_not_json_not_an_object_too_large() -> None:
    assert reason_of("report-events", b"{") == "invalid_json"
    assert reason_of("report-events", b"\xff\xfe") == "invalid_json"
    assert reason_of("report-events", b"[]") == "not_an_object"
    assert reason_of("report-events", b'"text"') == "not_an_object"
    assert reason_of("report-events", b" " * (1024 * 1024 + 1)) == "too_large"


def test_far_future_timestamps_are_rejected_against_the_wall_clock() -> None:
    raw = orjson.dumps({**CONTENT, "ts": "2026-12-24T00:00:00Z"})
    now = parse_rfc3339("2026-11-24T00:00:00Z")
    with pytest.raises(InvalidEvent) as caught:
        parse_event("content-events", raw, now=now)
    assert caught.value.reason == "invalid_value"
    assert parse_event("content-events", raw, now=now + 40 * 86400)


def test_report_and_label() -> None:
    report = parse_event(
        "report-events",
        b'{"event_id": "r", "ts": "2026-11-24T10:00:00Z", "reporter_id": "a",'
        b' "target_actor_id": "b", "reason": "spam"}',
    )
    assert isinstance(report, ReportEvent) and report.key == "a"
    label = b'{"label_id": "l", "ts": "2026-11-24T10:00:00Z", "subject_type": "alert",'
    label += b' "subject_id": "x", "verdict": "maybe", "labeler": "ana"}'
    assert reason_of("labels", label) in ("invalid_value", "wrong_type")


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_rfc3339_round_trip(seconds: float) -> None:
    assert math.isclose(parse_rfc3339(format_rfc3339(seconds)), round(seconds, 3), abs_tol=1e-3)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=6,
)


@settings(max_examples=300)
@given(st.sampled_from(["content-events", "report-events", "labels"]), st.binary(max_size=200))
def test_any_bytes_parse_or_give_a_reason(topic: str, raw: bytes) -> None:
    try:
        parse_event(topic, raw)
    except InvalidEvent as error:
        assert error.reason in REASONS and error.detail


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["content-events", "report-events"]),
    st.dictionaries(
        st.sampled_from(sorted({*CONTENT, "reporter_id", "target_actor_id", "reason"})),
        json_values,
    ),
)
def test_any_json_object_parses_or_gives_a_reason(topic: str, value: dict[str, object]) -> None:
    try:
        parse_event(topic, orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))
    except InvalidEvent as error:
        assert error.reason in REASONS
    except orjson.JSONEncodeError:
        pass  # not representable as JSON; no message can carry it


@pytest.mark.parametrize(
    ("topic", "field"),
    [
        ("content-events", "actor_id"),
        ("content-events", "event_id"),
        ("content-events", "target_id"),
        ("report-events", "target_actor_id"),
        ("labels", "subject_id"),
        ("labels", "labeler"),
    ],
)
@pytest.mark.parametrize("control", ["\x00", "\x1b", "\x7f", "\x85"])
def test_ids_with_control_characters_are_refused_with_the_reason(
    topic: str, field: str, control: str
) -> None:
    base: dict[str, object] = {
        "content-events": CONTENT,
        "report-events": {
            "event_id": "r1",
            "ts": "2026-11-24T10:00:00Z",
            "reporter_id": "u1",
            "target_actor_id": "u2",
            "reason": "spam",
        },
        "labels": {
            "label_id": "l1",
            "ts": "2026-11-24T10:00:00Z",
            "subject_type": "actor",
            "subject_id": "u2",
            "verdict": "abusive",
            "labeler": "ana",
        },
    }[topic]
    raw = orjson.dumps(base | {field: f"u{control}evil"})
    with pytest.raises(InvalidEvent) as caught:
        parse_event(topic, raw)
    assert caught.value.reason == "invalid_value"
    assert caught.value.detail == (
        f"{field}: must not contain control characters (U+{ord(control):04X} at 1)"
    )


def test_free_text_loses_control_characters_but_keeps_its_lines() -> None:
    event = parse_event(
        "content-events",
        orjson.dumps(
            CONTENT
            | {
                "text": "buy\x00 now\x1b[0m\tcheap\r\nhere\u202e",
                "links": ["ex\x00ample.com"],
                "attrs": {"dev\x01ice": "d\x7f1"},
            }
        ),
    )
    assert isinstance(event, ContentEvent)
    assert event.text == "buy now[0m\tcheap\r\nhere\u202e"  # bidi marks: the console isolates
    assert event.links == ["example.com"] and event.attrs == {"device": "d1"}
    label = parse_event(
        "labels",
        b'{"label_id": "l", "ts": "2026-11-24T10:00:00Z", "subject_type": "actor",'
        b' "subject_id": "u", "verdict": "benign", "labeler": "ana",'
        b' "policy": "sp\\u0000am", "note": "seen\\u0000\\nok"}',
    )
    assert label.policy == "spam" and label.note == "seen\nok"  # type: ignore[union-attr]
