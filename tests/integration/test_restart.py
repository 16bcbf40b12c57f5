"""State that outlives its process: workers killed with SIGKILL mid-stream, and a second
worker joining and leaving.

The input is three simulated hours, produced at a steady rate while the workers run, so that
a kill lands mid-stream with state not yet in any checkpoint. Each test compares the alerts
on the alerts topic with one uninterrupted run over the same input (`evaluate`, which
tests/integration/test_worker.py shows is the worker's): the same messages, each once. A
worker that resumed without its baselines would raise warm-up alerts or miss the attacks;
one that replayed without dedup would publish alerts twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.evaluate import evaluate
from streams.files import read_lines
from streams.kafka import produce
from tests.conftest import WorkerProcess
from tests.integration.test_faults import _committed_everything
from tests.integration.test_worker import ACTORS_WARM, comparable, read_topic, sample_metric

pytestmark = pytest.mark.integration

RATE = 1000.0  # events a second: three simulated hours in about 13 s
CHECKPOINT_S = 2.0


def consumed(*workers: WorkerProcess) -> float:
    total = 0.0
    for worker in workers:
        assert worker.process is not None and worker.process.poll() is None, worker.log()
        total += sample_metric(worker.metrics_text(), "abusemon_events_consumed_total")
    return total


def wait(what: str, condition: Any, timeout_s: float, *workers: WorkerProcess) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            logs = "\n".join(w.log() for w in workers)
            raise AssertionError(f"not after {timeout_s} s: {what}\n{logs}")
        time.sleep(0.1)


def produce_in_background(worker: WorkerProcess, path: Path) -> threading.Thread:
    lines = [(topic, value) for _, topic, value in read_lines(path)]
    thread = threading.Thread(
        target=lambda: asyncio.run(produce(worker.settings, lines, RATE)), daemon=True
    )
    thread.start()
    return thread


def kill(worker: WorkerProcess) -> None:
    assert worker.process is not None
    os.kill(worker.process.pid, signal.SIGKILL)
    worker.process.wait()


def check_alerts(worker: WorkerProcess, expected: list[bytes], *alive: WorkerProcess) -> None:
    """Every input committed, then the alerts topic holds exactly the expected messages."""
    settings = worker.settings
    wait(
        "every input offset committed",
        lambda: asyncio.run(_committed_everything(settings)),
        240,
        *alive,
    )
    topic = settings.alerts_topic
    asyncio.run(
        read_topic(settings.bootstrap_servers, topic, lambda v: len(v) >= len(expected), 180)
    )
    # Then once more from the start, a few seconds longer than needed: for any repeat.
    got = asyncio.run(
        read_topic(settings.bootstrap_servers, topic, lambda v: len(v) > len(expected), 5)
    )
    got_counts = Counter(comparable(orjson.loads(v)) for v in got)
    want = Counter(expected)
    extra, missing = got_counts - want, want - got_counts
    listed = "".join(f"\n  extra ×{n}: {a.decode()}" for a, n in extra.items()) + "".join(
        f"\n  missing ×{n}: {a.decode()}" for a, n in missing.items()
    )
    logs = "\n".join(w.log() for w in alive)
    assert not extra and not missing, f"alerts differ from an uninterrupted run:{listed}\n{logs}"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_a_worker_killed_mid_stream_resumes_with_its_state(
    start_worker: Any, simulated: Path, store: str
) -> None:
    """With the table store of the tests, and with production's: RocksDB on local disk,
    which outlives the process, and the changelog's tail after it."""
    worker = start_worker(
        actor_warmup=ACTORS_WARM, checkpoint_s=CHECKPOINT_S, log_level="info", store=store
    )
    expected = [comparable(a) for a in evaluate(simulated, worker.settings).alerts]
    total = sum(1 for _ in read_lines(simulated))
    producer = produce_in_background(worker, simulated)
    # Past the middle: the baselines are learnt and the first attack has begun.
    wait("half the input consumed", lambda: consumed(worker) >= total * 0.55, 240, worker)
    kill(worker)
    worker.start()
    wait("the restarted worker consuming", lambda: consumed(worker) > 0, 120, worker)
    producer.join(timeout=120)
    check_alerts(worker, expected, worker)
    text = worker.metrics_text()
    restored = sample_metric(text, "abusemon_state_restored_total")
    assert restored >= 6, "every input and signal partition should come back from its checkpoint"
    assert sample_metric(text, "abusemon_state_gap_messages_total") == 0, worker.log()


@pytest.mark.timeout(600)
def test_a_second_worker_joins_mid_stream_and_one_is_killed(
    start_worker: Any, simulated: Path
) -> None:
    first = start_worker(actor_warmup=ACTORS_WARM, checkpoint_s=CHECKPOINT_S, log_level="info")
    expected = [comparable(a) for a in evaluate(simulated, first.settings).alerts]
    total = sum(1 for _ in read_lines(simulated))
    producer = produce_in_background(first, simulated)
    wait("a third of the input consumed", lambda: consumed(first) >= total / 3, 240, first)
    second = start_worker(like=first, log_level="info")  # the group rebalances mid-stream
    wait(
        "both workers consuming",
        lambda: sample_metric(second.metrics_text(), "abusemon_events_consumed_total") > 0,
        120,
        first,
        second,
    )
    wait("two thirds consumed", lambda: consumed(first, second) >= total * 2 / 3, 240, first)
    kill(first)  # its partitions go to the second after the session times out
    producer.join(timeout=120)
    check_alerts(second, expected, second)
    text = second.metrics_text()
    assert sample_metric(text, "abusemon_state_restored_total") > 0
    assert sample_metric(text, "abusemon_state_gap_messages_total") == 0, second.log()
