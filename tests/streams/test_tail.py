"""`abuse-monitor tail`'s filters and text lines, on records written by anyone."""

from __future__ import annotations

import base64

import orjson

from streams.records import dead_letter
from streams.tail import Filter, as_text, printable

ALERT = {
    "detector": "actor_anomaly",
    "status": "firing",
    "severity": "warning",
    "entity": {"type": "actor", "id": "u1\x1b[2J"},
    "ts": "2026-11-24T10:00:00.000Z",
    "summary": "odd\u202eevil\nsecond line",
}


def test_text_lines_show_control_characters_escaped() -> None:
    text = as_text(ALERT)
    assert text.count("\n") == 1  # the two lines of the demo, no more
    assert "\x1b" not in text and "\u202e" not in text
    assert "u1\\x1b[2J" in text and "odd\\u202eevil\\nsecond line" in text
    assert text.startswith("[event time 2026-11-24T10:00Z] ALERT WARNING actor_anomaly on actor")
    assert printable("plain ünïcode") == "plain ünïcode"


def test_filters() -> None:
    assert Filter()(ALERT, None) and Filter()(["not", "a", "record"], None)
    assert Filter(detector="actor_anomaly", severity="warning")(ALERT, None)
    assert not Filter(severity="critical")(ALERT, None)
    assert not Filter(detector="volume_spike")(["x"], None)
    assert Filter(entity="u1\x1b[2J")(ALERT, None)
    assert not Filter(entity="u1")(ALERT, None)
    # A dead letter is about the key of the message it holds.
    letter = orjson.loads(dead_letter("invalid_json", "d", "t", 0, 0, b"acct-9", b"{", 0.0))
    assert Filter(entity="acct-9")(letter, b"acct-9")
    assert Filter(entity="acct-9")(letter, None)
    assert base64.b64decode(letter["value_base64"]) == b"{"
    assert "invalid_json: d" in as_text(letter)
