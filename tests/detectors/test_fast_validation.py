"""The msgspec fast path of `parse_event` accepts only what the pydantic models accept, builds
the same event, and leaves every reject to the models, so reasons and details are theirs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, get_args
from unittest import mock

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic.fields import FieldInfo

from detectors import events
from detectors.events import (
    MAX_MESSAGE_BYTES,
    MIRRORS,
    MODELS,
    ContentEvent,
    InvalidEvent,
    Label,
    ReportEvent,
    check_id,
    clean_text,
    fast_event,
    parse_event,
    parse_rfc3339,
)

NOW = parse_rfc3339("2026-11-24T00:00:00Z")
REPORT = b'"event_id": "r1", "ts": "2026-11-24T10:00:00Z", "reporter_id": "u1", '
REPORT += b'"target_actor_id": "u2", "reason": "spam"'

REPORT_FIELDS = {"event_id", "ts", "reporter_id", "target_actor_id", "reason"}

CONTENT = b'{"event_id": "c1", "ts": "2026-11-24T10:00:00Z", "actor_id": "u1", "kind": "post"}'


@contextmanager
def pydantic_only() -> Iterator[None]:
    with mock.patch.object(events, "fast_event", return_value=None):
        yield


def outcome(topic: str, raw: bytes, now: float | None = None, future: float = 86400.0) -> Any:
    """What `parse_event` makes of a message, in a form that compares everything."""
    try:
        event = parse_event(topic, raw, now, future)
    except InvalidEvent as error:
        return ("rejected", error.reason, error.detail)
    fields = [(name, type(value), value) for name, value in event.__dict__.items()]
    hidden = (event.__pydantic_extra__, event.__pydantic_private__)
    return (type(event), fields, event.model_dump(), event.model_fields_set, hidden)


def assert_agree(topic: str, raw: bytes, now: float | None = None, future: float = 86400.0) -> Any:
    with pydantic_only():
        expected = outcome(topic, raw, now, future)
    assert outcome(topic, raw, now, future) == expected
    return expected


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def report(extra: bytes = b"") -> bytes:
    return b"{" + REPORT + extra + b"}"


# Strategies: values of each kind that the contract accepts, and hostile ones.
clean_chars = st.characters(exclude_categories=("Cc", "Cs"))
ids = st.text(clean_chars, min_size=1, max_size=12) | st.text(
    clean_chars, min_size=256, max_size=256
)
words = st.from_regex(r"[a-z][a-z0-9_-]{0,63}", fullmatch=True)
texts = st.text(max_size=30)  # control characters and bidi marks included
timestamps = st.builds(
    lambda day, time, sep, fraction, offset: f"{day}{sep}{time:%H:%M:%S}{fraction}{offset}",
    st.dates(),
    st.times(),
    st.sampled_from("Tt "),
    st.sampled_from(["", ".5", ".123", ".999999", ".1234567", ".999999999"]),
    st.sampled_from(["Z", "z", "+01:00", "-23:59", "+00:00"]),
)
hostile_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(),
    st.text(st.sampled_from("\x00\x1b\x7f\x85\u202e\u200b\t\n\ud800\udc00a"), max_size=6),
    st.sampled_from(
        ["", "x" * 257, "Post", "spam\n", "2026-11-24T10:00:00Z\n", "2026-13-01T00:00:00Z"]
    ),
    st.lists(st.text(max_size=5) | st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5) | st.integers(), max_size=3),
)
# JSON values as bytes, where parsers differ: too deep, too long a number, not UTF-8.
RAW_VALUES = [
    b"[" * 300 + b"]" * 300,
    b"[" * 100 + b"]" * 100,
    b"9" * 4301,
    b"1e400",
    b"NaN",
    b'"\xff"',
    b'"\xed\xa0\x80"',
    b'"\\ud800"',
    b'{"a": 1, "a": 2}',
]
links = st.lists(texts, max_size=3)
attrs = st.dictionaries(texts, texts, max_size=3)
FIELDS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "content-events": (
        {"event_id": ids, "ts": timestamps, "actor_id": ids, "kind": words},
        {
            "surface": words,
            "content_id": ids | st.none(),
            "text": texts | st.none(),
            "target_id": ids | st.none(),
            "links": links | st.none(),
            "actor_created_at": timestamps | st.none(),
            "attrs": attrs | st.none(),
        },
    ),
    "report-events": (
        {"event_id": ids, "ts": timestamps, "reporter_id": ids, "target_actor_id": ids},
        {"target_content_id": ids | st.none(), "reporter_created_at": timestamps | st.none()},
    ),
    "labels": (
        {
            "label_id": ids,
            "ts": timestamps,
            "subject_type": st.sampled_from(["alert", "actor", "content", "campaign"]),
            "subject_id": ids,
            "verdict": st.sampled_from(["abusive", "benign", "unsure"]),
            "labeler": ids,
        },
        {"policy": texts | st.none(), "note": texts | st.none()},
    ),
}
FIELDS["report-events"][0]["reason"] = words


def valid(topic: str) -> st.SearchStrategy[dict[str, Any]]:
    required, optional = FIELDS[topic]
    return st.fixed_dictionaries(required, optional=optional)


def encode(pairs: list[tuple[str, Any]], ascii_only: bool) -> bytes:
    """A JSON object of these pairs, keys repeated as given; with `ascii_only` every non-ASCII
    character is a `\\u` escape (lone surrogates too), else it is UTF-8 (lone ones invalid)."""
    body = ", ".join(
        f"{json.dumps(key, ensure_ascii=ascii_only)}: {json.dumps(value, ensure_ascii=ascii_only)}"
        for key, value in pairs
    )
    return ("{" + body + "}").encode("utf-8", "surrogatepass")


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, bytes]:
    topic = draw(st.sampled_from(sorted(MODELS)))
    pairs = list(draw(valid(topic)).items())
    names = [name for part in FIELDS[topic] for name in part]
    for _ in range(draw(st.integers(0, 3))):
        mutation = draw(st.sampled_from(["replace", "drop", "duplicate", "extra"]))
        if mutation == "replace" and pairs:
            at = draw(st.integers(0, len(pairs) - 1))
            pairs[at] = (pairs[at][0], draw(hostile_values))
        elif mutation == "drop" and pairs:
            del pairs[draw(st.integers(0, len(pairs) - 1))]
        elif mutation == "duplicate":
            pairs.insert(
                draw(st.integers(0, len(pairs))),
                (draw(st.sampled_from(names)), draw(hostile_values)),
            )
        elif mutation == "extra":
            pairs.append((draw(st.text(max_size=8)), draw(hostile_values)))
    raw = encode(pairs, draw(st.booleans()))
    if draw(st.booleans()):  # an unknown field only one of the parsers may read
        raw = raw[:-1] + b', "x": ' + draw(st.sampled_from(RAW_VALUES)) + b"}"
    tail = draw(st.sampled_from([b"", b" \n", b"x", b"{}", b"\x00"]))
    return topic, raw + tail


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(messages(), st.floats(0, 4e5 * 86400))
def test_the_fast_path_and_the_models_agree_on_any_message(
    message: tuple[str, bytes], future: float
) -> None:
    topic, raw = message
    assert_agree(topic, raw, NOW, future)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_valid_messages_take_the_fast_path_and_build_the_models_event(data: st.DataObject) -> None:
    topic = data.draw(st.sampled_from(sorted(MODELS)))
    value = data.draw(valid(topic))
    raw = encode(list(value.items()), data.draw(st.booleans()))
    expected = assert_agree(topic, raw)
    event = fast_event(MODELS[topic], raw)
    clean = not events._TEXT_CONTROL.search("".join(strings(value)))
    if clean:  # with a control character in a text, the model cleans it
        assert event is not None
    if event is not None:
        assert expected == (type(event), *outcome(topic, raw)[1:])


def test_the_models_have_nothing_the_fast_path_would_not_set() -> None:
    for model in MIRRORS:
        assert model.model_config.get("extra") == "ignore" and not model.__private_attributes__
        assert not model.__pydantic_post_init__
        assert all(
            f.alias is None and f.validation_alias is None for f in model.model_fields.values()
        )


def validators(field: FieldInfo) -> set[object]:
    """The functions of a model field's validators, however deep in its type."""
    found = {meta.func for meta in field.metadata if hasattr(meta, "func")}
    types = [field.annotation]
    while types:
        kind = types.pop()
        found |= {meta.func for meta in getattr(kind, "__metadata__", ()) if hasattr(meta, "func")}
        types += get_args(kind)
    return found


