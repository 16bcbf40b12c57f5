"""Faults: the broker restarting under a live worker.

The broker of these tests is not the session's: it is stopped and started again on the same
port. Tansu keeps its data in memory unless given another storage engine, and the build in
the wheel has one, S3; an S3 server (moto's, in its own process) outlives the broker, so the
restarted broker has its topics, messages and committed offsets back, as a Kafka cluster has.

The other faults of a worker are tested beside their code: Alertmanager unreachable in
tests/streams/test_alertmanager.py (pushes retried with backoff, alerts queued while it is
down and delivered once it is up, `submit` never waiting on the network), the alert store
failing in tests/streams/test_store_outage.py.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from simulator import write_files
from streams.broker import EmbeddedBroker, free_port, wait_for_port
from streams.evaluate import evaluate
from streams.faust_kafka import log_end_offsets
from streams.kafka import produce
from streams.settings import Settings
from tests.conftest import attack_hours
from tests.integration.test_worker import ACTORS_WARM, comparable, read_topic, sample_metric

pytestmark = pytest.mark.integration

OUTAGE_S = 30.0


@pytest.fixture
def s3_server(tmp_path: Path) -> Iterator[dict[str, str]]:
    """moto's S3 server on a free loopback port with a `tansu` bucket; yields the variables
    that point Tansu's S3 storage engine at it."""
    port = free_port()
    log = open(tmp_path / "s3.log", "wb")  # noqa: SIM115 - the child owns it
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for_port("127.0.0.1", port, 60)
        endpoint = f"http://127.0.0.1:{port}"
        urllib.request.urlopen(
            urllib.request.Request(f"{endpoint}/tansu", method="PUT"), timeout=10
        ).read()
        yield {
            "AWS_ENDPOINT": endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


@pytest.fixture
def durable_broker(s3_server: dict[str, str]) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(storage="s3://tansu/", storage_env=s3_server)
    broker.start(timeout_s=30)
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Three simulated hours, and the same lines cut in two after 65 % of them: before and
    after the outage. Attacks start halfway, so both parts raise alerts."""
    root = tmp_path_factory.mktemp("faults")
    whole = root / "events.jsonl"
    write_files(whole, attack_hours())
    lines = whole.read_bytes().splitlines(keepends=True)
    cut = len(lines) * 65 // 100
    before, after = root / "before.jsonl", root / "after.jsonl"
    before.write_bytes(b"".join(lines[:cut]))
    after.write_bytes(b"".join(lines[cut:]))
    return whole, before, after


def _lines(path: Path) -> list[tuple[str, Any]]:
    return [
        (record["topic"], record["value"])
        for record in map(orjson.loads, path.read_bytes().splitlines())
    ]


def _probe(url: str) -> int:
    try:
        status: int = urllib.request.urlopen(url, timeout=5).status
        return status
    except urllib.error.HTTPError as error:
        return error.code


async def _committed_everything(settings: Settings) -> bool:
    """Whether the worker's group has committed every message of its input and stage-2
    topics."""
    inputs = (settings.content_topic, settings.report_topic, settings.labels_topic)
    partitions = [TopicPartition(t, p) for t in inputs for p in range(settings.input_partitions)]
    partitions += [TopicPartition(settings.signal_topic, p) for p in range(settings.partitions)]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=settings.app_id,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        ends = await log_end_offsets(consumer, await consumer.end_offsets(partitions))
        for tp in partitions:
            if ends[tp] and (await consumer.committed(tp) or 0) < ends[tp]:
                return False
        return True
    finally:
        await consumer.stop()


def _wait(what: str, condition: Any, timeout_s: float, worker: Any) -> float:
    """Wait until `condition()` holds; the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"not after {timeout_s} s: {what}\n{worker.log()}")
        time.sleep(0.5)
    return time.monotonic() - started


@pytest.mark.timeout(900)  # a 30 s outage and three simulated hours, on a shared machine
def test_worker_rides_out_a_broker_restart(
    durable_broker: EmbeddedBroker, start_worker: Any, events: tuple[Path, Path, Path]
) -> None:
    """The broker stops for 30 s and comes back on the same port with its data.

    The worker process stays up throughout: /healthz answers 200 (its event loop runs), and
    /readyz too (it still holds its assignment; readiness is not the broker's health, see
    docs/runbooks/broker-unavailable.md). Once the broker is back it resumes from its
    committed offsets, in the same process and with its in-memory state, and the alerts of
    the whole stream are exactly those of one uninterrupted run: none missing, none twice.
    """
    whole, before, after = events
    broker = durable_broker
    worker = start_worker(on=broker, actor_warmup=ACTORS_WARM, log_level="info")
    settings = worker.settings
    assert worker.process is not None
    probe = worker.metrics_url.removesuffix("/metrics")
    expected = {comparable(a) for a in evaluate(whole, settings).alerts}
    n_before, n_after = len(_lines(before)), len(_lines(after))

    def consumed() -> float:
        return sample_metric(worker.metrics_text(), "abusemon_events_consumed_total")

    asyncio.run(produce(settings, _lines(before)))
    _wait("the first part consumed", lambda: consumed() == n_before, 180, worker)
    _wait(
        "every offset committed",
        lambda: asyncio.run(_committed_everything(settings)),
        120,
        worker,
    )
    first = asyncio.run(read_topic(broker.bootstrap, settings.alerts_topic, lambda v: False, 5))
    assert first, "the first part should raise alerts"
    assert {comparable(orjson.loads(v)) for v in first} <= expected

    broker.stop()
    stopped = time.monotonic()
    readiness: set[int] = set()
    while time.monotonic() - stopped < OUTAGE_S:
        assert worker.process.poll() is None, f"the worker exited:\n{worker.log()}"
        assert _probe(probe + "/healthz") == 200, worker.log()
        readiness.add(_probe(probe + "/readyz"))
        time.sleep(1)
    assert readiness == {200}, worker.log()

    broker.start(timeout_s=30)
    restarted = time.monotonic()
    rest = _lines(after)
    asyncio.run(produce(settings, rest[:10]))
    _wait("the first events after the restart", lambda: consumed() > n_before, 180, worker)
    resumed = time.monotonic() - restarted
    asyncio.run(produce(settings, rest[10:]))
    _wait("the second part consumed", lambda: consumed() >= n_before + n_after, 300, worker)
    caught_up = time.monotonic() - restarted
    got = asyncio.run(
        read_topic(broker.bootstrap, settings.alerts_topic, lambda v: len(v) >= len(expected), 180)
    )
    assert worker.process.poll() is None, worker.log()
    assert {comparable(orjson.loads(v)) for v in got} == expected, worker.log()
    assert len(got) == len(expected), "an alert was published twice"
    assert consumed() == n_before + n_after, "an event was consumed twice"
    for path in ("/healthz", "/readyz"):
        assert _probe(probe + path) == 200
    print(
        f"consuming {resumed:.1f} s after the broker restarted, caught up after {caught_up:.1f} s"
    )
