"""How long a consumer waiting in a fetch takes to receive a new message, by fetch wait and by
the number of partitions fetched, on the embedded broker.

    PYTHONPATH=. python bench/fetch_wait.py

Plain aiokafka, no worker: a consumer reads a topic to its end, then a producer sends one
message every 137 ms (so the consumer is inside a waiting fetch) and the time from send to
receipt is printed. The Kafka protocol has the broker answer a waiting fetch once it has
`fetch.min.bytes` (1) for any of its partitions. The embedded broker (Tansu 0.6) does so for
a fetch of one partition; a fetch of several it answered only about halfway to its deadline
(`fetch_max_wait_ms`) however early the message came: 0.7 s after the send with the 1.5 s
wait Faust gives its consumers. Each hop of a window's close through the worker's internal
topic (4 partitions) waited that long (docs/scaling.md, "Fetch wait").
"""

from __future__ import annotations

import asyncio
import statistics
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.broker import EmbeddedBroker

SENDS = 8


async def receive_times(bootstrap: str, wait_ms: int, partitions: int) -> list[float]:
    """Seconds from each send to its receipt, with one consumer of `partitions` partitions."""
    topic = f"fetch-wait-{wait_ms}-{partitions}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, fetch_max_wait_ms=wait_ms, auto_offset_reset="earliest"
    )
    await producer.start()
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        for p in range(partitions):
            await producer.send_and_wait(topic, b"first", partition=p)
        read = 0
        while read < partitions:
            batches = await consumer.getmany(timeout_ms=5000)
            read += sum(len(records) for records in batches.values())
        times = []
        for i in range(SENDS):
            await asyncio.sleep(0.137)
            sent = time.perf_counter()
            await producer.send_and_wait(topic, b"next", partition=i % partitions)
            await consumer.getone()
            times.append(time.perf_counter() - sent)
        return times
    finally:
        await consumer.stop()
        await producer.stop()


def main() -> None:
    print("| fetch_max_wait_ms | partitions | send to receipt, median | max |")
    print("|---:|---:|---:|---:|")
    with EmbeddedBroker() as broker:
        for wait_ms in (1500, 500, 100):
            for partitions in (1, 4):
                times = asyncio.run(receive_times(broker.bootstrap, wait_ms, partitions))
                median, longest = statistics.median(times) * 1000, max(times) * 1000
                print(f"| {wait_ms} | {partitions} | {median:.0f} ms | {longest:.0f} ms |")


if __name__ == "__main__":
    main()