def patterns(field: FieldInfo) -> set[str]:
    """The patterns a model field's value must match."""
    return {meta.pattern for meta in field.metadata if getattr(meta, "pattern", None)}


def test_the_fast_path_knows_what_each_field_is() -> None:
    expected = {check_id: {"id"}, parse_rfc3339: {"timestamp"}, clean_text: {"text", "texts"}}
    word = patterns(ContentEvent.model_fields["kind"])
    for model in MIRRORS:
        for name, field in model.model_fields.items():
            functions = validators(field)
            assert len(functions) <= 1, name
            for function in functions:
                assert events._KINDS.get(name) in expected[function], name
            if patterns(field):  # the one pattern, which the fast path checks after decoding
                assert patterns(field) == word and events._KINDS.get(name) == "word", name
            elif not functions:
                assert name not in events._KINDS, name


def test_the_mirrors_have_the_models_fields() -> None:
    for model, mirror in MIRRORS.items():
        mirrored = {field.name: field.required for field in msgspec.structs.fields(mirror)}
        assert mirrored == {name: field.is_required() for name, field in model.model_fields.items()}


def test_no_long_word_is_kept_by_the_fast_paths_cache() -> None:
    events._is_word.cache_clear()
    raw = CONTENT.replace(b'"post"', b'"' + b"a" * 100_000 + b'"')
    assert fast_event(ContentEvent, raw) is None
    assert events._is_word.cache_info().currsize == 0
    assert_agree("content-events", raw)


