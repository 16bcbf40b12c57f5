"""Memory per active actor and the cost of actor features and scoring.

    python bench/actors.py [--actors 100000 1000000] [--events 200000] [--quick]
                           [--out bench-actors.json]

One run, one machine:

- memory: the stage-2 state of each number of `--actors` actors, each active in a few windows with
  realistic activity (texts, targets, links), per actor: measured with tracemalloc (exact,
  allocations only) up to `--trace-up-to` actors, and as the growth of the resident set
  above it (tracing a million actors takes about 20 minutes);
- stage 1: the cost per event of summarising activity (`ActivityCollector.add`, MinHash of
  the text included), against parsing the same event from bytes (`parse_event`) as the
  baseline measured in the same run;
- stage 2: the cost per scored actor-window of updating the state and scoring it;
- a checkpoint of `--checkpoint-actors` actors' state: its compressed size per actor and the
  seconds to encode and decode it.

Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import multiprocessing
import os
import random
import time
import tracemalloc
from pathlib import Path

import orjson

from detectors import codec
from detectors.actor_features import ActivityCollector, ActorPartial
from detectors.actors import ActorConfig, ActorProcessor
from detectors.events import ContentEvent, parse_event
from detectors.text import signatures
from simulator import SimConfig, generate
from streams.state import Checkpoints


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
    texts = [(e.text or "") if isinstance(e, ContentEvent) else "" for e in events]
    for event, sig in zip(events, signatures(texts), strict=True):
        collector.add(event, event.ts // 60 * 60, sig)
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


def resident_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_per_actor(n: int, partials: list[ActorPartial], traced: bool) -> float:
    """Bytes of stage-2 state per actor, for `n` actors each fed a few real windows: allocated
    bytes traced by tracemalloc, or (`traced` false: about 2.5 times faster, for large `n`)
    the growth of the resident set, which also counts the allocator's own overhead and must
    be measured in a fresh process."""
    processor = ActorProcessor(ActorConfig(warmup=10**9, max_actors=n + 1, ttl_s=1e12))
    gc.collect()
    if traced:
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0] if traced else resident_bytes()
    populate(processor, n, partials)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0] if traced else resident_bytes()
    tracemalloc.stop()
    return (after - before) / n


def populate(processor: ActorProcessor, n: int, partials: list[ActorPartial]) -> None:
    """`n` actors, each with three windows of someone's real activity."""
    rng = random.Random(1)
    by_window = sorted(partials, key=lambda p: p.window_start)
    for i in range(n):
        actor = f"u{i:08d}"
        for k in range(3):
            source = by_window[rng.randrange(len(by_window))]
            start = 60.0 * (3 * i + k)
            processor.add_partial(ActorPartial("c:0", actor, start, source.activity))
        processor.close(0.0, 60.0 * (3 * i + 3))
    processor.pending.clear()
    assert len(processor) == n


def checkpoint_cost(n: int, partials: list[ActorPartial]) -> dict[str, float]:
    """A checkpoint of `n` actors' state (streams/state.py): compressed bytes per actor, and
    seconds to encode and to decode it."""
    processor = ActorProcessor(ActorConfig(warmup=10**9, max_actors=n + 1, ttl_s=1e12))
    populate(processor, n, partials)
    started = time.perf_counter()
    blob = Checkpoints.encode(processor)
    encoded = time.perf_counter() - started
    started = time.perf_counter()
    codec.decode(blob)
    decoded = time.perf_counter() - started
    return {
        f"checkpoint_bytes_per_actor_at_{n}": round(len(blob) / n),
        f"checkpoint_encode_s_at_{n}": round(encoded, 3),
        f"checkpoint_decode_s_at_{n}": round(decoded, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--actors", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument(
        "--trace-up-to",
        type=int,
        default=200_000,
        help="tracemalloc up to this many actors, resident-set growth above",
    )
    parser.add_argument("--checkpoint-actors", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="50k events, 100k actors")
    parser.add_argument("--out", default="bench-actors.json")
    args = parser.parse_args()
    if args.quick:
        args.events, args.actors = 50_000, [100_000]

    messages = simulated_events(args.events)
    parse_us, collect_us, partials = stage_one(messages)
    score_us, windows, actors = stage_two(partials)
    memory = {}
    for n in args.actors:
        started = time.perf_counter()
        how = "traced" if n <= args.trace_up_to else "rss"
        if how == "traced":
            value = memory_per_actor(n, partials, True)
        else:  # in a fresh interpreter, whose heap holds no memory freed by the stages above
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                value = pool.apply(memory_per_actor, (n, partials, False))
        memory[f"{n}_{how}"] = value
        print(f"{n} actors: {value:.0f} bytes each, {how} ({time.perf_counter() - started:.0f} s)")
    results = {
        "events": len(messages),
        "parse_us_per_event": round(parse_us, 2),
        "stage1_us_per_event": round(collect_us, 2),
        "stage1_to_parse_ratio": round(collect_us / parse_us, 2),
        "stage2_us_per_actor_window": round(score_us, 2),
        "actor_windows": windows,
        "actor_windows_per_event": round(windows / len(messages), 3),
        "actors_in_run": actors,
        **{f"bytes_per_actor_at_{n}": round(b) for n, b in memory.items()},
        **checkpoint_cost(args.checkpoint_actors, partials),
    }
    print("| measure | value |\n|---|---|")
    for key, value in results.items():
        print(f"| {key} | {value} |")
    Path(args.out).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
