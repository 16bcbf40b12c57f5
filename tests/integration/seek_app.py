"""A consumer of `streams.faust_kafka.App` that seeks a partition while the consumer's thread
is taking the fetched records of that partition.

Run as a child process by tests/integration/test_consumer_seek.py. Its topic (one
partition) is read in batches. Once the first batch is handed over, the next taking of
fetched records is held in the consumer's thread (`FetchResult.getall` waits) until a seek
of the partition back to offset 0 has been asked for from the app's loop and given 0.2 s to
run. Every batch handed over is written to `OUT` as JSON, `[first offset, last offset,
stale]`, with `"held"`, whether records were taken and held, and `"seeked": true` once the
seek has returned:

    python -m tests.integration.seek_app BROKER_URL APP_ID TOPIC OUT
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import threading
from pathlib import Path
from typing import Any

import faust
from aiokafka.consumer.fetcher import FetchResult

from streams import faust_kafka


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("broker", "app_id", "topic"):
        parser.add_argument(name)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()

    app = faust_kafka.App(
        args.app_id,
        broker=args.broker,
        store="memory://",
        datadir=str(args.out.parent / "faust-data"),
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=6,
        broker_heartbeat_interval=1,
        # Small fetches: the topic is read in many batches.
        consumer_max_fetch_size=2048,
    )
    app.topics.add(app.topic(args.topic))
    app.batch_topics = frozenset([args.topic])

    held, taking, asked = threading.Event(), threading.Event(), threading.Event()
    getall = FetchResult.getall

    def held_getall(self: FetchResult, max_records: int | None = None) -> Any:
        if held.is_set():
            held.clear()
            taking.set()
            asked.wait(10)
        return getall(self, max_records)

    FetchResult.getall = held_getall  # type: ignore[method-assign]

    batches: list[list[Any]] = []
    state: dict[str, Any] = {"batches": batches, "seeked": False}

    def write() -> None:
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(args.out)

    async def seek_while_taking(tp: Any) -> None:
        loop = asyncio.get_running_loop()
        state["held"] = await loop.run_in_executor(None, taking.wait, 10)
        seek = asyncio.ensure_future(app.consumer.seek(tp, 0))
        await asyncio.sleep(0.2)  # the seek runs, or waits for the consumer's thread
        asked.set()
        await seek
        state["seeked"] = True
        write()

    async def on_batch(batch: faust_kafka.Batch) -> None:
        consumer: faust_kafka.LogEndConsumer = app.consumer  # type: ignore[assignment]
        records = batch.records
        batches.append([records[0].offset, records[-1].offset, consumer.stale(batch)])
        if len(batches) == 1:
            held.set()
            app.add_future(seek_while_taking(batch.tp))
        write()

    app.on_batch = on_batch
    worker = faust.Worker(app, loglevel=os.environ.get("SEEK_LOGLEVEL", "warning"), quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
