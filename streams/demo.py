"""`abuse-monitor demo`: the whole system on one machine.

An embedded broker on loopback, the worker in a child process (exactly `abuse-monitor
worker`), and the simulator producing organic traffic with attacks on an accelerated clock.
Alerts are read back from the alerts topic, as any subscriber would, and printed. The worker
keeps alerts in a SQLite store in a temporary directory, and the triage console serves them
on loopback, where labels given are read back by the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from detectors.events import parse_rfc3339
from simulator import SimConfig, generate
from streams.broker import EmbeddedBroker
from streams.console.app import start_console
from streams.files import message_of
from streams.kafka import ensure_input_topics, input_topics, tail
from streams.settings import Settings
from streams.store import open_store

DAY = 86400.0


def demo_settings(
    broker: EmbeddedBroker, metrics_port: int, console_port: int, store: str
) -> Settings:
    return Settings(
        broker=broker.url,
        app_id=f"demo-{uuid.uuid4().hex[:6]}",
        input_partitions=4,
        partitions=4,
        metrics_host="127.0.0.1",
        metrics_port=metrics_port,
        console_host="127.0.0.1",
        console_port=console_port,
        alert_store=store,
        session_timeout_s=6,
        heartbeat_interval_s=1,
        rebalance_timeout_s=4,
        log_level="warning",
    )


def simulation(now: float) -> SimConfig:
    # A week of event time ending now: an accelerated clock never runs ahead of the wall
    # clock by more than the worker accepts. The first attack comes after the warm-up.
    start = (now // DAY) * DAY - 6 * DAY
    return SimConfig(
        seed=int(now) % 10_000,
        start=start,
        duration_s=now - start,
        rate=5.0,
        first_attack_s=40 * 60.0,
        attack_every_s=20 * 60.0,
    )


def format_alert(record: dict[str, Any], started: float | None = None) -> str:
    """Two lines for people; `started` (monotonic) adds the time since the demo started.
    Ids and summaries are written by anyone: control characters are shown escaped."""
    from streams.tail import printable

    entity = record["entity"]
    status = record.get("status", "firing")
    mark = {"firing": "ALERT", "update": "  update", "resolved": "  resolved"}.get(status, status)
    since = "" if started is None else f"+{time.monotonic() - started:5.0f}s | "
    head = printable(
        f"[{since}event time {str(record['ts'])[:16]}Z] "
        f"{mark} {str(record['severity']).upper()} {record['detector']} on {entity['type']} "
        f"{entity['id']}"
    )
    return f"{head}\n      {printable(record['summary'])}"


async def pace_events(settings: Settings, config: SimConfig, speed: float) -> None:
    """Produce the simulation so that event time advances `speed` times the wall clock."""
    names = input_topics(settings)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        linger_ms=20,
        **settings.kafka_client_options(),
    )
    await producer.start()
    began = time.monotonic()
    try:
        for topic, value in generate(config):
            due = (parse_rfc3339(value["ts"]) - config.start) / speed
            ahead = due - (time.monotonic() - began)
            if ahead > 0.01:
                await asyncio.sleep(ahead)
            key, raw = message_of(topic, value)
            await producer.send(names[topic], value=raw, key=key)
    finally:
        await producer.stop()


async def print_alerts(settings: Settings, started: float) -> None:
    first = True
    async for raw in tail(settings, settings.alerts_topic):
        record = orjson.loads(raw)
        if first and record.get("status") == "firing":
            first = False
            print(f"first alert {time.monotonic() - started:.0f} s after start")
        print(format_alert(record, started), flush=True)


async def run(settings: Settings, speed: float, duration_s: float | None, started: float) -> None:
    config = simulation(time.time())
    store = open_store(settings.alert_store)
    console = await start_console(settings, store)
    print(f"triage console {console.login_url}", flush=True)
    tasks = [
        asyncio.create_task(pace_events(settings, config, speed)),
        asyncio.create_task(print_alerts(settings, started)),
    ]
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=duration_s)
    except TimeoutError:
        pass
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)
        await console.stop()
        store.close()


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a process manager, `timeout`, `kill`) stops the block as Ctrl-C does, so the
    worker and the broker the demo started are stopped with it, not left running."""

    def as_ctrl_c(signum: int, frame: Any) -> None:
        # Whatever handles Ctrl-C now: inside `asyncio.run`, its handler, which cancels the
        # main task so it ends through its own cleanup; outside, KeyboardInterrupt.
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, as_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_demo(duration_s: float | None, speed: float, metrics_port: int, console_port: int) -> int:
    for port, option in ((metrics_port, "--metrics-port"), (console_port, "--console-port")):
        if port_in_use(port):
            print(
                f"abuse-monitor: error: port {port} is in use; pick another with {option}",
                file=sys.stderr,
            )
            return 2
    started = time.monotonic()
    with (
        sigterm_interrupts(),
        EmbeddedBroker() as broker,
        tempfile.TemporaryDirectory(prefix="abuse-monitor-") as tmp,
    ):
        settings = demo_settings(broker, metrics_port, console_port, f"sqlite:///{tmp}/alerts.db")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ABUSEMON_")}
        env.update(settings.environment())  # secrets included: the worker needs them
        asyncio.run(ensure_input_topics(settings))
        log_path = Path(tempfile.gettempdir()) / f"{settings.app_id}-worker.log"
        with open(log_path, "wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            print(
                f"broker {broker.url} | metrics http://127.0.0.1:{metrics_port}/metrics | "
                f"worker log {log_path} | simulated clock x{speed:g} | Ctrl-C to stop",
                flush=True,
            )
            asyncio.run(run(settings, speed, duration_s, started))
        except KeyboardInterrupt:
            pass
        finally:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    worker.kill()
    print("demo stopped")
    return 0
