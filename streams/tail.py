"""`abuse-monitor tail`: the records of a topic, from the beginning, to the end or following.

Any Kafka consumer reads the topics; this one needs nothing but the package, and reads with
no consumer group (it commits nothing and moves no group's offsets).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.faust_kafka import log_end_offsets
from streams.settings import Settings
from streams.topics import dead_letter_names

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class NoSuchTopic(Exception):
    """A topic to read that the cluster does not have."""


def topics_of(settings: Settings, name: str) -> list[str]:
    """`alerts`, `labels` and `dlq` (every dead-letter topic) by their configured names;
    anything else is a topic name."""
    return {
        "alerts": [settings.alerts_topic],
        "labels": [settings.labels_topic],
        "dlq": dead_letter_names(settings),
    }.get(name, [name])


@dataclass(frozen=True)
class Filter:
    """Records to print: every given field must match (None: any)."""

    detector: str | None = None
    severity: str | None = None
    entity: str | None = None

    def __call__(self, record: Any, key: bytes | None) -> bool:
        if not isinstance(record, dict):
            return self == Filter()
        if self.detector is not None and record.get("detector") != self.detector:
            return False
        if self.severity is not None and record.get("severity") != self.severity:
            return False
        return self.entity is None or self.entity in _entities(record, key)


def _entities(record: dict[str, Any], key: bytes | None) -> set[str]:
    """What `--entity` matches: an alert's entity, a label's subject, a dead letter's key
    (the account of a content event, the reporter of a report), the message key."""
    found = set()
    entity = record.get("entity")
    if isinstance(entity, dict) and isinstance(entity.get("id"), str):
        found.add(entity["id"])
    for field in ("subject_id", "actor_id", "reporter_id"):
        if isinstance(record.get(field), str):
            found.add(record[field])
    dead_key = record.get("key_base64")
    if isinstance(dead_key, str):
        with contextlib.suppress(binascii.Error):
            found.add(base64.b64decode(dead_key, validate=True).decode("utf-8", "replace"))
    if key is not None:
        found.add(key.decode("utf-8", "replace"))
    return found


def printable(text: object) -> str:
    """Text written by anyone, safe on a terminal: control and bidirectional characters
    are shown escaped."""
    return _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], str(text))


def as_text(record: Any) -> str:
    """One record as people read it: alerts as the demo prints them, dead letters and
    labels in one line; anything else as JSON."""
    from streams.demo import format_alert

    if isinstance(record, dict) and {"detector", "entity", "summary"} <= record.keys():
        return format_alert(record)
    if isinstance(record, dict) and {"reason", "value_base64"} <= record.keys():
        return printable(
            f"{record.get('dead_lettered_at')} {record.get('topic')}/{record.get('partition')}"
            f"@{record.get('offset')} {record.get('reason')}: {record.get('detail')}"
        )
    if isinstance(record, dict) and {"verdict", "subject_id"} <= record.keys():
        return printable(
            f"{record.get('ts')} {record.get('verdict')} {record.get('subject_type')} "
            f"{record.get('subject_id')} by {record.get('labeler')}"
        )
    return orjson.dumps(record).decode()


async def tail(
    settings: Settings,
    name: str,
    write: Callable[[str], None],
    follow: bool = False,
    limit: int | None = None,
    keep: Filter = Filter(),
    text: bool = False,
) -> int:
    """Print the records of `name`'s topics from the beginning, one line each, until the
    end (or, with `follow`, as they come) or `limit` records; returns how many."""
    topics = topics_of(settings, name)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        **settings.kafka_consumer_options(),
    )
    await consumer.start()
    try:
        existing = await consumer.topics()  # every topic: naming one may make the broker create it
        missing = [topic for topic in topics if topic not in existing]
        if missing and (name != "dlq" or len(missing) == len(topics)):
            raise NoSuchTopic(f"no such topic: {', '.join(missing)}")
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            if topic in existing
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        ends = await log_end_offsets(consumer, await consumer.end_offsets(partitions))
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        printed = 0
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            for tp in sorted(batches):
                for message in batches[tp]:
                    record = _decode(message.value, message)
                    if not keep(record, message.key):
                        continue
                    write(as_text(record) if text else orjson.dumps(record).decode())
                    printed += 1
                    if limit is not None and printed >= limit:
                        return printed
            if not follow and not batches and await _at_end(consumer, ends):
                return printed
    finally:
        await consumer.stop()


async def _at_end(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


def _decode(value: bytes | None, message: Any) -> Any:
    """The record of a message: its JSON, or where it is not JSON, where it is and its bytes."""
    if value is not None:
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            pass
    return {
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "value_base64": None if value is None else base64.b64encode(value).decode(),
    }
