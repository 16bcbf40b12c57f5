"""Plain aiokafka helpers for the commands around the worker: topic set-up, replay, tailing.

Every client takes its security options (TLS, SASL) from `Settings.kafka_client_options()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.files import message_of, read_lines
from streams.settings import Settings


async def ensure_topics(settings: Settings, topics: dict[str, int]) -> None:
    """Create the topics that do not exist yet, with the given partition counts."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, **settings.kafka_client_options()
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, num_partitions=count, replication_factor=settings.replication_factor)
            for name, count in topics.items()
            if name not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # created meanwhile
                await admin.create_topics(wanted)
    finally:
        await admin.close()


def input_topics(settings: Settings) -> dict[str, str]:
    """Contract topic name -> the configured name."""
    return {
        "content-events": settings.content_topic,
        "report-events": settings.report_topic,
        "labels": settings.labels_topic,
    }


async def ensure_input_topics(settings: Settings) -> None:
    topics = {name: settings.input_partitions for name in input_topics(settings).values()}
    topics[settings.alerts_topic] = settings.partitions
    await ensure_topics(settings, topics)


async def produce(
    settings: Settings,
    messages: Iterable[tuple[str, object]],
    rate: float | None = None,
) -> int:
    """Produce (contract topic, value) pairs in order; `rate` caps messages per second."""
    names = input_topics(settings)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        linger_ms=5,
        **settings.kafka_client_options(),
    )
    await producer.start()
    sent = 0
    started = time.monotonic()
    try:
        for topic, value in messages:
            key, raw = message_of(topic, value)
            await producer.send(names[topic], value=raw, key=key)
            sent += 1
            if rate and sent % 100 == 0:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def replay(path: str | Path, settings: Settings, rate: float | None = None) -> int:
    await ensure_input_topics(settings)
    lines = ((topic, value) for _, topic, value in read_lines(path))
    return await produce(settings, lines, rate)


async def tail(settings: Settings, topic: str, group: str | None = None) -> AsyncIterator[bytes]:
    """Every message value of `topic` from the beginning, as it arrives."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=group,
        auto_offset_reset="earliest",
        **settings.kafka_consumer_options(),
    )
    await consumer.start()
    try:
        async for message in consumer:
            if message.value is not None:
                yield message.value
    finally:
        await consumer.stop()
