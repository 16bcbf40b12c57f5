"""Event-time tumbling windows, split in two stages so no signal funnels through one place.

Stage 1, `PartitionCounter`, runs once per input partition: it drops repeated event ids,
counts each event towards its signals in the window its `ts` falls in, and when the
partition's watermark (latest ts seen minus the allowed lateness) passes a window's end,
emits that window's `Partial` counts followed by a `Watermark`. An event whose window has
already closed in its partition is late: counted as such, never silently dropped.

Stage 2, `GroupClock`, runs wherever a signal's series lives: it knows every source
partition's watermark and closes a window once all of them have passed it. Both stages depend
only on the order of events within each partition, which Kafka fixes, so the same input gives
the same windows however partitions interleave or how many workers run.

>>> counter = PartitionCounter("content", "content-events:0", sources=1, window_s=60,
...                            lateness_s=10)
>>> counter.add("e1", 5.0, ("content",))
('counted', [Watermark(group='content', source='content-events:0', sources=1, closed_until=-60.0)])
>>> counter.add("e1", 6.0, ("content",))[0]
'duplicate'
>>> status, out = counter.add("e2", 75.0, ("content",))
>>> out
[Partial(source='content-events:0', signal='content', window_start=0.0, count=1, sample_ids=('e1',)), Watermark(group='content', source='content-events:0', sources=1, closed_until=60.0)]
>>> counter.add("e3", 30.0, ("content",))[0]
'late'
"""

from __future__ import annotations

import math
from bisect import insort
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import msgspec

# Each window keeps the smallest few event ids of each signal as samples: the same ones
# however the events are spread over partitions.
SAMPLE_IDS = 5


class Partial(msgspec.Struct, frozen=True, gc=False):
    """One partition's count of one signal in one closed window. (Frozen msgspec structs, these
    records and the watermarks: there is one for every signal and window, made in stage 1 and
    again when stage 2 reads them, and a struct is made in a sixth of a frozen dataclass's
    time. Of strings and numbers only, they need no garbage collector.)"""

    source: str
    signal: str
    window_start: float
    count: int
    sample_ids: tuple[str, ...]


class Watermark(msgspec.Struct, frozen=True, gc=False):
    """Every window of `group` ending at or before `closed_until` is closed at `source`."""

    group: str
    source: str
    sources: int
    closed_until: float


@dataclass
class _Tally:
    count: int = 0
    sample_ids: list[str] = field(default_factory=list)


class PartitionCounter:
    """Stage 1 for one input partition: dedup, count, close windows on the watermark."""

    def __init__(
        self,
        group: str,
        source: str,
        sources: int,
        window_s: float,
        lateness_s: float,
        dedup_horizon_s: float = 3600.0,
        dedup_max_ids: int = 200_000,
    ) -> None:
        self.group = group
        self.source = source
        self.sources = sources
        self.window_s = window_s
        self.lateness_s = lateness_s
        self.dedup_horizon_s = dedup_horizon_s
        self.dedup_max_ids = dedup_max_ids
        self.max_ts = -math.inf
        self.closed_until = -math.inf
        self.open: dict[float, dict[str, _Tally]] = {}
        self.seen: OrderedDict[str, float] = OrderedDict()

    def window_of(self, ts: float) -> float:
        return float(math.floor(ts / self.window_s) * self.window_s)

    def add(
        self, event_id: str, ts: float, signals: tuple[str, ...]
    ) -> tuple[str, list[Partial | Watermark]]:
        """Count one event; returns `counted`, `duplicate` or `late`, and what closed."""
        if event_id in self.seen:
            return "duplicate", []
        self._remember(event_id, ts)
        start = self.window_of(ts)
        if start + self.window_s <= self.closed_until:
            return "late", []
        tallies = self.open.get(start)
        if tallies is None:  # not setdefault, which would make a dict each time
            tallies = self.open[start] = {}
        for signal in signals:
            tally = tallies.get(signal)
            if tally is None:
                tally = tallies[signal] = _Tally()
            tally.count += 1
            ids = tally.sample_ids
            if len(ids) < SAMPLE_IDS or event_id < ids[-1]:
                insort(ids, event_id)
                del ids[SAMPLE_IDS:]
        if ts > self.max_ts:
            self.max_ts = ts
            return "counted", self._close()
        return "counted", []

    def _remember(self, event_id: str, ts: float) -> None:
        self.seen[event_id] = ts
        horizon = self.max_ts - self.dedup_horizon_s
        while self.seen and (
            len(self.seen) > self.dedup_max_ids or next(iter(self.seen.values())) < horizon
        ):
            self.seen.popitem(last=False)

    def _close(self) -> list[Partial | Watermark]:
        closed_until = self.window_of(self.max_ts - self.lateness_s)
        if closed_until <= self.closed_until:
            return []
        self.closed_until = closed_until
        out: list[Partial | Watermark] = []
        for start in sorted(s for s in self.open if s + self.window_s <= closed_until):
            for signal, tally in self.open.pop(start).items():
                out.append(
                    Partial(self.source, signal, start, tally.count, tuple(tally.sample_ids))
                )
        out.append(Watermark(self.group, self.source, self.sources, closed_until))
        return out


