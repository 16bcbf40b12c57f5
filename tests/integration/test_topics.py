"""First contact with a cluster: the worker's topics checked before it joins its group.

A new user starts the worker before the input topics exist and the producers after it; or
the topics exist already, made by someone else with another partition count.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.broker import EmbeddedBroker
from streams.settings import Settings
from streams.topics import partition_counts
from tests.conftest import WorkerProcess, worker_settings
from tests.integration.test_worker import sample_metric

pytestmark = pytest.mark.integration


def environment(broker: EmbeddedBroker, **overrides: object) -> tuple[Settings, dict[str, str]]:
    """A fresh app id and topics, none of them created."""
    variables = worker_settings(broker, **overrides)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABUSEMON_")}
    env.update(variables)
    settings = Settings(**{k.removeprefix("ABUSEMON_").lower(): v for k, v in variables.items()})  # type: ignore[arg-type]
    return settings, env


async def counts(broker: EmbeddedBroker) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        return await partition_counts(admin)
    finally:
        await admin.close()


async def create(broker: EmbeddedBroker, names: list[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1) for name in names])
    finally:
        await admin.close()


async def send_plain(broker: EmbeddedBroker, topic: str, values: list[bytes]) -> None:
    """As any producer does: no topic set-up first, so the broker creates a missing topic
    with its own partition count."""
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()


def wait_for(condition: Any, what: str, worker: WorkerProcess, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if worker.process is not None and worker.process.poll() is not None:
            raise AssertionError(f"the worker exited while waiting for {what}:\n{worker.log()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what}:\n{worker.log()}")
        time.sleep(0.3)


EVENT = b'{"event_id": "e%d", "ts": "2026-11-24T00:00:00Z", "actor_id": "a%d", "kind": "post"}'


def test_worker_started_before_its_topics_then_producers(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    # The broker creates a topic a producer sends to with 4 partitions: not the worker's 3.
    settings, env = environment(broker, input_partitions=3, partitions=3)
    worker = WorkerProcess(settings, env, tmp_path / "worker.log").start()
    try:
        wait_for(
            lambda: settings.content_topic in asyncio.run(counts(broker)),
            "input topics",
            worker,
        )
        events = [EVENT % (i, i) for i in range(20)]
        asyncio.run(send_plain(broker, settings.content_topic, [*events, b"not json"]))
        asyncio.run(send_plain(broker, settings.report_topic, [b"{}"]))

        def consumed() -> bool:
            text = worker.metrics_text()
            return sample_metric(text, "abusemon_events_consumed_total") == len(events) + 2

        wait_for(consumed, "events consumed", worker)
        text = worker.metrics_text()
        assert sample_metric(text, "abusemon_events_processed_total") == len(events)
        assert sample_metric(text, "abusemon_events_dead_lettered_total") == 2
        found = asyncio.run(counts(broker))
        inputs = [settings.content_topic, settings.report_topic, settings.labels_topic]
        assert [found[name] for name in inputs] == [3, 3, 3]
        assert found[f"{settings.app_id}-ingest-state-changelog"] == 3
        assert found[f"{settings.content_topic}.dlq"] == 3 and found[settings.alerts_topic] == 3
        assert worker.process is not None and worker.process.poll() is None
        assert "Traceback" not in worker.log()
        assert "created input topics" in worker.log()
    finally:
        worker.stop()


def test_worker_waits_for_topics_it_may_not_create(broker: EmbeddedBroker, tmp_path: Path) -> None:
    settings, env = environment(broker, create_topics="false")
    worker = WorkerProcess(settings, env, tmp_path / "worker.log").start()
    try:
        wait_for(lambda: "waiting for input topics" in worker.log(), "waiting message", worker)
        assert settings.content_topic not in asyncio.run(counts(broker))
        names = [settings.content_topic, settings.report_topic, settings.labels_topic]
        asyncio.run(create(broker, names, settings.input_partitions))

        def ready() -> bool:
            text = worker.metrics_text()
            return sample_metric(text, "abusemon_assigned_partitions") > 0

        wait_for(ready, "partitions assigned", worker)
        assert "Traceback" not in worker.log()
        assert worker.log().count("waiting for input topics") == 1  # once a minute at most
    finally:
        worker.stop()


def run_worker(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_topics_made_with_another_count_end_the_worker_with_the_fix(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    settings, env = environment(broker, input_partitions=3)
    names = [settings.content_topic, settings.report_topic, settings.labels_topic]
    asyncio.run(create(broker, names, 2))
    done = run_worker(env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"abuse-monitor: error: topics {', '.join(names)} have 2 partitions but "
        "ABUSEMON_INPUT_PARTITIONS is 3; fix: set ABUSEMON_INPUT_PARTITIONS=2, or add "
        "partitions: abuse-monitor topics grow --partitions 3"
    ]

    # The fix it names: the worker then starts, and its changelog follows the inputs.
    env["ABUSEMON_INPUT_PARTITIONS"] = "2"
    fixed = WorkerProcess(settings, env, tmp_path / "worker.log")
    fixed.start()
    try:
        changelog = f"{settings.app_id}-ingest-state-changelog"
        wait_for(lambda: changelog in asyncio.run(counts(broker)), "changelog", fixed)
        assert asyncio.run(counts(broker))[changelog] == 2
    finally:
        fixed.stop()

    # A changelog made with 2 and inputs grown to 3 meanwhile (here: made again with 3).
    others, env = environment(broker, input_partitions=3, app_id=settings.app_id)
    names = [others.content_topic, others.report_topic, others.labels_topic]
    asyncio.run(create(broker, names, 3))
    done = run_worker(env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"abuse-monitor: error: topic {changelog} has 2 partitions but {names[0]} has 3 "
        "(ABUSEMON_INPUT_PARTITIONS is 3); fix: abuse-monitor topics grow --partitions 3"
    ]
