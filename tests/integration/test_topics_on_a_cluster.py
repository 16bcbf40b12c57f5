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

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.broker import EmbeddedBroker
from streams.evaluate import evaluate
from streams.kafka import replay
from streams.settings import Settings
from streams.topics import partition_counts
from tests.conftest import WorkerProcess, assert_valid, worker_settings
from tests.integration.test_worker import ACTORS_WARM, read_topic, sample_metric

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
        dead = asyncio.run(
            read_topic(broker.bootstrap, f"{settings.content_topic}.dlq", lambda v: v, 30)
        )
        assert [orjson.loads(v)["reason"] for v in dead] == ["invalid_json"]
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


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_topics_check_on_a_healthy_and_a_broken_cluster(
    broker: EmbeddedBroker, start_worker: Any
) -> None:
    worker = start_worker(checkpoint_s=2)
    settings = worker.settings
    asyncio.run(send_plain(broker, settings.content_topic, [EVENT % (i, i) for i in range(5)]))

    def committed() -> bool:  # the worker commits at its checkpoints
        listing = cli(worker.env, "topics").stdout
        return f"{settings.app_id} 0" in listing.split(settings.content_topic, 1)[1].split("\n")[0]

    wait_for(committed, "offsets committed", worker, timeout_s=120)
    done = cli(worker.env, "topics")
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith(settings.content_topic))
    assert row.split()[1:5] == ["input", "3", "3", "5"], done.stdout
    assert "problem" not in done.stdout
    healthy = cli(worker.env, "topics", "check")
    assert (healthy.returncode, healthy.stdout, healthy.stderr) == (0, "topics ok\n", "")

    # Broken: another deployment's inputs made with 2 partitions, and one missing.
    broken, env = environment(broker, input_partitions=3, create_topics="false")
    asyncio.run(create(broker, [broken.content_topic, broken.report_topic], 2))
    done = cli(env, "topics", "check")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"abuse-monitor: topics: topics {broken.content_topic}, {broken.report_topic} have 2 "
        "partitions but ABUSEMON_INPUT_PARTITIONS is 3; fix: set ABUSEMON_INPUT_PARTITIONS=2, "
        "or add partitions: abuse-monitor topics grow --partitions 3",
        f"abuse-monitor: topics: topic {broken.labels_topic} does not exist and "
        "ABUSEMON_CREATE_TOPICS is false; fix: create it with 3 partitions "
        "(ABUSEMON_INPUT_PARTITIONS)",
    ]


def test_tail_reads_alerts_and_dead_letters(
    broker: EmbeddedBroker, start_worker: Any, simulated: Path
) -> None:
    worker = start_worker(actor_warmup=ACTORS_WARM)
    settings, env = worker.settings, worker.env
    bad = [b"not json", b"[1, 2]"]
    asyncio.run(send_plain(broker, settings.content_topic, bad))
    asyncio.run(replay(simulated, settings))
    expected = evaluate(simulated, settings).alerts
    alerts = asyncio.run(
        read_topic(broker.bootstrap, settings.alerts_topic, lambda v: len(v) >= len(expected), 120)
    )
    dead = asyncio.run(
        read_topic(broker.bootstrap, f"{settings.content_topic}.dlq", lambda v: len(v) >= 2, 60)
    )

    # To the end and no further: every alert, as published, one JSON line each.
    done = cli(env, "tail", "alerts")
    assert done.returncode == 0, done.stderr
    lines = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert_valid(settings.alerts_topic, done.stdout.encode().splitlines())
    assert sorted(lines, key=orjson.dumps) == sorted(map(orjson.loads, alerts), key=orjson.dumps)

    detector = expected[0]["detector"]
    done = cli(env, "tail", "alerts", "--detector", detector, "--severity", "warning")
    chosen = [orjson.loads(line) for line in done.stdout.splitlines()]
    want = [a for a in lines if a["detector"] == detector and a["severity"] == "warning"]
    assert chosen and sorted(chosen, key=orjson.dumps) == sorted(want, key=orjson.dumps)

    entity = expected[-1]["entity"]["id"]
    done = cli(env, "tail", "alerts", "--entity", entity, "--limit", "1", "--format", "text")
    assert done.returncode == 0 and done.stdout.count("\n") == 2, done.stdout
    assert f" on {expected[-1]['entity']['type']} {entity}\n" in done.stdout

    done = cli(env, "tail", "dlq")
    records = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert [r["reason"] for r in records] == ["invalid_json", "not_an_object"]
    assert records == [orjson.loads(v) for v in dead]

    # Following: a dead letter made after it started is printed, then --limit ends it.
    follower = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "tail", "dlq", "--follow", "--limit", "3"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        asyncio.run(send_plain(broker, settings.report_topic, [b"{}"]))
        out, err = follower.communicate(timeout=120)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 0, err
    followed = [orjson.loads(line) for line in out.splitlines()]
    assert followed[:2] == records and followed[2]["reason"] == "missing_field"

    done = cli(env, "tail", "no-such-topic")
    assert (done.returncode, done.stderr) == (
        2,
        "abuse-monitor: error: no such topic: no-such-topic\n",
    )


def test_topics_grow_says_what_the_broker_cannot_do(broker: EmbeddedBroker) -> None:
    # Tansu has no CreatePartitions request: the command says so in one line.
    settings, env = environment(broker, input_partitions=3)
    names = [settings.content_topic, settings.report_topic, settings.labels_topic]
    asyncio.run(create(broker, names, 2))
    done = cli(env, "topics", "grow", "--partitions", "3")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"abuse-monitor: error: topics grow: the brokers at {broker.bootstrap} cannot add "
        "partitions (no CreatePartitions request); add them with the cluster's own tools\n"
    )
    done = cli(env, "topics", "grow", "--partitions", "1")
    assert done.returncode == 2
    assert done.stderr == (
        f"abuse-monitor: error: topics grow: topic {names[0]} has 2 partitions, more than 1: "
        "partitions cannot be removed\n"
    )
    assert asyncio.run(counts(broker))[names[0]] == 2
