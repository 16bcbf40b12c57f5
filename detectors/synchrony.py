"""Synchronised accounts: many accounts acting in the same minutes, again and again, for hours.

Accounts run by one scheduler act in the same time slots across many windows, which
independent people rarely do (the idea of SynchroTrap, Cao et al., CCS 2014). Such accounts
can stay below every per-window gate: a few short posts an hour each, no links, texts too
short and too varied to be near-duplicates. What gives them away is that their activity
times match, slot for slot, over hours.

Found in the stages that carry the other coordination rows (detectors/coordination.py):

- `Schedules`, in stage 1 of each input partition (content is keyed by its author, so all of
  an author's activity is there), remembers each author's activity times over the horizon.
  When a window closes, each author active in it whose horizon holds a schedule becomes a
  `schedule` row: its times, and the MinHash of its slots banded for LSH as texts are, so
  accounts whose slot sets are similar meet in a bucket. A schedule is at least
  `synchrony_min_slots` distinct slots, spread over at least `MIN_SPAN_S`, filling at most
  `MAX_FILL` of the slots between its first and last: a stream of activity matches any
  other stream, a schedule only the accounts that keep it.
- `CoordinationIndex` keeps these rows as any others and, for a bucket of at least
  `min_synchronised` accounts, keeps those whose slot sets are similar to the bucket's most
  typical one (`similar`), compared whole; the `Coordinator` folds the buckets of one group
  into one `content_campaign` alert with `campaign_kind` "synchronised" and the shared
  schedule as evidence.

Each time falls in a slot of `synchrony_slot_s` on two grids, the second shifted by half a
slot: two times a few seconds apart share a slot whichever side of a boundary they fall on.

>>> elements([29.0], 30.0), elements([31.0], 30.0)
({0, 3}, {2, 3})
"""

from __future__ import annotations

import math
from array import array
from collections import OrderedDict
from collections.abc import Iterable
from itertools import chain, pairwise
from statistics import median
from typing import Final

import numpy as np

from detectors.events import ContentEvent
from detectors.text import minhash_flat

SCHEDULE: Final = "schedule"  # the kind of the rows and candidates
BANDS = 10
ROWS = 3  # signature bytes per band: collision in some band is 1 - (1 - J^3)^10, 0.9 at J = 0.6
MAX_TIMES = 64  # activity times kept per author: enough for a schedule over hours
MIN_SPAN_S = 3600.0
MAX_FILL = 0.25
MAX_LISTED = 24  # shared slots listed in an alert


def elements(times: Iterable[float], slot_s: float) -> set[int]:
    """The slots of activity times on both grids (even: the grid, odd: the shifted one)."""
    out = set()
    for t in times:
        out.add(2 * math.floor(t / slot_s))
        out.add(2 * math.floor(t / slot_s + 0.5) + 1)
    return out


def similar(a: set[int], b: set[int]) -> float:
    """Jaccard similarity of two accounts' slots."""
    return len(a & b) / len(a | b) if a or b else 0.0


def bands(sig: bytes) -> tuple[str, ...]:
    """The LSH bucket keys of a schedule's signature.

    >>> bands(bytes(range(32)))[:2]
    ('0:000102', '1:030405')
    """
    digits = sig.hex()
    return tuple(f"{b}:{digits[2 * ROWS * b : 2 * ROWS * (b + 1)]}" for b in range(BANDS))


def encode(times: Iterable[int]) -> str:
    """Activity times (whole seconds) for a row's `detail`."""
    return " ".join(map(str, times))


def decode(detail: str) -> list[float]:
    """The activity times of a row's `detail`; none if it is not a list of times."""
    try:
        return [float(t) for t in detail.split()]
    except ValueError:
        return []


# What a schedule row says of an author besides the times, from their last event in the
# window: (event id, account creation when known, device hash or "").
Active = tuple[str, float | None, str]