class GroupClock:
    """Stage 2's view of one group's sources: the group closes what all sources closed.

    With `idle_s` (wall-clock seconds, streaming only), a source silent for that long stops
    holding the others back, and a group waits at most that long for sources never heard from.
    When every source is idle, the minimum over all of them holds, as at the end of a replay.
    A silence of the whole group that long (the cluster down, the worker stopped) is no
    source's: once the group is heard from again, each source's silence counts from then, so
    the sources coming back one after the other do not leave the slower ones behind.
    """

    def __init__(self, idle_s: float | None = None) -> None:
        self.idle_s = idle_s
        self.closed_until: dict[str, float] = {}
        self.first: dict[str, float] = {}
        self.heard: dict[str, float] = {}
        self.sources = 0
        self.born: float | None = None
        self.resumed = -math.inf  # when the group was last heard from after such a silence

    def update(self, mark: Watermark, now: float | None = None) -> None:
        self.sources = max(self.sources, mark.sources)
        self.first.setdefault(mark.source, mark.closed_until)
        previous = self.closed_until.get(mark.source, -math.inf)
        self.closed_until[mark.source] = max(previous, mark.closed_until)
        if now is not None:
            idle_s, heard = self.idle_s, self.heard
            if idle_s is not None and heard and now - max(heard.values()) >= idle_s:
                self.resumed = now
            heard[mark.source] = now
            if self.born is None:
                self.born = now

    def watermark(self, now: float | None = None) -> float:
        if not self.closed_until:
            return -math.inf
        if self.idle_s is None or now is None or self.born is None:
            if len(self.closed_until) < self.sources:
                return -math.inf
            return min(self.closed_until.values())
        if len(self.closed_until) < self.sources and now - self.born < self.idle_s:
            return -math.inf
        resumed = self.resumed
        active = [
            closed
            for source, closed in self.closed_until.items()
            if now - max(self.heard.get(source, now), resumed) < self.idle_s
        ]
        return min(active or self.closed_until.values())


def close_windows(
    start: float,
    until: float,
    window_s: float,
    close: Callable[[float, float], None],
    due: Callable[[float], float] | None = None,
) -> float:
    """Call `close(start, end)` for each window from `start` that ends by `until`, in order;
    returns the start of the first window left open.

    `due(start)`, when given, is the start of the first window from `start` that needs
    closing: a stage with nothing alive and nothing pending there skips the empty windows in
    between, which would change nothing. So an event stamped centuries ago costs one window,
    not millions.

    >>> seen = []
    >>> close_windows(0.0, 600.0, 60.0, lambda a, b: seen.append(a), lambda s: max(s, 300.0))
    600.0
    >>> seen
    [300.0, 360.0, 420.0, 480.0, 540.0]
    """
    while start + window_s <= until:
        if due is not None:
            ahead = due(start)
            if ahead > start:
                last_open = start + math.floor((until - start) / window_s) * window_s
                start = min(ahead, last_open)
                continue
        close(start, start + window_s)
        start += window_s
    return start


def next_due(start: float, alive: bool, pending: Iterable[float]) -> float:
    """For `close_windows`: `start` while anything is alive, else the first pending window
    from `start` (infinity when there is none)."""
    if alive:
        return start
    return min((s for s in pending if s >= start), default=math.inf)
