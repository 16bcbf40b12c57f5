"""Input events of the wire contract, and their validation.

`parse_event` turns the raw bytes of one Kafka message into a typed event, or raises
`InvalidEvent` with a machine-readable reason (a small fixed set, safe as a metric label)
and a human-readable detail.

>>> ev = parse_event("report-events", b'{"event_id": "r1", "ts": "2026-11-24T10:00:00Z",'
...     b' "reporter_id": "u1", "target_actor_id": "u2", "reason": "spam"}')
>>> ev.reason, ev.ts
('spam', 1795514400.0)
>>> parse_event("report-events", b'{"event_id": "r1"')
Traceback (most recent call last):
...
detectors.events.InvalidEvent: invalid_json: Invalid JSON: EOF while parsing an object at line 1 column 17
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NamedTuple

import msgspec
from msgspec import UNSET, UnsetType
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

MAX_MESSAGE_BYTES = 1024 * 1024

# The reasons a message is dead-lettered. Bounded: they label a metric.
REASONS = (
    "too_large",
    "invalid_json",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "invalid_value",
    "unknown_topic",
)

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


def parse_rfc3339(value: Any) -> float:
    """Seconds since the epoch of an RFC 3339 timestamp with an offset.

    >>> parse_rfc3339("2026-11-24T10:00:00.250+01:00")
    1795510800.25
    """
    if not isinstance(value, str):
        raise PydanticCustomError("ts_type", "must be an RFC 3339 string")
    if not _RFC3339.match(value):
        raise PydanticCustomError("ts_format", "must be RFC 3339 with an offset")
    try:  # digits past microseconds are dropped
        return datetime.fromisoformat(value.upper()).timestamp()
    except ValueError as exc:  # e.g. month 13
        raise PydanticCustomError("ts_format", "not a valid date and time") from exc


def format_rfc3339(seconds: float) -> str:
    """The RFC 3339 form (UTC, milliseconds) used in everything abuse-monitor writes.

    >>> format_rfc3339(1795514400.25)
    '2026-11-24T10:00:00.250Z'
    """
    ms = round(seconds * 1000)
    whole, milli = divmod(ms, 1000)
    return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{milli:03d}Z"


# Control characters (Unicode category Cc: C0, DEL, C1). An id holding one is refused: a NUL
# cannot be stored in PostgreSQL, and the others make ids that print as something else.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# In free text the same, less tab, line feed and carriage return, are removed instead: a text
# refused for an invisible character would be a way to keep a post out of the counts.
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def check_id(value: str) -> str:
    r"""An id as given, or an error naming its first control character.

    >>> check_id("u1")
    'u1'
    >>> check_id("u\x00evil")
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.PydanticCustomError: must not contain control characters (U+0000 at 1)
    """
    found = _CONTROL.search(value)
    if found:
        code, at = ord(found.group()), found.start()
        raise PydanticCustomError(
            "control_character", f"must not contain control characters (U+{code:04X} at {at})"
        )
    return value


def clean_text(value: str) -> str:
    r"""Free text without control characters other than tab and line breaks.

    >>> clean_text("spam\x00\x1b[31m text\n")
    'spam[31m text\n'
    """
    return _TEXT_CONTROL.sub("", value) if _TEXT_CONTROL.search(value) else value


# A float once parsed; on the wire (and in the JSON Schema) an RFC 3339 string.
Timestamp = Annotated[
    float,
    BeforeValidator(parse_rfc3339),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Id = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(check_id)]
Text = Annotated[str, AfterValidator(clean_text)]
Word = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class ContentEvent(_Event):
    event_id: Id
    ts: Timestamp
    actor_id: Id
    kind: Word
    surface: Word = "unknown"
    content_id: Id | None = None
    text: Text | None = None
    target_id: Id | None = None
    links: list[Text] | None = None
    actor_created_at: Timestamp | None = None
    attrs: dict[Text, Text] | None = None

    @property
    def key(self) -> str:
        return self.actor_id


class ReportEvent(_Event):
    event_id: Id
    ts: Timestamp
    reporter_id: Id
    target_actor_id: Id
    target_content_id: Id | None = None
    reason: Word
    reporter_created_at: Timestamp | None = None

    @property
    def key(self) -> str:
        return self.reporter_id


class Label(_Event):
    label_id: Id
    ts: Timestamp
    subject_type: Literal["alert", "actor", "content", "campaign"]
    subject_id: Id
    verdict: Literal["abusive", "benign", "unsure"]
    labeler: Id
    policy: Text | None = None
    note: Text | None = None

    @property
    def event_id(self) -> str:
        return self.label_id

    @property
    def key(self) -> str:
        return self.subject_id


Event = ContentEvent | ReportEvent | Label

MODELS: dict[str, type[ContentEvent] | type[ReportEvent] | type[Label]] = {
    "content-events": ContentEvent,
    "report-events": ReportEvent,
    "labels": Label,
}


class InvalidEvent(ValueError):
    """A message that does not meet the contract; `reason` is one of `REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


_WRONG_TYPE = {"ts_type", "model_attributes_type", "literal_error"}


def _reason(error: Any) -> str:
    kind: str = error["type"]
    if kind in ("json_invalid", "json_type"):
        return "invalid_json"
    if kind in ("model_type", "model_attributes_type") and not error["loc"]:
        return "not_an_object"
    if kind == "missing":
        return "missing_field"
    if kind.endswith("_type") or kind in _WRONG_TYPE:
        return "wrong_type"
    return "invalid_value"


# The fast path. Valid messages are decoded by msgspec into these mirrors of the models and
# become the model pydantic would have built; anything the mirrors or the checks after them
# refuse, pydantic validates, so a reject's reason and detail are the models'. Where the two
# JSON parsers differ, the mirrors refuse: unknown fields (msgspec skips them unchecked: bad
# UTF-8, numbers and nesting beyond pydantic's limits), and `re`'s `$`, which matches before a
# final newline where pydantic's does not, is `\Z`.
_MirrorId = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
# A word's pattern is checked after decoding (`_is_word`), where its few values are cached:
# msgspec runs a pattern through `re` on every message, half of a content event's decoding.
# Its length is checked in decoding, so that no long value an attacker sends is cached.
_MirrorWord = Annotated[str, msgspec.Meta(max_length=64)]
_WORD = re.compile(r"[a-z][a-z0-9_-]{0,63}\Z").match


@functools.lru_cache(maxsize=1024)
def _is_word(value: str) -> bool:
    return _WORD(value) is not None


class _Mirror(msgspec.Struct, forbid_unknown_fields=True):
    pass


class _ContentMirror(_Mirror):
    event_id: _MirrorId
    ts: str
    actor_id: _MirrorId
    kind: _MirrorWord
    surface: _MirrorWord | UnsetType = UNSET
    content_id: _MirrorId | UnsetType | None = UNSET
    text: str | UnsetType | None = UNSET
    target_id: _MirrorId | UnsetType | None = UNSET
    links: list[str] | UnsetType | None = UNSET
    actor_created_at: str | UnsetType | None = UNSET
    attrs: dict[str, str] | UnsetType | None = UNSET


class _ReportMirror(_Mirror, kw_only=True):  # keyword-only: in the model's order
    event_id: _MirrorId
    ts: str
    reporter_id: _MirrorId
    target_actor_id: _MirrorId
    target_content_id: _MirrorId | UnsetType | None = UNSET
    reason: _MirrorWord
    reporter_created_at: str | UnsetType | None = UNSET


class _LabelMirror(_Mirror):
    label_id: _MirrorId
    ts: str
    subject_type: Literal["alert", "actor", "content", "campaign"]
    subject_id: _MirrorId
    verdict: Literal["abusive", "benign", "unsure"]
    labeler: _MirrorId
    policy: str | UnsetType | None = UNSET
    note: str | UnsetType | None = UNSET


MIRRORS: dict[type[Event], type[_Mirror]] = {
    ContentEvent: _ContentMirror,
    ReportEvent: _ReportMirror,
    Label: _LabelMirror,
}
# What the models' validators check (ids) or convert (timestamps, free text), by field, and
# the fields that hold a `Word`.
_KINDS = {
    **dict.fromkeys(["event_id", "actor_id", "content_id", "target_id", "reporter_id"], "id"),
    **dict.fromkeys(["target_actor_id", "target_content_id", "label_id", "subject_id"], "id"),
    "labeler": "id",
    **dict.fromkeys(["ts", "actor_created_at", "reporter_created_at"], "timestamp"),
    **dict.fromkeys(["text", "policy", "note"], "text"),
    "links": "texts",
    "attrs": "texts",
    **dict.fromkeys(["kind", "surface", "reason"], "word"),
}


class _Fast(NamedTuple):
    decoder: msgspec.json.Decoder[Any]
    defaults: dict[str, Any]  # every field, in the model's order (None where required)
    timestamps: tuple[str, ...]
    words: tuple[str, ...]  # the fields that hold a `Word`


_FAST = {
    model: _Fast(
        msgspec.json.Decoder(mirror),
        {name: field.get_default() for name, field in model.model_fields.items()},
        tuple(name for name in model.model_fields if _KINDS.get(name) == "timestamp"),
        tuple(name for name in model.model_fields if _KINDS.get(name) == "word"),
    )
    for model, mirror in MIRRORS.items()
}
_set = object.__setattr__


def _control_characters(given: dict[str, Any]) -> bool:
    """Whether an id holds a control character, or a text one the model removes."""
    ids, texts = [], []
    for name, value in given.items():
        kind = _KINDS.get(name)
        if kind == "id" and value is not None:
            ids.append(value)
        elif kind == "text" and value is not None:
            texts.append(value)
        elif kind == "texts" and value is not None:  # a list, or a dict's keys and values
            texts += [*value, *value.values()] if isinstance(value, dict) else value
    return bool(_CONTROL.search("".join(ids)) or _TEXT_CONTROL.search("".join(texts)))


def fast_event(model: type[Event], raw: bytes) -> Event | None:
    """The event `model.model_validate_json(raw)` gives, or None where this is not sure."""
    fast = _FAST[model]
    try:
        given = msgspec.to_builtins(fast.decoder.decode(raw))  # the fields present
        for name in fast.words:
            if name in given and not _is_word(given[name]):
                return None
        values = fast.defaults | given
        for name in fast.timestamps:
            if values[name] is not None:
                values[name] = parse_rfc3339(values[name])
    except Exception:  # msgspec's errors, UTF-8 that is not, a timestamp that is not, ...
        return None  # the models decide
    # A JSON string holds a control character only through an escape (a backslash), or as
    # DEL or a C1 character (0xC2 0x80-0x9F in UTF-8); an id with one is refused and free
    # text loses it: rare, so left to the models.
    if (b"\\" in raw or b"\x7f" in raw or b"\xc2" in raw) and _control_characters(given):
        return None
    # What `model_construct` does for these models (no aliases, extras or private attributes),
    # without its loop over the fields.
    event = model.__new__(model)
    _set(event, "__dict__", values)
    _set(event, "__pydantic_fields_set__", set(given))
    _set(event, "__pydantic_extra__", None)
    _set(event, "__pydantic_private__", None)
    return event


MAX_FUTURE_SECONDS = 86400.0


def parse_event(
    kind: str, raw: bytes, now: float | None = None, max_future_s: float = MAX_FUTURE_SECONDS
) -> Event:
    """Validate one message of input kind `kind` (`content-events`, `report-events`, `labels`).

    With `now` (wall-clock seconds), an event stamped more than `max_future_s` after it is
    rejected: one event from a broken clock would otherwise move event time for everything
    behind it in its partition.
    """
    model = MODELS.get(kind)
    if model is None:
        raise InvalidEvent("unknown_topic", f"no schema for {kind!r}")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidEvent("too_large", f"{len(raw)} bytes > {MAX_MESSAGE_BYTES}")
    event = fast_event(model, raw)
    try:
        if event is None:
            event = model.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        detail = f"{where}: {first['msg']}" if where else first["msg"]
        raise InvalidEvent(_reason(first), detail) from None
    if now is not None and event.ts > now + max_future_s:
        raise InvalidEvent("invalid_value", f"ts: more than {max_future_s:g} s in the future")
    return event
