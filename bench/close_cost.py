"""The work a window close leaves for the worker, without Kafka: what follows each close.

    python bench/close_cost.py [--seconds 60] [--rate 1000] [--window 10] [--out FILE]

Organic simulator traffic stamped at `--rate` events a second of event time goes through
stage 1 (`detectors.stages.Ingest` per input partition, 4 partitions per topic, as
bench/latency.py's worker has them), one event at a time. At every stage-1 close, the
partials, actor summaries and coordination rows are encoded as the worker sends them,
decoded, and given to 4 stage-2 partitions (`Detect`), where the watermark closes signals,
actors and coordination indexes. Prints the CPU seconds of each step per window and the bytes
put on the internal topic per event, and writes JSON. In the worker all of it happens at a
window's close, on the one event loop that also runs stage 1.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import orjson
from latency import organic_pool

from detectors.events import format_rfc3339, parse_event
from detectors.stages import Detect, Ingest, Ingested
from streams import records
from streams.files import TOPIC_KEYS, partition_for
from streams.settings import Settings

PARTITIONS = 4
STEPS = (
    "stage 1: encode",
    "stage 2: decode",
    "stage 2: add and close",
)


class Worker:
    def __init__(self, settings: Settings) -> None:
        self.config = settings.detection()
        self.stage1: dict[tuple[str, int], Ingest] = {}
        self.stage2 = [
            Detect(
                self.config,
                settings.actor_detection(),
                settings.coordination(),
                idle_s=settings.source_idle_s,
            )
            for _ in range(PARTITIONS)
        ]
        self.times = dict.fromkeys(STEPS, 0.0)
        self.bytes = 0

    def feed(self, topic: str, partition: int, raw: bytes, now: float) -> None:
        key = (topic, partition)
        if key not in self.stage1:
            self.stage1[key] = Ingest(self.config, topic, partition, PARTITIONS)
        ingested = self.stage1[key].process([parse_event(topic, raw, now, 86400.0)])
        if ingested.mark is not None:
            self.close(ingested)

    def close(self, ingested: Ingested) -> None:
        a = time.process_time()
        reports = records.closed_reports(ingested, PARTITIONS)
        self.times["stage 1: encode"] += time.process_time() - a
        for partition, raw in reports:
            self.bytes += len(raw)
            a = time.process_time()
            report = records.decode_signal_report(raw)
            b = time.process_time()
            self.stage2[partition].process(records.stage_report(report), now=0.0)
            self.times["stage 2: decode"] += b - a
            self.times["stage 2: add and close"] += time.process_time() - b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="event time to simulate")
    parser.add_argument("--rate", type=float, default=1000.0, help="events a second")
    parser.add_argument("--window", type=float, default=10.0, help="ABUSEMON_WINDOW_S")
    parser.add_argument("--lateness", type=float, default=2.0, help="ABUSEMON_LATENESS_S")
    parser.add_argument("--out", default="bench-close-cost.json")
    args = parser.parse_args()

    worker = Worker(Settings(window_s=args.window, lateness_s=args.lateness))
    total = int(args.seconds * args.rate)
    pool = organic_pool(min(total, 60_000))
    start = math.ceil(1_000_000.0 / args.window) * args.window  # windows start with the run
    for i in range(total):
        topic, value = pool[i % len(pool)]
        ts = start + i / args.rate
        raw = orjson.dumps(value | {"event_id": f"e{i}", "ts": format_rfc3339(ts)})
        partition = partition_for(value[TOPIC_KEYS[topic]].encode(), PARTITIONS)
        worker.feed(topic, partition, raw, ts)

    windows = math.floor((args.seconds - args.lateness) / args.window)  # closed, all full
    closed_events = windows * args.window * args.rate
    spent = sum(worker.times.values())
    print(
        f"{args.seconds:g} s of events at {args.rate:g}/s, {windows} windows of {args.window:g} s\n"
    )
    print("| step | CPU s per window | share |")
    print("|---|---:|---:|")
    for step in STEPS:
        print(f"| {step} | {worker.times[step] / windows:.3f} | {worker.times[step] / spent:.0%} |")
    print(f"| all | {spent / windows:.3f} | |")
    print(f"\ninternal topic: {worker.bytes / closed_events:.0f} bytes per event")
    result = {
        "seconds": args.seconds,
        "rate": args.rate,
        "window_s": args.window,
        "windows_closed": windows,
        "cpu_s_per_window": {step: worker.times[step] / windows for step in STEPS},
        "bytes_per_event": worker.bytes / closed_events,
    }
    Path(args.out).write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
