"""The top self-time and cumulative entries of a py-spy profile in collapsed-stack form.

    python bench/profile_summary.py profile/worker.raw [--top 20] [--idle]

`py-spy record --format raw` writes one line per distinct stack: frames separated by `;`, each
`function (file:line)`, then the number of samples. Functions are counted without their line
numbers; self time is the share of samples whose innermost frame is the function, cumulative
the share in which it is anywhere on the stack. Samples of the event loop waiting for I/O
(`select`) and of idle threads are left out unless `--idle` is given, so the shares are of
the time the worker was busy. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

LINE = re.compile(r":\d+\)$")
# Innermost frames of a thread waiting (for I/O, a lock, a request), and of start-up imports.
IDLE = (".select (selectors.py)", ".wait (threading.py)", "serve_forever (socketserver.py)")
IMPORT = "_find_and_load ("


def frame_name(frame: str) -> str:
    """`ingest (/srv/abuse-monitor/streams/app.py:160)` -> `ingest (streams/app.py)`."""
    name = LINE.sub(")", frame.strip())
    if "(" in name:
        func, _, where = name.partition(" (")
        parts = where.rstrip(")").split("/")
        site = parts.index("site-packages") + 1 if "site-packages" in parts else len(parts) - 2
        parts = parts[site:]
        name = f"{func} ({'/'.join(parts)})"
    return name


def package(frame: str) -> str:
    """The top-level package of a frame's file: `faust`, `detectors`, `asyncio`..."""
    where = frame.rpartition(" (")[2].rstrip(")")
    return where.split("/")[0] if "/" in where else where.removesuffix(".py")


def summarise(
    path: Path, keep_idle: bool
) -> tuple[int, int, Counter[str], Counter[str], Counter[str]]:
    packages: Counter[str] = Counter()
    own: Counter[str] = Counter()
    cumulative: Counter[str] = Counter()
    total = busy = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [frame_name(f) for f in stack.split(";")]
        if not keep_idle and (
            any(f.endswith(IDLE) for f in frames[-3:]) or any(IMPORT in f for f in frames)
        ):
            continue
        busy += n
        own[frames[-1]] += n
        packages[package(frames[-1])] += n
        for frame in set(frames):
            cumulative[frame] += n
    return total, busy, own, cumulative, packages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--idle", action="store_true", help="keep the idle samples")
    args = parser.parse_args()
    total, busy, own, cumulative, packages = summarise(args.path, args.idle)
    print(f"{total} samples, {busy} busy ({busy / max(total, 1):.0%})\n")
    tables = (("self", own, "function"), ("cumulative", cumulative, "function"))
    for title, counts, what in (("self", packages, "package"), *tables):
        print(f"| {title} % of busy | {what} |\n|---:|---|")
        for name, n in counts.most_common(args.top):
            print(f"| {100 * n / max(busy, 1):.1f} | `{name}` |")
        print()


if __name__ == "__main__":
    main()