def test_a_valid_message_is_built_by_the_fast_path() -> None:
    raw = report(b', "target_content_id": null')
    event = fast_event(ReportEvent, raw)
    assert isinstance(event, ReportEvent)
    assert outcome("report-events", raw) == assert_agree("report-events", raw)
    assert event.model_fields_set == {*REPORT_FIELDS, "target_content_id"}
    assert event.reporter_created_at is None and event.ts == parse_rfc3339("2026-11-24T10:00:00Z")


@pytest.mark.parametrize(
    "raw",
    [
        report(b', "reporter_id": "u9"'),  # the last value wins, in both
        b'{"reporter_id": 5, ' + REPORT + b"}",  # a bad first value is not looked at
        report(b', "reporter_id": 5'),
        report(b', "reporter_id": "u\\u0000"'),
    ],
)
def test_duplicate_keys(raw: bytes) -> None:
    assert_agree("report-events", raw)


def test_duplicate_keys_the_last_wins() -> None:
    event = parse_event("report-events", report(b', "reporter_id": "u9"'))
    assert isinstance(event, ReportEvent) and event.reporter_id == "u9"
    raw = CONTENT[:-1] + b', "attrs": {"a": "1", "a\\u0001": "2", "b": "3", "a": "4"}}'
    assert assert_agree("content-events", raw)[2]["attrs"] == {"a": "4", "b": "3"}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        # lone surrogates, in a known field, an unknown one, a key
        (report().replace(b'"u1"', b'"\\ud800"'), "invalid_json"),
        (report().replace(b'"u1"', b'"\\udc00x"'), "invalid_json"),
        (report().replace(b'"u1"', b'"\\ud800\\u0041"'), "invalid_json"),
        (report(b', "x": "\\ud800"'), "invalid_json"),
        (report(b', "\\udfff": 1'), "invalid_json"),
        # bytes that are not UTF-8: invalid, an encoded surrogate, an overlong form
        (report().replace(b'"u1"', b'"u\xff"'), "invalid_json"),
        (report(b', "x": "\xff"'), "invalid_json"),
        (report(b', "x": "\xed\xa0\x80"'), "invalid_json"),
        (report(b', "x": "\xc0\xaf"'), "invalid_json"),
        # numbers: past pydantic's range in an unknown field, anywhere in a known one
        (report(b', "x": ' + b"9" * 4301), "invalid_json"),
        (report(b', "x": 1e400, "y": 123456789012345678901234567890'), None),
        (report().replace(b'"u1"', b"1" * 400), "wrong_type"),
        (report().replace(b'"u1"', b"1e400"), "wrong_type"),
        # NaN and Infinity: pydantic reads them
        (report(b', "x": NaN, "y": -Infinity'), None),
        (report().replace(b'"u1"', b"NaN"), "wrong_type"),
        # trailing data, and trailing white space
        (report() + b" x", "invalid_json"),
        (report() + b"{}", "invalid_json"),
        (report() + b"\x00", "invalid_json"),
        (report() + b" \n\t\r", None),
        # not an object at the top
        (b"[" + report() + b"]", "not_an_object"),
        (b'"' + REPORT.replace(b'"', b"'") + b'"', "not_an_object"),
        (b"null", "not_an_object"),
        # nesting: past pydantic's limit in an unknown field, and under it
        (report(b', "x": ' + b"[" * 253 + b"]" * 253), "invalid_json"),
        (report(b', "x": ' + b"[" * 2000 + b"]" * 2000), "invalid_json"),
        (report(b', "x": ' + b"[" * 100 + b"]" * 100), None),
        # bools and numbers for strings, strings that are not words or times
        (report().replace(b'"u1"', b"true"), "wrong_type"),
        (report().replace(b'"spam"', b'"spam\\n"'), "invalid_value"),
        (report().replace(b'00Z"', b'00Z\\n"'), "invalid_value"),
        (report().replace(b'00Z"', b'00.1234567891Z"'), "invalid_value"),
        (report().replace(b'00Z"', b'00+0100"'), "invalid_value"),
        (report().replace(b'"u1"', b'"' + b"x" * 257 + b'"'), "invalid_value"),
        (report().replace(b'"u1"', b'"u\\t"'), "invalid_value"),
        (report().replace(b'"u1"', b'"u\xc2\x85"'), "invalid_value"),
        (report().replace(b'"u1"', b'"u\x7f"'), "invalid_value"),
        # control characters as such in a string: not JSON
        (report().replace(b'"u1"', b'"u\x01"'), "invalid_json"),
        (report().replace(b'"spam"', b'"sp\tam"'), "invalid_json"),
        # missing fields, unknown fields
        (report().replace(b'"reason": "spam"', b'"x": 1'), "missing_field"),
        (report(b', "extra": {"deep": [1, 2.5, null, true]}'), None),
    ],
)
def test_where_the_parsers_differ_the_models_decide(raw: bytes, reason: str | None) -> None:
    expected = assert_agree("report-events", raw)
    assert expected[1] == reason if reason else not isinstance(expected[0], str)


