"""Memory held by the coordination state, and its cost per event.

    python bench/coordination.py [--hours 2] [--rate 20] [--out bench-coordination.json]

One run, one machine, over `--hours` of simulated traffic at `--rate` content events a second
(with its attacks):

- stage 1: the cost per event of turning events into coordination rows
  (`CoordinationCollector.add`, given the text signature stage 1 computes anyway), against
  parsing the same event from bytes (`parse_event`), the baseline measured in the same run;
  and of keeping authors' schedules (`Schedules`, detectors/synchrony.py: each content
  event's time, and each window's schedule rows with their MinHash), with the memory it
  holds per author;
- stage 2: the cost per event of the index (keys, sliding windows, candidates with the
  near-duplicate check) and the coordinator, window by window;
- memory: the index's state at the end (tracemalloc), per key and per row held, and in all.

Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from pathlib import Path

import orjson

from detectors.coordination import (
    CoordinationCollector,
    CoordinationConfig,
    CoordinationIndex,
    Coordinator,
    Row,
    schedule_rows,
)
from detectors.events import ContentEvent, Event, parse_event
from detectors.stages import new_schedules
from detectors.text import signature
from simulator import SimConfig, generate


def simulated(hours: float, rate: float) -> list[tuple[str, bytes]]:
    config = SimConfig(seed=5, duration_s=hours * 3600.0, rate=rate, actors=100_000,
                       first_attack_s=600.0, attack_every_s=1800.0)  # fmt: skip
    return [(topic, orjson.dumps(value)) for topic, value in generate(config)]


def run_schedules(config: CoordinationConfig, events: list[Event]) -> tuple[float, list, int]:
    """(seconds, schedule rows, bytes held at the end with `traced`): authors' schedules
    kept event by event, and closed window by window, as stage 1 does."""
    schedules = new_schedules(config)
    rows: list[tuple[float, Row]] = []
    window = -1.0
    started = time.perf_counter()
    for event in events:
        if not isinstance(event, ContentEvent):
            continue
        start = event.ts // 60 * 60
        if start > window:
            rows += schedule_rows(schedules.close(start), config.synchrony_slot_s)
            window = start
        schedules.add(event, start)
    rows += schedule_rows(schedules.close(float("inf")), config.synchrony_slot_s)
    return time.perf_counter() - started, rows, len(schedules.times)


def run_stage_two(
    config: CoordinationConfig, rows: list[tuple[float, Row]]
) -> tuple[float, CoordinationIndex, int]:
    """(seconds, the index at the end, alerts): the index and the coordinator fed window by
    window, as the worker feeds them."""
    index = CoordinationIndex(config)
    coordinator = Coordinator(config, sources=1)
    first, last = rows[0][0], rows[-1][0]
    alerts = position = 0
    window = first
    started = time.perf_counter()
    while window <= last:
        while position < len(rows) and rows[position][0] <= window:
            index.add(*rows[position])
            position += 1
        found = index.close(first, window + 60)
        alerts += len(coordinator.add("index:0", found.candidates, index.closed_until).alerts)
        window += 60
    return time.perf_counter() - started, index, alerts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--out", default="bench-coordination.json")
    args = parser.parse_args()

    messages = simulated(args.hours, args.rate)
    started = time.perf_counter()
    events: list[Event] = [parse_event(topic, raw) for topic, raw in messages]
    parse_us = (time.perf_counter() - started) / len(events) * 1e6
    sigs = [signature(e.text) if isinstance(e, ContentEvent) and e.text else None for e in events]

    collector = CoordinationCollector("content-events:0")
    started = time.perf_counter()
    for event, sig in zip(events, sigs, strict=True):
        collector.add(event, event.ts // 60 * 60, sig)
    rows: list[tuple[float, Row]] = collector.close(float("inf"))
    stage1_us = (time.perf_counter() - started) / len(events) * 1e6

    config = CoordinationConfig()
    events.sort(key=lambda e: e.ts)
    seconds, scheduled, authors = run_schedules(config, events)
    schedules_us = seconds / len(events) * 1e6
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = new_schedules(config)
    for event in events:
        if isinstance(event, ContentEvent):
            kept.add(event, event.ts // 60 * 60)
    kept.open.clear()  # what stays between windows: the times
    schedules_bytes = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    rows = sorted(rows + scheduled, key=lambda r: r[0])

    timed = run_stage_two(config, rows)
    tracemalloc.start()  # a second run: tracing allocations slows them down many times
    before = tracemalloc.get_traced_memory()[0]
    index, alerts = run_stage_two(config, rows)[1:]
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    stage2_us = timed[0] / len(events) * 1e6

    results = {
        "events": len(events),
        "rows_per_event": round(len(rows) / len(events), 2),
        "parse_us_per_event": round(parse_us, 2),
        "stage1_us_per_event": round(stage1_us, 2),
        "stage1_to_parse_ratio": round(stage1_us / parse_us, 2),
        "schedules_us_per_event": round(schedules_us, 2),
        "schedules_to_parse_ratio": round(schedules_us / parse_us, 2),
        "schedule_rows_per_event": round(len(scheduled) / len(events), 3),
        "schedule_bytes_per_author": round(schedules_bytes / max(1, authors)),
        "stage2_us_per_event": round(stage2_us, 2),
        "stage2_to_parse_ratio": round(stage2_us / parse_us, 2),
        "keys_held": len(index),
        "rows_held": index.rows_held(),
        "state_bytes": held,
        "bytes_per_row_held": round(held / max(1, index.rows_held())),
        "alerts": alerts,
    }
    print("| measure | value |\n|---|---|")
    for key, value in results.items():
        print(f"| {key} | {value} |")
    Path(args.out).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
