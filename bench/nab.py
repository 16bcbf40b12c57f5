"""Runs the rate-series spike detector over the Numenta Anomaly Benchmark and scores it.

    python bench/nab.py --out DIR [--data NAB] [--files GLOB]

NAB's data comes from github.com/numenta/NAB (its data/, labels/ and config/ folders): `--data`,
else the folder named by ABUSEMON_NAB_DATA, else ../shared/data/nab beside the checkout.

Every data file is read one row at a time: each row is given to a fresh detector made by
`detectors.pipeline.rate_detector` (the worker's own factory and settings for a dense rate
series), its verdict is written as `anomaly_score` in [0, 1], and the detector then learns
from the row. Nothing looks ahead: the only thing taken from the data before the detector
exists is the series' step, the time between its first two rows, which plays the part of the
worker's window width. Writes `DIR/<category>/<file>.csv` (timestamp,value,anomaly_score),
prints the NAB scores of the three profiles (see bench/nab_score.py) and the rows per second.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.nab_score import (
    NAB_DATA_ENV,
    NabDataMissing,
    ProfileResult,
    load_profiles,
    load_windows,
    nab_data,
    parse_time,
    report,
    score_corpus,
)
from detectors.pipeline import DetectionConfig, rate_detector
from detectors.spike import SpikeDetector


def read_series(path: Path) -> list[tuple[str, float]]:
    with path.open(newline="") as f:
        return [(row["timestamp"], float(row["value"])) for row in csv.DictReader(f)]


def detect(rows: Sequence[tuple[str, float]]) -> Iterator[float]:
    """Anomaly scores of one series, each computed before its row is learned."""
    config = DetectionConfig()
    detector: SpikeDetector | None = None
    first: tuple[float, float] | None = None
    for stamp, value in rows:
        t = parse_time(stamp).timestamp()
        if detector is None:
            if first is None:
                first = (t, value)
                yield 0.0
                continue
            step = t - first[0]
            detector = rate_detector(replace(config, window_s=step), sparse=False)
            detector.step(*first)
        yield detector.step(t, value).anomaly


def run(
    data: Path, out: Path, pattern: str = "*"
) -> tuple[dict[str, tuple[list[datetime], list[float]]], int, float]:
    windows = load_windows(data / "labels" / "combined_windows.json")
    results: dict[str, tuple[list[datetime], list[float]]] = {}
    rows_total, elapsed = 0, 0.0
    for name in sorted(windows):
        if not fnmatch.fnmatch(name, pattern):
            continue
        rows = read_series(data / "data" / name)
        started = time.perf_counter()
        scores = list(detect(rows))
        elapsed += time.perf_counter() - started
        rows_total += len(rows)
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["timestamp", "value", "anomaly_score"])
            for (stamp, value), score in zip(rows, scores, strict=True):
                writer.writerow([stamp, repr(value), f"{score:.12g}"])
        results[name] = ([parse_time(s) for s, _ in rows], scores)
    return results, rows_total, elapsed


def benchmark(data: Path, out: Path, pattern: str = "*") -> tuple[list[ProfileResult], float]:
    results, rows, elapsed = run(data, out, pattern)
    windows = load_windows(data / "labels" / "combined_windows.json")
    profiles = load_profiles(data / "config" / "profiles.json")
    return score_corpus(results, windows, profiles), rows / elapsed if elapsed else 0.0


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help=f"NAB directory (default: ${NAB_DATA_ENV})")
    parser.add_argument("--out", type=Path, required=True, help="where to write the scores")
    parser.add_argument("--files", default="*", help="only data files matching this glob")
    args = parser.parse_args(argv)
    try:
        scores, rate = benchmark(nab_data(args.data), args.out, args.files)
    except (NabDataMissing, OSError) as e:
        sys.exit(f"nab.py: {e}")
    print(report(scores))
    print(f"detector: {rate:,.0f} rows/s")


if __name__ == "__main__":
    main()
