"""Scores anomaly-score files by the rules of the Numenta Anomaly Benchmark (NAB).

    python bench/nab_score.py --results DIR [--data NAB]

NAB's data comes from github.com/numenta/NAB (its data/, labels/ and config/ folders): `--data`,
else the folder named by ABUSEMON_NAB_DATA, else ../shared/data/nab beside the checkout.

`DIR/<category>/<file>.csv` holds `timestamp,value,anomaly_score` for every data file. The
rules, as NAB's scorer applies them (Lavin and Ahmad, ICMLA 2015, and NAB's `sweeper`):

* The first 15% of each file's rows, at most 750, is a probation period: nothing in it counts.
* A row is a detection when its anomaly score is at or above the threshold.
* Inside a labelled window only the first detection counts. It earns `tpWeight` times
  `sigmoid_scaled(position) / sigmoid_scaled(-1)`, where the position runs from -1 at the
  window's first row towards 0 at its last, so an early detection earns about 1.
* A window without a detection costs `fnWeight`.
* Every detection outside the windows costs `fpWeight` times the scaled sigmoid of its
  distance past the end of the preceding window, in window widths (close behind a window it
  costs little, three widths or more away, or before any window, the full `fpWeight`).
* One threshold per profile for the whole corpus, the one that maximises the total.
* Normalised score = 100 * (raw - null) / (perfect - null): null is the same optimisation for
  a detector that gives every row the same score, perfect is `tpWeight` per window.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

PROBATION_PERCENT = 0.15
PROBATION_CAP = 750  # 15% of 5000 rows

NAB_DATA_ENV = "ABUSEMON_NAB_DATA"
NAB_BESIDE = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab"
NAB_NEEDED = ("data", "labels/combined_windows.json", "config/profiles.json")


class NabDataMissing(Exception):
    """NAB's data is not where it was looked for; the message says where to get it."""


def nab_data(given: Path | None = None) -> Path:
    """NAB's folder: `given`, else $ABUSEMON_NAB_DATA, else ../shared/data/nab beside the
    checkout. Raises NabDataMissing unless it holds what the benchmark reads."""
    if given is None:
        named = os.environ.get(NAB_DATA_ENV)
        given = Path(named) if named else NAB_BESIDE
    absent = [part for part in NAB_NEEDED if not (given / part).exists()]
    if absent:
        raise NabDataMissing(
            f"no NAB data at {given} (missing {', '.join(absent)}): set {NAB_DATA_ENV} to a"
            " folder holding the data/, labels/ and config/ folders of github.com/numenta/NAB"
        )
    return given


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def scaled_sigmoid(position: float) -> float:
    """-1 (a window's left edge) -> 0.987, 0 (right edge) -> 0, >= 3 windows past -> -1."""
    if position >= 3.0:
        return -1.0
    return 2.0 * sigmoid(-5.0 * position) - 1.0


MAX_TP = scaled_sigmoid(-1.0)


@dataclass(frozen=True)
class Profile:
    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


@dataclass(frozen=True)
class Row:
    """One scorable row: the detector's score, what detecting it is worth, and its window."""

    score: float
    weight: float
    window: str | None


@dataclass(frozen=True)
class ProfileResult:
    profile: str
    threshold: float
    raw: float
    null: float
    perfect: float
    score: float


def probation_length(rows: int) -> int:
    return min(math.floor(PROBATION_PERCENT * rows), PROBATION_CAP)


def load_profiles(path: Path) -> list[Profile]:
    raw = json.loads(path.read_text())
    return [
        Profile(
            name,
            float(p["CostMatrix"]["tpWeight"]),
            float(p["CostMatrix"]["fpWeight"]),
            float(p["CostMatrix"]["fnWeight"]),
        )
        for name, p in raw.items()
    ]


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.strip())


def load_windows(path: Path) -> dict[str, list[tuple[datetime, datetime]]]:
    raw = json.loads(path.read_text())
    return {
        name: [(parse_time(a), parse_time(b)) for a, b in limits] for name, limits in raw.items()
    }


