"""Shared fixtures: a real Kafka-protocol broker for the session, worker processes, and a
PostgreSQL server (tests/postgres.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from hypothesis import settings as hypothesis_settings

from simulator import SimConfig, write_files
from streams.broker import EmbeddedBroker, free_port
from streams.kafka import ensure_input_topics
from streams.schema import shipped
from streams.settings import Settings
from tests.postgres import postgres_server, postgres_url  # noqa: F401 (fixtures)

# CI runs the same examples every time; a developer's run explores new ones.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None)
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")


async def create_topic(bootstrap: str, topic: str, partitions: int = 1) -> None:
    """Create a topic on the broker at `bootstrap`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, replication_factor=1)])
    finally:
        await admin.close()


def schema_of_topic(topic: str) -> str | None:
    """The record schema of one of the test topics (`worker_settings`' names), by its name."""
    for suffix, name in (
        (".dlq", "dead-letter"),
        ("alerts", "alert"),
        ("labels", "label"),
        ("content-events", "content-event"),
        ("report-events", "report-event"),
    ):
        if topic.endswith(suffix):
            return name
    return None


def assert_valid(topic: str, values: list[bytes]) -> None:
    """Every record read from `topic` is valid under its shipped JSON Schema."""
    name = schema_of_topic(topic)
    assert name is not None, f"no schema for topic {topic}"
    validator = jsonschema.Draft202012Validator(
        orjson.loads(shipped(name)), format_checker=jsonschema.FormatChecker()
    )
    for value in values:
        validator.validate(orjson.loads(value))


def attack_hours(seed: int = 11) -> SimConfig:
    """Three simulated hours, small enough for an integration test: a 3,000-account population,
    and an attack every 25 minutes from the middle on, every kind in turn."""
    return SimConfig(
        seed=seed,
        duration_s=3 * 3600.0,
        rate=1.5,
        actors=3000,
        first_attack_s=5400.0,
        attack_every_s=1500.0,
    )


@pytest.fixture(scope="session")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The events of `attack_hours()`, as a file of the contract's lines."""
    path = tmp_path_factory.mktemp("sim") / "events.jsonl"
    write_files(path, attack_hours())
    return path


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        yield running


@dataclass
class WorkerProcess:
    """`abuse-monitor worker` in a child process, with its own topics and consumer group."""

    settings: Settings
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    metrics_url: str = field(init=False)

    def __post_init__(self) -> None:
        self.metrics_url = f"http://127.0.0.1:{self.settings.metrics_port}/metrics"

    def start(self) -> WorkerProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.metrics_url, timeout=1).read()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not start:\n{self.log()}") from None
                time.sleep(0.1)

    def metrics_text(self) -> str:
        text: str = urllib.request.urlopen(self.metrics_url, timeout=5).read().decode()
        return text

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def worker_settings(broker: EmbeddedBroker, **overrides: object) -> dict[str, str]:
    """Environment for a worker with a fresh app id, topics and metrics port."""
    uid = uuid.uuid4().hex[:8]
    values: dict[str, object] = {
        "broker": broker.url,
        "app_id": f"test-{uid}",
        "content_topic": f"{uid}-content-events",
        "report_topic": f"{uid}-report-events",
        "labels_topic": f"{uid}-labels",
        "alerts_topic": f"{uid}-alerts",
        "input_partitions": 3,
        "partitions": 3,
        "metrics_host": "127.0.0.1",
        "metrics_port": free_port(),
        "session_timeout_s": 6,
        "heartbeat_interval_s": 1,
        "rebalance_timeout_s": 4,
        "data_dir": f"/tmp/abuse-monitor-test-{uid}",
        "log_level": "warning",
        **overrides,
    }
    return {f"ABUSEMON_{key.upper()}": str(value) for key, value in values.items()}


@pytest.fixture
def start_worker(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[object]:
    started: list[WorkerProcess] = []

    def start(
        like: WorkerProcess | None = None, on: EmbeddedBroker | None = None, **overrides: object
    ) -> WorkerProcess:
        """A worker with fresh topics and group, or another member of `like`'s group; on the
        session's broker unless `on` another."""
        if like is not None:
            overrides = {
                k.removeprefix("ABUSEMON_").lower(): v
                for k, v in like.env.items()
                if k.startswith("ABUSEMON_") and k != "ABUSEMON_BROKER"
            } | {"metrics_port": free_port(), **overrides}
        variables = worker_settings(on or broker, **overrides)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ABUSEMON_")}
        env.update(variables)
        settings = Settings(
            **{k.removeprefix("ABUSEMON_").lower(): v for k, v in variables.items()}
        )  # type: ignore[arg-type]
        asyncio.run(ensure_input_topics(settings))  # as operators create them, before workers
        worker = WorkerProcess(settings, env, tmp_path / f"worker-{len(started)}.log").start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
