"""JSONL event files: `{"topic": ..., "value": {...}}` per line, as written by the simulator.

The bytes a line stands for are `orjson.dumps(value)`, and its Kafka key is the contract's key
field of the value, so replaying a file and evaluating it see the same messages in the same
partitions.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

TOPIC_KEYS = {"content-events": "actor_id", "report-events": "reporter_id", "labels": "subject_id"}


class FileError(ValueError):
    """A file the command cannot use; the message names the file and line."""


def read_lines(path: str | Path) -> Iterator[tuple[int, str, Any]]:
    """Yield (line number, topic, value) for each non-empty line of a JSONL event file."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise FileError(f"{path}: {exc.strerror or exc}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise FileError(f"{path}:{number}: not a JSON object") from None
            if not isinstance(record, dict) or record.get("topic") not in TOPIC_KEYS:
                raise FileError(
                    f'{path}:{number}: expected {{"topic": one of {sorted(TOPIC_KEYS)}, "value": ...}}'
                )
            yield number, record["topic"], record.get("value")


def message_of(topic: str, value: Any) -> tuple[bytes | None, bytes]:
    """The Kafka key and value bytes that stand for one line."""
    key = value.get(TOPIC_KEYS[topic]) if isinstance(value, dict) else None
    return (key.encode() if isinstance(key, str) else None), orjson.dumps(value)


@functools.lru_cache(maxsize=1 << 16)
def partition_for(key: bytes | None, partitions: int) -> int:
    """Kafka's default partitioner (murmur2), as the Java client and aiokafka use it."""
    if key is None:
        return 0
    return (murmur2(key) & 0x7FFFFFFF) % partitions


_M, _MASK = 0x5BD1E995, 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of `data` (`Utils.murmur2` of the Java client): what aiokafka's gives,
    a word at a time rather than byte by byte.

    >>> murmur2(b"u42")
    4001587303
    """
    length = len(data)
    h = 0x9747B28C ^ length
    for k in struct.unpack_from(f"<{length >> 2}I", data):
        k = (k * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    tail = length & ~3
    extra = length & 3
    if extra:
        if extra == 3:
            h ^= data[tail + 2] << 16
        if extra >= 2:
            h ^= data[tail + 1] << 8
        h = ((h ^ data[tail]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)
