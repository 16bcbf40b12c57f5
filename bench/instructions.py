"""Instructions an event costs in the stages: this checkout against another, counted, not timed.

    git worktree add ../before HEAD~1
    PYTHONPATH=. python bench/instructions.py --baseline ../before [--hours 1] [--rate 20]
                                              [--actors 20000] [--repeat 1]

On a shared machine the time a run takes moves by 5% and more from one run to the next, as
much as most single changes to the engine save. The instructions it executes barely move:
Valgrind's cachegrind (`valgrind`, a Debian package; no cache simulation) counts them for
`abuse-monitor evaluate` of each checkout over the same simulated events, once over 36 s of
traffic (the start: imports, the first windows) and once over `--hours`. The difference, per
event, is what the events cost. Instructions are not time (a cache miss costs more than an
add), but the engine is Python run by the interpreter, whose time follows the instructions it
executes; bench/throughput.py measures the time. Python's string hashes are seeded alike in
every run, so a checkout's count repeats. The runs go side by side, one a core. Prints a
table and exits 1 when Valgrind is missing or a run fails. Takes three to four minutes per
checkout and hour at the default rate.

The default traffic is the simulator's day at 20 events/s among 20,000 accounts: few events
a window, so what a window's close costs weighs more than it would at a platform's rates.
`--rate 1000 --actors 200000 --hours 0.05` is denser (about 170,000 events): coordination
buckets hold tens of texts, and comparing them counts.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import traffic
from simulator import write_files

CHECKOUT = Path(__file__).resolve().parent.parent
START_S = 36.0  # the short run: imports and the first windows, subtracted
RUN = """
import sys
from pathlib import Path
from streams.evaluate import evaluate
from streams.runtime import gc_tuned
from streams.settings import Settings
with gc_tuned():  # as the command runs it
    evaluate(Path(sys.argv[1]), Settings(input_partitions=4, partitions=4))
"""


def instructions(checkout: Path, events: Path) -> int:
    """Instructions executed by `evaluate` of `checkout` over `events`, start to end."""
    done = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         sys.executable, "-c", RUN, str(events)],
        # A fixed hash seed: the same sets and dicts of strings, in the same order, each run.
        env=os.environ | {"PYTHONPATH": str(checkout), "PYTHONHASHSEED": "0"},
        cwd=checkout,
        capture_output=True,
        text=True,
    )  # fmt: skip
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode or found is None:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        sys.exit(f"evaluate of {checkout} under valgrind failed: {tail[0]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the other checkout")
    traffic.add_options(parser)
    parser.add_argument("--repeat", type=int, default=1, help="counts of each (they agree)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install -y valgrind)")
    folder = Path(tempfile.mkdtemp())
    start, events = folder / "start.jsonl", folder / "events.jsonl"
    config = traffic.config(args)
    total, _ = write_files(events, config)
    base, _ = write_files(start, dataclasses.replace(config, duration_s=START_S))
    checkouts = {"baseline": args.baseline.resolve(), "this": CHECKOUT}
    jobs = [
        (name, run, file)
        for name in checkouts
        for run in range(args.repeat)
        for file in (events, start)
    ]
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        counted = dict(
            zip(
                jobs,
                pool.map(lambda job: instructions(checkouts[job[0]], job[2]), jobs),
                strict=True,
            )
        )
    per_event: dict[str, float] = {}
    print(f"{total - base} events ({args.hours} h less the first {START_S:.0f} s)\n")
    print("| checkout | instructions per event | runs |")
    print("|---|---:|---|")
    for name, checkout in checkouts.items():
        runs = [
            (counted[name, run, events] - counted[name, run, start]) / (total - base)
            for run in range(args.repeat)
        ]
        per_event[name] = min(runs)
        print(f"| {name}: {checkout} | {per_event[name]:,.0f} | "
              + " ".join(f"{r:,.0f}" for r in runs) + " |")  # fmt: skip
    print(f"\nthis / baseline: {per_event['this'] / per_event['baseline']:.3f}")


if __name__ == "__main__":
    main()
