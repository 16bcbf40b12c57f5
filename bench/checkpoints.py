"""Checkpoints of a simulated hour's state: their size and the time to encode and decode them,
with `detectors.codec` (what the worker writes) and with pickle (what it wrote before).

    python bench/checkpoints.py [--hours 1] [--rate 20] [--actors 20000] [--model quantile]
                                [--repeat 3] [--big-actors 0] [--quick] [--out FILE]

The simulator's traffic (all its scenarios) runs through `OfflinePipeline` with 4 input
partitions per topic and 4 stage-2 partitions, as a worker holds them; then each unit of state
is checkpointed as the worker saves it: one per input partition, one per stage-2 partition,
partition 0's with the coordinator and the label gate. Times are the best of `--repeat`;
`pack_ms` is the part of `encode_ms` that reads the state (`codec.pack`), the time the
worker's event loop waits for a checkpoint: the rest, compressing, runs beside it.
`--big-actors N` adds one stage-2 unit of N actors (bench/actors.py's population).
"""

from __future__ import annotations

import argparse
import pickle
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from detectors import codec
from detectors.actors import ActorConfig
from detectors.events import parse_event
from detectors.pipeline import DetectionConfig
from detectors.stages import OfflinePipeline
from simulator import SimConfig, generate
from streams.files import TOPIC_KEYS, partition_for

PARTITIONS = 4


def pickled(state: Any) -> bytes:
    return zlib.compress(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL), 1)


def unpickled(blob: bytes) -> Any:
    return pickle.loads(zlib.decompress(blob))


def best(f: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - started)
    return min(times), out


def units(hours: float, rate: float, actors: int, model: str) -> dict[str, Any]:
    config = SimConfig(duration_s=hours * 3600.0, rate=rate, actors=actors)
    sources: dict[str, set[int]] = {}
    stream = []
    for topic, value in generate(config):
        if topic == "labels":
            continue
        partition = partition_for(value[TOPIC_KEYS[topic]].encode(), PARTITIONS)
        sources.setdefault(topic, set()).add(partition)
        stream.append((topic, partition, parse_event(topic, orjson.dumps(value))))
    detection = DetectionConfig()
    pipeline = OfflinePipeline(
        detection,
        sources,
        ActorConfig(window_s=detection.window_s, model=model),
        PARTITIONS,
        lambda key, n: partition_for(key.encode(), n),
    )
    for i in range(0, len(stream), 1000):
        batches: dict[tuple[str, int], list[Any]] = {}
        for topic, partition, event in stream[i : i + 1000]:
            batches.setdefault((topic, partition), []).append(event)
        for (topic, partition), events in batches.items():
            pipeline.feed(topic, partition, events)
    print(f"{len(stream)} events, {sum(len(d.actors) for d in pipeline.detect)} actors held")
    out: dict[str, Any] = {f"ingest/{t}/{p}": unit for (t, p), unit in pipeline.ingest.items()}
    out["signals/0"] = [pipeline.detect[0], pipeline.coordinator, pipeline.gate]
    for i, detect in enumerate(pipeline.detect[1:], 1):
        out[f"signals/{i}"] = detect
    return out


def measure(name: str, state: Any, repeat: int) -> dict[str, Any]:
    pack_s, _ = best(lambda: codec.pack(state), repeat)
    encode_s, blob = best(lambda: codec.encode(state), repeat)
    decode_s, _ = best(lambda: codec.decode(blob), repeat)
    pickle_s, old = best(lambda: pickled(state), repeat)
    unpickle_s, _ = best(lambda: unpickled(old), repeat)
    return {
        "unit": name,
        "bytes": len(blob),
        "pickle_bytes": len(old),
        "pack_ms": round(pack_s * 1000, 1),
        "encode_ms": round(encode_s * 1000, 1),
        "pickle_ms": round(pickle_s * 1000, 1),
        "decode_ms": round(decode_s * 1000, 1),
        "unpickle_ms": round(unpickle_s * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--actors", type=int, default=20000)
    parser.add_argument("--model", default="quantile", choices=["quantile", "hst", "svm"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--big-actors", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a quarter of an hour, once")
    parser.add_argument("--out", default="bench-checkpoints.json")
    args = parser.parse_args()
    if args.quick:
        args.hours, args.repeat = 0.25, 1

    states = units(args.hours, args.rate, args.actors, args.model)
    if args.big_actors:
        from actors import populate, simulated_events, stage_one

        from detectors.actors import ActorProcessor

        processor = ActorProcessor(
            ActorConfig(warmup=10**9, max_actors=args.big_actors + 1, ttl_s=1e12)
        )
        populate(processor, args.big_actors, stage_one(simulated_events(50_000))[2])
        states[f"actors x{args.big_actors}"] = processor
    rows = [measure(name, state, args.repeat) for name, state in states.items()]
    total = {
        key: round(sum(row[key] for row in rows if not row["unit"].startswith("actors x")), 1)
        for key in rows[0]
        if key != "unit"
    }
    rows.append({"unit": "all units of the hour", **total})
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")
    Path(args.out).write_bytes(orjson.dumps({"args": vars(args), "units": rows}))


if __name__ == "__main__":
    main()
