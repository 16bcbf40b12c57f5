"""Memory per active actor and the cost of actor features and scoring.

    python bench/actors.py [--actors 100000] [--events 200000] [--out bench-actors.json]

One run, one machine:

- memory: the stage-2 state of `--actors` actors, each active in a few windows with
  realistic activity (texts, targets, links), measured with tracemalloc, per actor;
- stage 1: the cost per event of summarising activity (`ActivityCollector.add`, MinHash of
  the text included), against parsing the same event from bytes (`parse_event`) as the
  baseline measured in the same run;
- stage 2: the cost per scored actor-window of updating the state and scoring it.

Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import itertools
import random
import time
import tracemalloc
from pathlib import Path

import orjson

from detectors.actor_features import ActivityCollector, ActorPartial
from detectors.actors import ActorConfig, ActorProcessor
from detectors.events import parse_event
from simulator import SimConfig, generate


def simulated_events(n: int) -> list[tuple[str, bytes]]:
    config = SimConfig(seed=3, duration_s=86400.0, rate=20.0, actors=50_000)
    return [
        (topic, orjson.dumps(value))
        for topic, value in itertools.islice(generate(config), n)
        if topic != "labels"
    ]


def stage_one(messages: list[tuple[str, bytes]]) -> tuple[float, float, list[ActorPartial]]:
    """(µs per event to parse, µs per event to summarise, the summaries)."""
    started = time.perf_counter()
    events = [parse_event(topic, raw) for topic, raw in messages]
    parse_us = (time.perf_counter() - started) / len(events) * 1e6
    collector = ActivityCollector("content-events:0")
    started = time.perf_counter()
    for event in events:
        collector.add(event, event.ts // 60 * 60)
    collect_us = (time.perf_counter() - started) / len(events) * 1e6
    return parse_us, collect_us, collector.close(float("inf"))


def stage_two(partials: list[ActorPartial]) -> tuple[float, int, int]:
    """(µs per actor-window, actor-windows, actors) over the summaries, window by window."""
    processor = ActorProcessor(ActorConfig(warmup=500))
    windows = sorted({p.window_start for p in partials})
    started = time.perf_counter()
    for partial in partials:
        processor.add_partial(partial)
    for start in windows:
        processor.close(windows[0], start + 60)
    elapsed = time.perf_counter() - started
    return elapsed / len(partials) * 1e6, len(partials), len(processor)


def memory_per_actor(n: int, partials: list[ActorPartial]) -> float:
    """Bytes of stage-2 state per actor, for `n` actors each fed a few real windows."""
    rng = random.Random(1)
    by_window = sorted(partials, key=lambda p: p.window_start)
    processor = ActorProcessor(ActorConfig(warmup=10**9, max_actors=n + 1, ttl_s=1e12))
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        actor = f"u{i:08d}"
        for k in range(3):  # three windows of someone's real activity
            source = by_window[rng.randrange(len(by_window))]
            start = 60.0 * (3 * i + k)
            processor.add_partial(ActorPartial("c:0", actor, start, source.activity))
        processor.close(0.0, 60.0 * (3 * i + 3))
    processor.pending.clear()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(processor) == n
    return (after - before) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--actors", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--out", default="bench-actors.json")
    args = parser.parse_args()

    messages = simulated_events(args.events)
    parse_us, collect_us, partials = stage_one(messages)
    score_us, windows, actors = stage_two(partials)
    bytes_per_actor = memory_per_actor(args.actors, partials)
    results = {
        "events": len(messages),
        "parse_us_per_event": round(parse_us, 2),
        "stage1_us_per_event": round(collect_us, 2),
        "stage1_to_parse_ratio": round(collect_us / parse_us, 2),
        "stage2_us_per_actor_window": round(score_us, 2),
        "actor_windows": windows,
        "actor_windows_per_event": round(windows / len(messages), 3),
        "actors_in_run": actors,
        "actors_measured": args.actors,
        "bytes_per_actor": round(bytes_per_actor),
    }
    print("| measure | value |\n|---|---|")
    for key, value in results.items():
        print(f"| {key} | {value} |")
    Path(args.out).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
