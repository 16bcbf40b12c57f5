"""Whether a change leaves detection as it was: `abuse-monitor evaluate` of this checkout and
of another (say, the commit before a speed-up) over the same events, alert for alert.

    git worktree add ../before HEAD~1
    PYTHONPATH=. python bench/same_alerts.py --baseline ../before            # three days
    PYTHONPATH=. python bench/same_alerts.py --baseline ../before --events day.jsonl

Without `--events`, simulates the days a change to the engine must leave alone: seeds 7 and 1
with attacks, and seed 7 at half strength (`--hours` each). Alerts are compared as records
without `emitted_at`, in the order `evaluate` wrote them. Prints one line per file and exits
1 if any differs, with the first difference.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

from simulator import SimConfig, write_files

CHECKOUT = Path(__file__).resolve().parent.parent


def alerts_of(checkout: Path, events: Path, out: Path) -> list[bytes]:
    """The alert records `evaluate` of `checkout` writes for `events`, without `emitted_at`."""
    subprocess.run(
        [sys.executable, "-m", "streams.cli", "evaluate", "--events", str(events),
         "--alerts-out", str(out)],
        env=os.environ | {"PYTHONPATH": str(checkout)},
        cwd=checkout,
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    records = []
    for line in out.read_bytes().splitlines():
        record = orjson.loads(line)
        record.pop("emitted_at", None)
        records.append(orjson.dumps(record, option=orjson.OPT_SORT_KEYS))
    return records


def compare(before: list[bytes], after: list[bytes]) -> str | None:
    """None when the two are the same records in the same order; else the first difference."""
    for i, (a, b) in enumerate(zip(before, after, strict=False)):
        if a != b:
            return f"message {i + 1} differs:\n  before {a[:400]!r}\n  after  {b[:400]!r}"
    if len(before) != len(after):
        return f"{len(before)} messages before, {len(after)} after"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the other checkout")
    parser.add_argument("--events", type=Path, nargs="*", help="event files (default: simulated)")
    parser.add_argument("--hours", type=float, default=24.0, help="of each simulated day")
    args = parser.parse_args()
    if not (args.baseline / "streams" / "cli.py").is_file():
        sys.exit(f"same_alerts: {args.baseline} is not a checkout of this project")

    work = Path(tempfile.mkdtemp(prefix="same-alerts-"))
    files = list(args.events or [])
    if not files:
        for name, seed, scale in (("seed7", 7, 1.0), ("seed1", 1, 1.0), ("seed7-half", 7, 0.5)):
            path = work / f"{name}.jsonl"
            write_files(
                path, SimConfig(duration_s=args.hours * 3600, seed=seed, attack_scale=scale)
            )
            files.append(path)
    different = 0
    for events in files:
        before = alerts_of(args.baseline.resolve(), events, work / "before.jsonl")
        after = alerts_of(CHECKOUT, events, work / "after.jsonl")
        difference = compare(before, after)
        verdict = "identical" if difference is None else difference
        print(f"{events.name}: {len(after)} alert messages, {verdict}")
        different += difference is not None
    sys.exit(1 if different else 0)


if __name__ == "__main__":
    main()
