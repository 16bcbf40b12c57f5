"""A seek while the consumer's thread takes the fetched records of the same partition.

Faust runs the aiokafka consumer in a thread of its own, and aiokafka's consumer is not
thread-safe: a seek asked for from the app's loop used to run at once in the app's thread,
and if the consumer's thread was taking the partition's fetched records at that moment,
aiokafka raised `KeyError` in `Fetcher.fetched_records` and the worker stopped fetching
(seen in a rebalance, where a worker seeks its new partitions). The child process
(tests/integration/seek_app.py) holds the consumer's thread at that point and seeks.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from streams.broker import EmbeddedBroker
from tests.conftest import create_topic

pytestmark = pytest.mark.integration

MESSAGES = 400
FIRST = 10  # the first batch
ROOT = Path(__file__).resolve().parents[2]


async def _produce(bootstrap: str, topic: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:  # in record batches of 10, so that the topic is read in many fetches
        for _ in range(count // 10):
            await asyncio.gather(*[await producer.send(topic, b"x" * 100) for _ in range(10)])
    finally:
        await producer.stop()


def _read(out: Path) -> dict[str, Any] | None:
    try:
        return json.loads(out.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def _read_again_to_the_end(state: dict[str, Any] | None) -> bool:
    if state is None or not state["seeked"]:
        return False
    return any(not stale and last == MESSAGES - 1 for _, last, stale in state["batches"][2:])


@pytest.mark.timeout(120)
def test_a_seek_while_the_partition_is_taken_is_done_after_it(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """The worker keeps fetching; the batch being taken when the seek was asked for is
    stale, and the partition is read again from offset 0, in order, to its end."""
    uid = uuid.uuid4().hex[:8]
    topic = f"{uid}-sought"
    asyncio.run(create_topic(broker.bootstrap, topic))
    asyncio.run(_produce(broker.bootstrap, topic, FIRST))
    out, log_path = tmp_path / "batches.json", tmp_path / "seek_app.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.seek_app", broker.url, uid, topic, str(out)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        # The rest once the first batch is handed over: the next records are taken and held.
        deadline = time.monotonic() + 60
        while not (_read(out) or {}).get("batches") and time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text(errors="replace")[-4000:]
            time.sleep(0.1)
        asyncio.run(_produce(broker.bootstrap, topic, MESSAGES - FIRST))
        deadline = time.monotonic() + 60
        while not _read_again_to_the_end(_read(out)) and time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text(errors="replace")[-4000:]
            time.sleep(0.1)
    finally:
        process.kill()
        process.wait()
    log_text = log_path.read_text(errors="replace")
    state = _read(out)
    assert state is not None and _read_again_to_the_end(state), (state, log_text[-4000:])
    assert "Traceback" not in log_text, log_text[-4000:]

    assert state["held"], "no records taken after the first batch"
    batches = state["batches"]
    assert batches[0] == [0, FIRST - 1, False]
    assert batches[1][2], "the batch taken while the seek waited was handed over as current"
    current = [(first, last) for first, last, stale in batches[2:] if not stale]
    assert current[0][0] == 0, "not read again from the seek's offset"
    for (_, last), (first, _) in itertools.pairwise(current):
        assert first == last + 1, f"not in order: {current}"
    assert current[-1][1] == MESSAGES - 1