def sweep(
    name: str,
    timestamps: Sequence[datetime],
    scores: Sequence[float],
    windows: Sequence[tuple[datetime, datetime]],
    profile: Profile,
) -> list[Row]:
    """The scorable rows of one file with what each would earn or cost if detected."""
    if len(timestamps) != len(scores):
        raise ValueError(f"{name}: {len(timestamps)} timestamps but {len(scores)} scores")
    index = {t: i for i, t in enumerate(timestamps)}
    pending = sorted(windows)
    probation = probation_length(len(timestamps))
    rows: list[Row] = []
    current: str | None = None
    right = width = 0
    prev_right: int | None = None
    prev_width = 0
    for i, (t, score) in enumerate(zip(timestamps, scores, strict=True)):
        if pending and t == pending[0][0]:
            start, end = pending.pop(0)
            current = f"{name}|{start.isoformat()}"
            right = index[end]
            width = right - index[start] + 1
        if current is not None:
            weight = scaled_sigmoid(-(right - i + 1) / width) * profile.tp_weight / MAX_TP
        else:
            past = 3.0 if prev_right is None else abs(prev_right - i) / (prev_width - 1)
            weight = scaled_sigmoid(past) * profile.fp_weight
        if i >= probation:
            rows.append(Row(score, weight, current))
        if current is not None and i == right:
            prev_right, prev_width = right, width
            current = None
    return rows


def scores_by_threshold(rows: Iterable[Row], profile: Profile) -> list[tuple[float, float]]:
    """(threshold, total) for every distinct score, detections being rows at or above it.

    The first entry, threshold +inf, detects nothing: every window is missed.
    """
    ordered = sorted(rows, key=lambda r: r.score, reverse=True)
    parts: dict[str, float] = {}
    for r in ordered:
        if r.window is not None:
            parts[r.window] = -profile.fn_weight
    total = sum(parts.values())
    out = [(math.inf, total)]
    for k, r in enumerate(ordered):
        if r.window is None:
            total += r.weight
        else:
            best = max(parts[r.window], r.weight)
            total += best - parts[r.window]
            parts[r.window] = best
        if k + 1 == len(ordered) or ordered[k + 1].score != r.score:
            out.append((r.score, total))
    return out


def best_threshold(rows: Sequence[Row], profile: Profile) -> tuple[float, float]:
    """The corpus-wide threshold with the highest total, and that total (first one on ties)."""
    return max(scores_by_threshold(rows, profile), key=lambda p: p[1])


def score_corpus(
    results: Mapping[str, tuple[Sequence[datetime], Sequence[float]]],
    windows: Mapping[str, Sequence[tuple[datetime, datetime]]],
    profiles: Sequence[Profile],
) -> list[ProfileResult]:
    """Normalised NAB scores of one detector's results (file name -> timestamps, scores)."""
    out = []
    for profile in profiles:
        rows: list[Row] = []
        null_rows: list[Row] = []
        for name, (timestamps, scores) in sorted(results.items()):
            file_windows = windows.get(name, [])
            rows += sweep(name, timestamps, scores, file_windows, profile)
            null_rows += sweep(name, timestamps, [0.5] * len(scores), file_windows, profile)
        threshold, raw = best_threshold(rows, profile)
        _, null = best_threshold(null_rows, profile)
        perfect = profile.tp_weight * sum(len(windows.get(name, [])) for name in results)
        score = 100.0 * (raw - null) / (perfect - null) if perfect != null else 0.0
        out.append(ProfileResult(profile.name, threshold, raw, null, perfect, score))
    return out


def read_results(path: Path) -> tuple[list[datetime], list[float]]:
    timestamps, scores = [], []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            timestamps.append(parse_time(row["timestamp"]))
            scores.append(float(row["anomaly_score"]))
    return timestamps, scores


def score_directory(data: Path, results: Path) -> list[ProfileResult]:
    windows = load_windows(data / "labels" / "combined_windows.json")
    profiles = load_profiles(data / "config" / "profiles.json")
    found = {name: read_results(results / name) for name in sorted(windows)}
    return score_corpus(found, windows, profiles)


def report(results: Sequence[ProfileResult]) -> str:
    lines = [
        f"{'profile':<20} {'score':>7} {'threshold':>10} {'raw':>9} {'null':>9} {'perfect':>8}"
    ]
    for r in results:
        lines.append(
            f"{r.profile:<20} {r.score:7.1f} {r.threshold:10.6f} {r.raw:9.2f} {r.null:9.2f} "
            f"{r.perfect:8.1f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help=f"NAB directory (default: ${NAB_DATA_ENV})")
    parser.add_argument("--results", type=Path, required=True, help="anomaly-score files")
    args = parser.parse_args(argv)
    try:
        print(report(score_directory(nab_data(args.data), args.results)))
    except (NabDataMissing, OSError) as e:
        sys.exit(f"nab_score.py: {e}")


if __name__ == "__main__":
    main()
