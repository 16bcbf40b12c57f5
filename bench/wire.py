"""What the worker's internal topic costs an event: stage 1's reports routed, encoded and read
back, this checkout against another, timed in turn on the same events.

    git worktree add ../before HEAD~1
    PYTHONPATH=. python bench/wire.py --baseline ../before [--hours 1] [--rate 20]
                                      [--actors 20000] [--repeat 3]

`abuse-monitor evaluate` hands stage 1's reports to stage 2 as objects; the worker sends them
through the internal topic: `detectors.stages.route` splits them by stage-2 partition,
`streams.records.encode_reports` makes the messages, and each stage-2 partition decodes its own
(`decode_signal_report`, `stage_report`). So `bench/instructions.py`, which counts `evaluate`,
sees the routing and not the rest. Here each checkout runs `evaluate` once over the same
simulated events to collect what its stage 1 reported, with the garbage collector tuned as the
worker tunes it, then times each step over all of it (the best of three passes), in its own
process, the checkouts in turn `--repeat` times. Prints µs per event for each step, the best
run of each checkout, their ratio, and the bytes an event puts on the topic.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from bench import traffic
from simulator import write_files

CHECKOUT = Path(__file__).resolve().parent.parent
STEPS = ("route", "encode", "decode", "stage_report")
RUN = """
import sys, time
from pathlib import Path
import orjson
from detectors import stages
from streams import records
from streams.evaluate import evaluate
from streams.runtime import tune_gc
from streams.settings import Settings

tune_gc()  # as the worker runs
reported = []
route = stages.route

def keep(ingested, partitions, partitioner):
    reported.append(ingested)
    return route(ingested, partitions, partitioner)

stages.route = keep
evaluate(Path(sys.argv[1]), Settings(input_partitions=4, partitions=4))
stages.route = route

def best(step):
    times = []
    for _ in range(3):
        started = time.perf_counter()
        out = step()
        times.append(time.perf_counter() - started)
    return min(times), out

seconds = {}
seconds["route"], routed = best(lambda: [route(i, 4, records.partition_of) for i in reported])
seconds["encode"], sent = best(lambda: [records.encode_reports(r) for r in routed])
messages = [raw for batch in sent for _, raw in batch]
seconds["decode"], read = best(lambda: [records.decode_signal_report(m) for m in messages])
seconds["stage_report"], _ = best(lambda: [records.stage_report(r) for r in read])
sys.stdout.write(orjson.dumps({"seconds": seconds, "bytes": sum(map(len, messages))}).decode())
"""


def run(checkout: Path, events: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(events)],
        env=os.environ | {"PYTHONPATH": str(checkout)},
        cwd=checkout,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        sys.exit(f"the internal topic's steps of {checkout} failed: {tail[0]}")
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the other checkout")
    traffic.add_options(parser)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each checkout, in turn")
    args = parser.parse_args()
    if not (args.baseline / "streams" / "records.py").is_file():
        sys.exit(f"wire: {args.baseline} is not a checkout of this project")
    events = Path(tempfile.mkdtemp()) / "events.jsonl"
    config = traffic.config(args)
    total, _ = write_files(events, config)
    checkouts = {"baseline": args.baseline.resolve(), "this": CHECKOUT}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in checkouts}
    for _ in range(args.repeat):
        for name, checkout in checkouts.items():
            runs[name].append(run(checkout, events))
    print(f"{total} events; µs an event, the best of {args.repeat} runs each, in turn\n")
    print("| checkout | " + " | ".join(STEPS) + " | in all | bytes an event |")
    print("|---|" + "---:|" * (len(STEPS) + 2))
    best: dict[str, float] = {}
    for name, checkout in checkouts.items():
        per_step = {
            step: min(r["seconds"][step] for r in runs[name]) / total * 1e6 for step in STEPS
        }
        best[name] = sum(per_step.values())
        size = runs[name][0]["bytes"] / total
        cells = " | ".join(f"{per_step[step]:.2f}" for step in STEPS)
        print(f"| {name}: {checkout} | {cells} | {best[name]:.2f} | {size:.0f} |")
    print(f"\nthis / baseline, in all: {best['this'] / best['baseline']:.3f}")


if __name__ == "__main__":
    main()
