"""The work a window close leaves for the worker, without Kafka: what follows each close.

    python bench/close_cost.py [--seconds 60] [--rate 1000] [--window 10] [--out FILE]

Organic simulator traffic stamped at `--rate` events a second of event time goes through
stage 1 (a counter, an activity collector and a coordination collector per input partition,
4 partitions per topic, as bench/latency.py's worker has them). At every stage-1 close, the
partials, actor summaries and coordination rows are encoded as the worker sends them,
decoded, added to 4 stage-2 partitions, and the watermark closes signals, actors and
coordination indexes there. Prints the CPU seconds of each step per window and the bytes
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

from detectors.actor_features import ActivityCollector
from detectors.actors import ActorProcessor
from detectors.coordination import CoordinationCollector, CoordinationIndex
from detectors.events import format_rfc3339, parse_event
from detectors.pipeline import SignalProcessor, new_counter, signals_of
from detectors.windows import Partial, PartitionCounter, Watermark
from streams import records
from streams.files import TOPIC_KEYS, partition_for
from streams.settings import Settings

PARTITIONS = 4
STEPS = (
    "stage 1: close summaries",
    "stage 1: encode",
    "stage 2: decode",
    "stage 2: add",
    "stage 2: close windows",
)


class Worker:
    def __init__(self, settings: Settings) -> None:
        self.config = settings.detection()
        self.stage1: dict[
            tuple[str, int], tuple[PartitionCounter, ActivityCollector, CoordinationCollector]
        ] = {}
        self.stage2 = [
            (
                SignalProcessor(self.config, idle_s=settings.source_idle_s),
                ActorProcessor(settings.actor_detection()),
                CoordinationIndex(settings.coordination()),
            )
            for _ in range(PARTITIONS)
        ]
        self.times = dict.fromkeys(STEPS, 0.0)
        self.bytes = 0

    def feed(self, topic: str, partition: int, raw: bytes, now: float) -> None:
        key = (topic, partition)
        if key not in self.stage1:
            counter = new_counter(self.config, topic, partition, PARTITIONS)
            collectors = ActivityCollector(counter.source), CoordinationCollector(counter.source)
            self.stage1[key] = (counter, *collectors)
        counter, collector, rows = self.stage1[key]
        event = parse_event(topic, raw, now, 86400.0)
        status, emitted = counter.add(event.event_id, event.ts, signals_of(event))
        if status == "counted":
            window = counter.window_of(event.ts)
            rows.add(event, window, collector.add(event, window))
        if emitted:
            self.close(collector, rows, emitted)

    def close(
        self,
        collector: ActivityCollector,
        rows: CoordinationCollector,
        emitted: list[Partial | Watermark],
    ) -> None:
        mark = emitted[-1]
        assert isinstance(mark, Watermark)
        a = time.process_time()
        actors = collector.close(mark.closed_until)
        closed_rows = rows.close(mark.closed_until)
        b = time.process_time()
        reports = records.signal_reports(emitted, PARTITIONS, actors, closed_rows)
        self.times["stage 1: close summaries"] += b - a
        self.times["stage 1: encode"] += time.process_time() - b
        for partition, raw in reports:
            self.bytes += len(raw)
            signals, actor_processor, index = self.stage2[partition]
            a = time.process_time()
            report = records.decode_signal_report(raw)
            b = time.process_time()
            for partial in report.partials:
                signals.add_partial(partial)
            for actor in report.actors:
                actor_processor.add_partial(actor)
            for start, row in report.rows:
                index.add(start, row)
            c = time.process_time()
            self.times["stage 2: decode"] += b - a
            self.times["stage 2: add"] += c - b
            if report.mark is not None:
                signals.add_watermark(report.mark, now=0.0)
                first, until = signals.both_closed(0.0)
                actor_processor.close(first, until)
                index.close(first, until)
                self.times["stage 2: close windows"] += time.process_time() - c


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
