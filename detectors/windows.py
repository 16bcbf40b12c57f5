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

import heapq
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
        counted = self.add_batch([(event_id, ts, signals)])
        return counted.outcomes[0], [*counted.partials, *counted.marks]

    def add_batch(self, batch: Iterable[tuple[str, float, tuple[str, ...]]]) -> Counted:
        """Count a batch of (event id, ts, signals), in partition order.

        Each event's fate is decided in order, as if the events came one at a time: the
        watermark moves with the batch's events, and an event in a window it has passed is
        late. The counts are then added per window and signal, and what the batch closed is
        closed once at its end: no counted event falls in a window closed before it came, so
        the partials are those of closing at each move (`marks` has a watermark for each)."""
        window_s, lateness_s, seen = self.window_s, self.lateness_s, self.seen
        max_ids, horizon_s = self.dedup_max_ids, self.dedup_horizon_s
        max_ts, closed_until = self.max_ts, self.closed_until
        floor = math.floor
        out = Counted([], [], [], [])
        outcomes, windows, marks = out.outcomes, out.windows, out.marks
        # This batch's event ids per window and signal, in the order they came.
        batch_ids: dict[float, dict[str, list[str]]] = {}
        for event_id, ts, signals in batch:
            if event_id in seen:
                outcomes.append("duplicate")
                continue
            seen[event_id] = ts  # remembered, the oldest forgotten (as of the watermark)
            horizon = max_ts - horizon_s
            while seen and (len(seen) > max_ids or next(iter(seen.values())) < horizon):
                seen.popitem(last=False)
            start = float(floor(ts / window_s) * window_s)
            if start + window_s <= closed_until:
                outcomes.append("late")
                continue
            outcomes.append("counted")
            windows.append(start)
            ids = batch_ids.get(start)
            if ids is None:  # not setdefault, which would make a dict each time
                ids = batch_ids[start] = {}
            for signal in signals:
                of_signal = ids.get(signal)
                if of_signal is None:
                    ids[signal] = [event_id]
                else:
                    of_signal.append(event_id)
            if ts > max_ts:
                max_ts = ts
                moved = float(floor((ts - lateness_s) / window_s) * window_s)
                if moved > closed_until:
                    closed_until = moved
                    marks.append(Watermark(self.group, self.source, self.sources, moved))
        self.max_ts, self.closed_until = max_ts, closed_until
        self._tally(batch_ids)
        if marks:
            out.partials.extend(self._close(closed_until))
        return out

    def _tally(self, batch_ids: dict[float, dict[str, list[str]]]) -> None:
        """Add a batch's event ids per window and signal to the open windows' tallies."""
        for start, ids in batch_ids.items():
            tallies = self.open.get(start)
            if tallies is None:
                tallies = self.open[start] = {}
            for signal, event_ids in ids.items():
                tally = tallies.get(signal)
                if tally is None:
                    tally = tallies[signal] = _Tally()
                tally.count += len(event_ids)
                samples = tally.sample_ids
                if len(event_ids) == 1:
                    event_id = event_ids[0]
                    if len(samples) < SAMPLE_IDS or event_id < samples[-1]:
                        insort(samples, event_id)
                        del samples[SAMPLE_IDS:]
                else:
                    samples += heapq.nsmallest(SAMPLE_IDS, event_ids)
                    samples.sort()
                    del samples[SAMPLE_IDS:]

    def _close(self, closed_until: float) -> list[Partial]:
        """The partials of the open windows ending by `closed_until`, in window order."""
        out = []
        window_s, source = self.window_s, self.source
        for start in sorted(s for s in self.open if s + window_s <= closed_until):
            for signal, tally in self.open.pop(start).items():
                out.append(Partial(source, signal, start, tally.count, tuple(tally.sample_ids)))
        return out


@dataclass
class Counted:
    """What a batch did in `PartitionCounter.add_batch`."""

    outcomes: list[str]  # each event's: counted, duplicate or late
    windows: list[float]  # the window start of each counted event, in order
    partials: list[Partial]  # the windows the batch closed, in window order
    marks: list[Watermark]  # each move of the watermark, in order


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
