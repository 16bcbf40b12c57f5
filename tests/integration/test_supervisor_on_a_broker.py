"""`abuse-monitor worker --processes 2` against a real Kafka-protocol broker: both processes
take partitions, the alerts are `evaluate`'s, one scrape counts every event, and a process
killed with SIGKILL is started again."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streams.evaluate import evaluate
from streams.kafka import ensure_input_topics, replay
from streams.settings import Settings
from tests.conftest import worker_settings
from tests.integration.test_worker import ACTORS_WARM, comparable, sample_metric, settled_alerts

pytestmark = pytest.mark.integration

STARTED = re.compile(
    rb"worker process (\d+) started: pid (\d+), its probes and metrics on [\d.]+:(\d+)"
)


def wait_for(
    condition: Callable[[], bool],
    what: str,
    log: Path,
    supervisor: subprocess.Popen[bytes],
    timeout_s: float = 120,
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline or supervisor.poll() is not None:
            tail = log.read_text(errors="replace")[-5000:]
            raise AssertionError(f"timed out waiting for {what}\n{tail}")
        time.sleep(0.2)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""
    except OSError:
        return 0, ""


def children(log: Path) -> dict[int, tuple[int, int]]:
    """Each slot's latest process, from the supervisor's log: slot -> (pid, port)."""
    found = {}
    for slot, pid, port in STARTED.findall(log.read_bytes()):
        found[int(slot)] = (int(pid), int(port))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_processes_under_one_supervisor(broker: Any, simulated: Path, tmp_path: Path) -> None:
    variables = worker_settings(broker, actor_warmup=ACTORS_WARM, log_level="info")
    settings = Settings(**{k.removeprefix("ABUSEMON_").lower(): v for k, v in variables.items()})  # type: ignore[arg-type]
    asyncio.run(ensure_input_topics(settings))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABUSEMON_")} | variables
    log = tmp_path / "supervisor.log"
    base = f"http://127.0.0.1:{settings.metrics_port}"
    with open(log, "wb") as out:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker", "--processes", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_for(lambda: get(f"{base}/readyz")[0] == 200, "both processes ready", log, supervisor)
        # Each process has partitions of the input topics, and together they have all.
        first = children(log)
        assert sorted(first) == [0, 1]
        held = {}
        for slot, (_, port) in first.items():
            text = get(f"http://127.0.0.1:{port}/metrics")[1]
            held[slot] = sample_metric(
                text, "abusemon_assigned_partitions", topic=settings.content_topic
            ) + sample_metric(text, "abusemon_assigned_partitions", topic=settings.report_topic)
        assert all(count > 0 for count in held.values()), held
        assert sum(held.values()) == 2 * settings.input_partitions

        expected = evaluate(simulated, settings).alerts
        want = Counter(comparable(a) for a in expected)
        asyncio.run(replay(simulated, settings))
        got = settled_alerts(broker.bootstrap, settings.alerts_topic, len(expected))
        tail = log.read_text(errors="replace")[-5000:]
        assert got - want == Counter(), f"published twice or not expected\n{tail}"
        assert want - got == Counter(), f"missing\n{tail}"

        # One scrape of the supervisor counts every event, whichever process read it.
        lines = sum(1 for _ in simulated.open())

        def consumed() -> float:
            return sample_metric(get(f"{base}/metrics")[1], "abusemon_events_consumed_total")

        wait_for(lambda: consumed() >= lines, "every event counted", log, supervisor)
        text = get(f"{base}/metrics")[1]
        assert sample_metric(text, "abusemon_events_consumed_total") == lines
        assert sample_metric(text, "abusemon_worker_processes") == 2

        # A process killed outright is started again, and the supervisor is ready again.
        victim, _ = first[1]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: children(log)[1][0] != victim, "process 1 started again", log, supervisor)
        wait_for(lambda: get(f"{base}/readyz")[0] == 200, "ready again", log, supervisor)
        text = get(f"{base}/metrics")[1]
        assert sample_metric(text, "abusemon_worker_restarts_total") == 1
        assert children(log)[0] == first[0]  # the other process ran on

        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=60) == 0, log.read_text(errors="replace")[-5000:]
        assert not any(alive(pid) for pid, _ in children(log).values())
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
