"""A changelog-backed Faust table across SIGKILL and restart: no update lost.

The worker is tests/integration/table_counter_app.py: one agent counts the messages of each
key in a table (`memory://` store, so a restart rebuilds it from the changelog). Under
at-least-once delivery a count may come out above the number of messages (events after the
last commit are processed again), never below it: a count below is a lost update.

See docs/state.md for the two ways Faust 0.15 loses updates here and the transport
(`streams.faust_kafka`) that prevents them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from streams.broker import EmbeddedBroker
from streams.faust_kafka import log_end_offsets
from tests.conftest import create_topic

pytestmark = pytest.mark.integration

PARTITIONS = 3
KEYS = 40
MESSAGES = 800
ROOT = Path(__file__).resolve().parents[2]


async def _produce(bootstrap: str, topic: str, count: int) -> dict[int, int]:
    """`count` messages over KEYS keys, in batches as a busy producer sends them; the end
    offset of each partition."""
    await create_topic(bootstrap, topic, PARTITIONS)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        sent = [await producer.send(topic, b"1", key=f"k{i % KEYS}".encode()) for i in range(count)]
        metadata = await asyncio.gather(*sent)
    finally:
        await producer.stop()
    ends: dict[int, int] = {}
    for record in metadata:
        ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)
    return ends


async def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        return {
            p: await consumer.committed(TopicPartition(topic, p)) or 0 for p in range(PARTITIONS)
        }
    finally:
        await consumer.stop()


async def _end_offsets(bootstrap: str, topic: str) -> tuple[int, int, int]:
    """One partition, 2 single-record batches then one of 10 records: (records written,
    ListOffsets' end offset, `log_end_offsets`')."""
    await create_topic(bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=50)
    await producer.start()
    try:
        for size in (1, 1, 10):
            await asyncio.gather(*[await producer.send(topic, b"x") for _ in range(size)])
    finally:
        await producer.stop()
    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        listed = (await consumer.end_offsets([tp]))[tp]
        checked = (await log_end_offsets(consumer, {tp: listed}))[tp]
    finally:
        await consumer.stop()
    return 12, listed, checked


def test_log_end_offsets_counts_the_last_batch_whole(broker: EmbeddedBroker) -> None:
    """The embedded broker's ListOffsets answers the last batch's base offset plus one (3
    here, not 12); `log_end_offsets`, which Faust's table recovery uses through
    `streams.faust_kafka`, answers 12. If the broker is fixed, the first assertion fails:
    then the check can go."""
    written, listed, checked = asyncio.run(
        _end_offsets(broker.bootstrap, f"{uuid.uuid4().hex[:8]}-ends")
    )
    assert listed < written, "ListOffsets is right now: see docs/state.md"
    assert checked == written


class Counters:
    """The counting worker in a child process, started again as often as needed."""

    def __init__(self, broker: EmbeddedBroker, tmp_path: Path) -> None:
        uid = uuid.uuid4().hex[:8]
        self.broker = broker
        self.app_id = f"table-{uid}"
        self.topic = f"{uid}-counted"
        self.out = tmp_path / "counts.json"
        self.log_path = tmp_path / "counter.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, delay_s: float) -> None:
        self.out.unlink(missing_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.integration.table_counter_app",
                    self.broker.url,
                    self.app_id,
                    self.topic,
                    str(self.out),
                    f"--partitions={PARTITIONS}",
                    f"--delay={delay_s}",
                ],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def counts(self) -> Counter[str] | None:
        """The table as last written, once recovered; None before."""
        try:
            return Counter(json.loads(self.out.read_text())["counts"])
        except (OSError, ValueError):
            return None

    def wait(self, what: str, condition: Callable[[Counter[str]], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            counts = self.counts()
            if counts is not None and condition(counts):
                return
            assert self.process is not None and self.process.poll() is None, self.log()
            assert time.monotonic() < deadline, f"not after {timeout_s} s: {what}\n{self.log()}"
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@pytest.fixture
def counters(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[Counters]:
    running = Counters(broker, tmp_path)
    yield running
    running.kill()


def _lost(counts: Counter[str], expected: Counter[str]) -> dict[str, int]:
    return {key: n - counts[key] for key, n in expected.items() if counts[key] < n}


@pytest.mark.timeout(180)
def test_table_counts_survive_sigkill_and_restart(counters: Counters) -> None:
    """Killed mid-stream, then again once everything is committed: every count is at least
    its number of messages, and the second restart rebuilds at least the table it killed."""
    bootstrap = counters.broker.bootstrap
    ends = asyncio.run(_produce(bootstrap, counters.topic, MESSAGES))
    expected = Counter(f"k{i % KEYS}" for i in range(MESSAGES))

    # Killed mid-stream: what it did after its last commit is done again after the restart.
    counters.start(delay_s=0.003)
    counters.wait("a third counted", lambda c: c.total() >= MESSAGES // 3, 60)
    counters.kill()

    # The rest as a backlog, at full speed: many changelog records to a produce request.
    counters.start(delay_s=0)
    counters.wait("every message counted", lambda c: c.total() >= MESSAGES, 60)
    deadline = time.monotonic() + 30
    while (
        committed := asyncio.run(_committed(bootstrap, counters.app_id, counters.topic))
    ) != ends:
        assert time.monotonic() < deadline, f"committed {committed}, not {ends}\n{counters.log()}"
        time.sleep(0.2)
    time.sleep(0.5)  # one more write of the table, after the last commit
    before = counters.counts()
    assert before is not None
    assert not _lost(before, expected), f"lost after the first restart: {_lost(before, expected)}"

    # Killed with everything committed: nothing is processed again, the table is rebuilt
    # from its changelog alone.
    counters.kill()
    counters.start(delay_s=0)
    # Every partition assigned and its table recovered: nothing is left to process.
    counters.wait("the table recovered", lambda c: set(c) == set(expected), 60)
    after = counters.counts()
    assert after is not None
    lost = _lost(after, expected)
    assert not lost, f"updates lost in recovery: {lost} of {MESSAGES}"
    lost = _lost(after, before)
    assert not lost, f"recovery lost counts the table had when killed: {lost}"
