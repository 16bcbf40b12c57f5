"""Bytes on the wire for what the worker writes: dead letters, alerts, and the internal
signal-partials topic that carries stage-1 window counts to the partition owning each signal.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson

from detectors.events import format_rfc3339
from detectors.windows import Partial, Watermark

# Dead letters carry the original bytes whole up to this size (base64 makes them a third
# larger); beyond it, the head and a digest of the whole. The producer and the dead-letter
# topics allow messages of DEAD_LETTER_MAX_BYTES.
MAX_ORIGINAL_BYTES = 4 * 1024 * 1024
DEAD_LETTER_MAX_BYTES = 8 * 1024 * 1024


def dead_letter(
    reason: str,
    detail: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    now: float,
    keep_bytes: int = MAX_ORIGINAL_BYTES,
) -> bytes:
    """The dead-letter record: the original bytes (base64), where they came from, and why."""
    value = value or b""
    record: dict[str, Any] = {
        "reason": reason,
        "detail": detail,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key_base64": base64.b64encode(key).decode() if key is not None else None,
        "value_base64": base64.b64encode(value[:keep_bytes]).decode(),
        "dead_lettered_at": format_rfc3339(now),
    }
    if len(value) > keep_bytes:
        record["value_truncated"] = True
        record["value_bytes"] = len(value)
        record["value_sha256"] = hashlib.sha256(value).hexdigest()
    return orjson.dumps(record)


def encode_partial(partial: Partial) -> bytes:
    return orjson.dumps(
        {
            "type": "partial",
            "source": partial.source,
            "signal": partial.signal,
            "window_start": partial.window_start,
            "count": partial.count,
            "sample_ids": partial.sample_ids,
        }
    )


def encode_watermark(mark: Watermark) -> bytes:
    return orjson.dumps(
        {
            "type": "watermark",
            "group": mark.group,
            "source": mark.source,
            "sources": mark.sources,
            "closed_until": mark.closed_until,
        }
    )


def decode_signal_message(raw: bytes) -> Partial | Watermark:
    data: dict[str, Any] = orjson.loads(raw)
    if data["type"] == "partial":
        return Partial(
            data["source"],
            data["signal"],
            float(data["window_start"]),
            int(data["count"]),
            tuple(data["sample_ids"]),
        )
    return Watermark(
        data["group"], data["source"], int(data["sources"]), float(data["closed_until"])
    )


def encode_alert(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)
