"""Where an event's time goes in the stages: a per-event budget, without Kafka.

    PYTHONPATH=. python bench/budget.py [--hours 1] [--rate 20] [--actors 20000]
                                        [--out bench-budget.json]

Runs `abuse-monitor evaluate` (the worker's stages, `detectors/stages.py`, fed in batches)
over simulated traffic, the garbage collector tuned as the command tunes it, once plainly,
for the events per second, and once under cProfile, whose cumulative times per step are
scaled to the plain run's total. Prints µs per event for each step against the 25 µs an event that 40k events/s on one core allows, and writes JSON.
The steps nest: a step's time includes what it calls, and "stage 1" includes "signatures".
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench import traffic
from detectors import actors, coordination, pipeline, stages, text, windows
from detectors import events as events_module
from simulator import write_files
from streams import files
from streams.evaluate import evaluate
from streams.runtime import gc_tuned
from streams.settings import Settings

BUDGET_US = 1e6 / 40_000
# (step, function) whose cumulative time is the step's.
STEPS: tuple[tuple[str, Callable[..., Any]], ...] = (
    ("read the file (orjson)", files.read_lines),
    ("validate (msgspec; pydantic for rejects)", events_module.parse_event),
    ("stage 1: Ingest.process", stages.Ingest.process),
    ("  of which text signatures (MinHash)", text.signatures),
    ("  of which window counts and dedup", windows.PartitionCounter.add_batch),
    ("  of which coordination rows made", coordination.CoordinationCollector.add),
    ("route to stage-2 partitions", stages.route),
    ("stage 2, first half: Detect.begin", stages.Detect.begin),
    ("  of which signal windows, spike detectors", pipeline.SignalProcessor.add_watermark),
    ("  of which coordination rows added", coordination.CoordinationIndex.add),
    ("  of which coordination windows", coordination.CoordinationIndex.close),
    ("stage 2, second half: Detect.finish", stages.Detect.finish),
    ("  of which actor windows, population model", actors.ActorProcessor.close),
    ("coordinator (campaigns, brigades)", coordination.Coordinator.add),
    ("label gate", stages.OfflinePipeline.admit),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    traffic.add_options(parser)
    parser.add_argument("--out", default="bench-budget.json")
    args = parser.parse_args()

    events = Path(tempfile.mkdtemp()) / "events.jsonl"
    total, _ = write_files(events, traffic.config(args))
    settings = Settings(input_partitions=4, partitions=4)
    with gc_tuned():  # as the command runs it
        started = time.perf_counter()
        evaluate(events, settings)
        plain = time.perf_counter() - started

        profiler = cProfile.Profile()
        profiler.enable()
        evaluate(events, settings)
        profiler.disable()
    stats = pstats.Stats(profiler)
    raw = stats.stats  # type: ignore[attr-defined]
    profiled = sum(tt for (_, _, _), (_, _, tt, _, _) in raw.items())
    scale = plain / profiled

    def cumulative(function: Callable[..., Any]) -> float:
        code = function.__code__
        where = (code.co_filename, code.co_firstlineno, code.co_name)
        return float(raw[where][3]) if where in raw else 0.0

    rows = []
    for label, function in STEPS:
        us = cumulative(function) * scale / total * 1e6
        rows.append({"step": label, "us_per_event": round(us, 1)})
    per_event = plain / total * 1e6
    print(f"{total} events, {total / plain:.0f} events/s, {per_event:.0f} µs an event in all\n")
    print(f"| step | µs per event | of the {BUDGET_US:.0f} µs budget |")
    print("|---|---:|---:|")
    for row in rows:
        print(f"| {row['step']} | {row['us_per_event']} | {row['us_per_event'] / BUDGET_US:.1f}x |")
    print(f"| all | {per_event:.0f} | {per_event / BUDGET_US:.1f}x |")
    result = {"events": total, "per_s": round(total / plain), "us_per_event": round(per_event, 1)}
    Path(args.out).write_bytes(orjson.dumps(result | {"steps": rows}, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
