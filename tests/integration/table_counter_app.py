"""A Faust worker that counts messages per key in a changelog-backed table.

Run as a child process by tests/integration/test_table_recovery.py, which kills it with
SIGKILL mid-stream and starts it again with the same app id. Every `--dump-every` seconds,
once the table has been recovered, it writes the table's contents to `--out` as JSON
(`{"counts": {key: count}, "recovered": true}`), through a temporary file and a rename.

    python -m tests.integration.table_counter_app BROKER_URL APP_ID TOPIC OUT \
        [--plain-faust] [--trace] [--crash-on-unsafe]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
from typing import Any

import faust

from streams import faust_kafka as durable


def build_app(
    broker: str, app_id: str, topic_name: str, partitions: int, plain: bool, datadir: Path
) -> Any:
    settings: dict[str, Any] = {
        "broker": broker,
        "store": "memory://",
        "datadir": str(datadir),
        "web_enabled": False,
        "topic_partitions": partitions,
        "consumer_auto_offset_reset": "earliest",
        "broker_session_timeout": 6,
        "broker_heartbeat_interval": 1,
        "broker_rebalance_timeout": 4,
        "producer_acks": -1,
        # Changelog records of consecutive events go out in one batch, as under load.
        "producer_linger": 0.05,
        # Small fetches: a changelog is read in many responses, as a large one is.
        "consumer_max_fetch_size": 4096,
        "broker_commit_interval": 0.5,
    }
    app_class = faust.App if plain else durable.App
    app = app_class(app_id, **settings)
    topic = app.topic(topic_name, partitions=partitions, key_type=str, value_type=str)
    counts = app.Table("counts", default=int, partitions=partitions)
    return app, topic, counts


def trace_commits(app: Any, table: Any, crash: bool) -> None:
    """Print every offset commit that covers an event whose changelog write the broker has
    not acknowledged yet; with `crash`, SIGKILL the process right after such a commit."""
    import signal
    import sys

    pending: dict[Any, tuple[Any, int]] = {}
    send_changelog = table.send_changelog

    def traced_send_changelog(*a: Any, **kw: Any) -> Any:
        fut = send_changelog(*a, **kw)
        event = faust.current_event()
        pending[fut] = (event.message.tp, event.message.offset)
        return fut

    table.send_changelog = traced_send_changelog

    @app.task
    async def patch_consumer() -> None:
        consumer = app.consumer
        commit = consumer._commit

        async def traced_commit(offsets: Any) -> Any:
            for fut in [f for f in pending if f.done()]:
                del pending[fut]
            unsafe = {
                fut: (tp, o)
                for fut, (tp, o) in pending.items()
                if tp in offsets and o < offsets[tp]
            }
            for fut, (tp, o) in unsafe.items():
                print(
                    f"UNSAFE COMMIT {tp.topic}/{tp.partition} offset={offsets[tp]}: "
                    f"changelog write of offset {o} (key {fut.message.key!r}) not acked; "
                    f"producer buffer holds {app.producer.buffer.size}",
                    file=sys.stderr,
                    flush=True,
                )
            done = await commit(offsets)
            still = [fut for fut in unsafe if not fut.done()]
            if crash and done and still:
                print(
                    f"COMMITTED {dict(offsets)}; {len(still)} changelog writes still unacked; "
                    "SIGKILL",
                    file=sys.stderr,
                    flush=True,
                )
                os.kill(os.getpid(), signal.SIGKILL)
            return done

        consumer._commit = traced_commit


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("broker")
    parser.add_argument("app_id")
    parser.add_argument("topic")
    parser.add_argument("out", type=Path)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--delay", type=float, default=0.002, help="seconds per message")
    parser.add_argument("--dump-every", type=float, default=0.3)
    parser.add_argument(
        "--plain-faust", action="store_true", help="faust.App, not streams.faust_kafka.App"
    )
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--crash-on-unsafe", action="store_true")
    args = parser.parse_args()

    app, topic, counts = build_app(
        args.broker,
        args.app_id,
        args.topic,
        args.partitions,
        args.plain_faust,
        args.out.parent / "faust-data",
    )

    @app.agent(topic)
    async def count(stream: Any) -> None:
        async for key, _value in stream.items():
            counts[key] += 1
            if args.delay:
                await asyncio.sleep(args.delay)

    if args.trace or args.crash_on_unsafe:
        trace_commits(app, counts, args.crash_on_unsafe)

    @app.timer(args.dump_every)
    async def dump() -> None:
        if not app.tables.recovery.completed.is_set():
            return
        data = {"counts": dict(counts.items()), "recovered": True, "pid": os.getpid()}
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(args.out)

    worker = faust.Worker(app, loglevel=os.environ.get("COUNTER_LOGLEVEL", "warning"), quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