class Schedules:
    """Stage 1 of one input partition: each author's recent activity times, and the authors
    active in each open window. At most `max_authors` authors are remembered, the least
    recently active dropped first; at most `MAX_TIMES` times each."""

    def __init__(
        self,
        window_s: float = 60.0,
        horizon_s: float = 10800.0,
        slot_s: float = 30.0,
        min_slots: int = 5,
        max_authors: int = 200_000,
    ) -> None:
        self.window_s = window_s
        self.horizon_s = horizon_s
        self.slot_s = slot_s
        self.min_slots = min_slots
        self.max_authors = max_authors
        # Author -> activity times in whole seconds (4 bytes a time), in the order they came.
        self.times: OrderedDict[str, array[int]] = OrderedDict()
        self.open: dict[float, dict[str, Active]] = {}  # window start -> author -> last event

    def add(self, event: ContentEvent, window_start: float) -> None:
        """Add one counted content event of the window starting at `window_start`."""
        author, times = event.actor_id, self.times
        kept = times.get(author)
        if kept is None:
            kept = times[author] = array("I")
            if len(times) > self.max_authors:
                times.popitem(last=False)
        else:
            times.move_to_end(author)
            if len(kept) >= MAX_TIMES:
                del kept[0]
        kept.append(int(event.ts))
        active = self.open.get(window_start)
        if active is None:
            active = self.open[window_start] = {}
        device = event.attrs.get("device_hash", "") if event.attrs else ""
        active[author] = (event.event_id, event.actor_created_at, device)

    def close(self, closed_until: float) -> list[tuple[float, tuple[str, Active, list[int]]]]:
        """(window start, (author, last event, times)) of each author holding a schedule and
        active in a window ending at or before `closed_until`; `rows` makes them rows."""
        out = []
        fewest = self.min_slots
        for start in sorted(s for s in self.open if s < closed_until):
            active = self.open.pop(start)
            end = start + self.window_s
            since = end - self.horizon_s
            for author in sorted(active):
                kept = self.times.get(author)
                # Most authors have too few times, or none an hour before: no schedule.
                if kept is None or len(kept) < fewest or end - min(kept) < MIN_SPAN_S:
                    continue
                times = sorted({t for t in kept if since <= t < end})
                if self.is_schedule(times):
                    out.append((start, (author, active[author], times)))
        return out

    def is_schedule(self, times: list[int]) -> bool:
        """Whether sorted activity times are a schedule: enough slots, spread, not filled.

        >>> s = Schedules(min_slots=3)
        >>> s.is_schedule([0, 1200, 2400, 3600]), s.is_schedule(list(range(0, 3600, 30)))
        (True, False)
        """
        slots = {t // self.slot_s for t in times}
        if len(slots) < self.min_slots:
            return False
        span = max(slots) - min(slots) + 1
        return span * self.slot_s >= MIN_SPAN_S and len(slots) <= MAX_FILL * span


def signatures(schedules: list[list[int]], slot_s: float) -> list[bytes]:
    """The MinHash signatures of the schedules' slots (`elements`), in one vectorised step.

    >>> from detectors.text import similarity
    >>> a, b, c = signatures([[0, 1020, 2040], [2, 1021, 2045], [500, 1500, 2500]], 30.0)
    >>> similarity(a, b) > 0.5 > similarity(a, c)
    True
    """
    sizes = [len(times) for times in schedules]
    t = np.fromiter(chain.from_iterable(schedules), dtype=np.float64, count=sum(sizes))
    slots = np.empty(2 * len(t), dtype=np.int64)
    slots[0::2] = 2 * np.floor(t / slot_s)  # the grid
    slots[1::2] = 2 * np.floor(t / slot_s + 0.5) + 1  # the shifted one
    # Mixed into 32 bits (Fibonacci hashing), as the permutations want hashes.
    hashes = (slots.view(np.uint64) * _GOLDEN) >> np.uint64(32)
    return minhash_flat(hashes, [2 * n for n in sizes])


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def shared(schedules: list[list[float]], slot_s: float) -> list[float]:
    """The times of the slots that at least half of the schedules hold (the median time of
    each): the schedule the group keeps.

    >>> shared([[0.0, 600.0, 1200.0], [3.0, 604.0, 1800.0], [1.0, 1201.0, 2400.0]], 30.0)
    [1.0, 602.0, 1200.5]
    """
    by_slot: dict[int, list[float]] = {}
    for times in schedules:
        for slot, t in {math.floor(t / slot_s): t for t in times}.items():
            by_slot.setdefault(slot, []).append(t)
    # Times either side of a boundary: the slot before takes those of the slot after, when
    # each alone is short of half.
    half = len(schedules) / 2
    out = []
    for slot in sorted(by_slot):
        times = by_slot[slot]
        if len(times) < half and slot + 1 in by_slot and len(by_slot[slot + 1]) < half:
            times = by_slot[slot + 1] = times + by_slot[slot + 1]
            continue
        if len(times) >= half:
            out.append(median(times))
    return out


def period(times: list[float]) -> float | None:
    """The median gap between consecutive shared times, if there are two."""
    gaps = [b - a for a, b in pairwise(times)]
    return median(gaps) if gaps else None
