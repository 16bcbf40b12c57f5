"""Throughput of the worker against the ceiling of a raw Kafka consumer, on the embedded broker.

    python bench/throughput.py [--hours 1] [--rate 20] [--out bench-results.json]

One run, one machine, the same pre-produced messages: (a) a raw aiokafka consumer reading
and JSON-decoding them, (b) `abuse-monitor worker` from its first message to its last, and
(c) `abuse-monitor evaluate` offline over the same file. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer
from prometheus_client.parser import text_string_to_metric_families

from simulator import SimConfig, write_files
from streams.broker import EmbeddedBroker, free_port
from streams.evaluate import evaluate
from streams.kafka import replay
from streams.settings import Settings


def consumed(url: str) -> float:
    try:
        text = urllib.request.urlopen(url, timeout=2).read().decode()
    except OSError:
        return 0.0
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "abusemon_events_consumed_total"
    )


async def raw_consume(bootstrap: str, topics: list[str], total: int) -> float:
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    seen, started = 0, None
    try:
        while seen < total:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if started is None and batches:
                started = time.perf_counter()
            for messages in batches.values():
                for message in messages:
                    orjson.loads(message.value)
                seen += len(messages)
    finally:
        await consumer.stop()
    assert started is not None
    return seen / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=20.0, help="organic content events/s")
    parser.add_argument("--out", default="bench-results.json")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp())
    events = work / "events.jsonl"
    total, _ = write_files(events, SimConfig(duration_s=args.hours * 3600, rate=args.rate))
    with EmbeddedBroker() as broker:
        settings = Settings(broker=broker.url, app_id="bench", input_partitions=4, partitions=4)
        asyncio.run(replay(events, settings))
        ceiling = asyncio.run(
            raw_consume(broker.bootstrap, [settings.content_topic, settings.report_topic], total)
        )

        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ABUSEMON_")}
        env.update(
            ABUSEMON_BROKER=broker.url,
            ABUSEMON_APP_ID="bench",
            ABUSEMON_INPUT_PARTITIONS="4",
            ABUSEMON_PARTITIONS="4",
            ABUSEMON_METRICS_PORT=str(port),
            ABUSEMON_LOG_LEVEL="warning",
            ABUSEMON_SESSION_TIMEOUT_S="6",
            ABUSEMON_REBALANCE_TIMEOUT_S="4",
        )
        worker = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}/metrics"
        try:
            while consumed(url) == 0:
                time.sleep(0.05)
            started = time.perf_counter()
            while consumed(url) < total:
                time.sleep(0.2)
            worker_rate = total / (time.perf_counter() - started)
        finally:
            worker.terminate()
            worker.wait(timeout=30)

    started = time.perf_counter()
    evaluate(events, Settings(input_partitions=4))
    offline = total / (time.perf_counter() - started)

    results = {
        "events": total,
        "raw_consume_decode_per_s": round(ceiling),
        "worker_per_s": round(worker_rate),
        "worker_vs_raw": round(worker_rate / ceiling, 4),
        "evaluate_per_s": round(offline),
    }
    print(f"{'events':<28}{total:>10}")
    print(f"{'(a) raw consume + decode/s':<28}{ceiling:>10.0f}")
    print(f"{'(b) worker events/s':<28}{worker_rate:>10.0f}   b/a = {worker_rate / ceiling:.3f}")
    print(f"{'(c) evaluate events/s':<28}{offline:>10.0f}")
    Path(args.out).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