def test_free_text_with_control_characters_is_cleaned_as_the_model_does() -> None:
    raw = CONTENT[:-1] + b', "text": "a\\u0000b\\n\\tc\\u202e", "links": ["x\\u007f"]}'
    cleaned = assert_agree("content-events", raw)[2]
    assert cleaned["text"] == "ab\n\tc\u202e" and cleaned["links"] == ["x"]
    assert fast_event(ContentEvent, CONTENT[:-1] + b', "text": "line\\nbreak \\"quoted\\""}')


def test_labels_literals() -> None:
    label = b'{"label_id": "l", "ts": "2026-11-24T10:00:00Z", "subject_type": "alert",'
    label += b' "subject_id": "x", "verdict": "benign", "labeler": "ana", "note": "ok"}'
    assert isinstance(fast_event(Label, label), Label)
    assert_agree("labels", label)
    assert assert_agree("labels", label.replace(b"benign", b"maybe"))[1] == "wrong_type"


def test_too_large_is_decided_before_either_parser() -> None:
    raw = report(b" " * MAX_MESSAGE_BYTES)
    assert fast_event(ReportEvent, raw) is not None
    assert assert_agree("report-events", raw)[1] == "too_large"


def test_the_future_is_checked_on_both_paths() -> None:
    raw = report()
    now = parse_rfc3339("2026-11-24T09:00:00Z")
    assert fast_event(ReportEvent, raw) is not None
    assert assert_agree("report-events", raw, now, 60.0)[1:] == (
        "invalid_value",
        "ts: more than 60 s in the future",
    )
    assert isinstance(assert_agree("report-events", raw, now, 3600.0)[0], type)
