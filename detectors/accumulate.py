"""Accumulated evidence: many distinct accounts turning to one account, over an hour or more.

A pile-on or a report brigade can go slowly on purpose: tens of accounts, each sending one
person a message or two, or filing one report, spread over an hour or more. No minute holds
enough of them to stand out, but the hour does, or the hours do. Two parts:

- `FirstContacts`, in stage 1 of each input partition, adds a signal when an account
  addresses another (`content.contacts:<target>`) or reports it (`reports.reporters:<target>`)
  for the first time within the horizon. Content and reports are keyed by their author, so
  all of one author's events are in one partition, and the partitions' counts add up to
  distinct authors. A friend writing fifty messages in an hour counts once; fifty people
  writing one each count fifty.
- `Accumulator`, in stage 2, is the detector of those per-account series: it sums the last
  hour of windows, and flags when the sum reaches the alert line: at least `min_total`, and
  `ratio` times what the account usually gets in an hour. What it usually gets is learnt
  from the windows leaving the hour, never from the hour being judged, and not from an hour
  that was flagged: an account whose contacts come in a steady stream is never compared with
  a baseline that the same stream has raised. A popular account that usually hears from
  thirty new people an hour needs more than a hundred and twenty to be flagged; an account
  that hears from one or two needs `min_total`. The same judgement over a longer span
  (three hours by default) finds accounts turned to too slowly for the hour to hold enough.

>>> acc = Accumulator(window_s=60.0, horizon_s=600.0, min_total=5, ratio=4.0, prior_windows=1440)
>>> [acc.step(60.0 * i, 1).flagged for i in range(6)]
[False, False, False, False, True, True]
>>> v = acc.step(360.0, 0)
>>> v.observed, v.upper, v.flagged
(6.0, 5.0, True)
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any
from zlib import crc32

from river import base

from detectors.events import ContentEvent, Event, ReportEvent
from detectors.spike import Verdict

DAY = 86400.0
BLOCK_S = 600.0  # the longer horizon is summed in blocks of this much
CONTACTS = "content.contacts"
REPORTERS = "reports.reporters"
FAMILIES = (CONTACTS, REPORTERS)


class FirstContacts:
    """Stage 1 of one input partition: the first contact of each (author, target) pair within
    `horizon_s` of event time. At most `max_pairs` pairs are remembered, the least recently
    seen dropped first (a dropped pair counts again: the counts can only grow)."""

    def __init__(self, horizon_s: float = 3600.0, max_pairs: int = 200_000) -> None:
        self.horizon_s = horizon_s
        self.max_pairs = max_pairs
        # A 64-bit digest of (family, target, author) -> the pair's last event time.
        self.seen: OrderedDict[int, float] = OrderedDict()

    def signals(self, event: Event) -> tuple[str, ...]:
        """The signal the event adds if it is its author's first contact with its target in
        the horizon; none otherwise."""
        if isinstance(event, ContentEvent):
            target = event.target_id
            if target is None or target == event.actor_id:
                return ()
            fam, author = CONTACTS, event.actor_id
        elif isinstance(event, ReportEvent):
            fam, author, target = REPORTERS, event.reporter_id, event.target_actor_id
        else:
            return ()
        ts, seen = event.ts, self.seen
        raw = f"{fam}\x1f{target}\x1f{author}".encode()
        pair = crc32(raw) << 32 | crc32(raw, 0x9E3779B9)  # stable across processes, unlike hash
        last = seen.pop(pair, None)
        seen[pair] = ts if last is None else max(ts, last)
        horizon = self.horizon_s
        # Roughly in event time from the front: events of a partition come nearly in order.
        while len(seen) > self.max_pairs or next(iter(seen.values())) < ts - horizon:
            seen.popitem(last=False)
        if last is None or ts - last >= horizon:
            return (f"{fam}:{target}",)
        return ()


class Accumulator(base.AnomalyDetector):
    """Scores window counts `{"t": window_start_seconds, "count": n}` of one per-account
    series by the sum of the last `horizon_s`.

    Parameters
    ----------
    window_s, horizon_s: the windows' width, and the span summed (a whole number of windows).
    min_total: the fewest events in the horizon that are ever flagged.
    ratio: how many times the usual sum over the horizon is flagged.
    threshold: the score of a sum at the alert line (scores scale with the sum, so a sum
        twice the line scores twice the threshold).
    warmup: windows stepped before anything is flagged.
    prior_windows: windows of silence the baseline starts with: a series created for an
        account with no contact in the last hour starts from knowing that.
    memory_s: the baseline is a running mean over this much event time, at most.
    max_flagged_s: flagged this long in a row, the level is taken as the new normal.
    long_horizon_s: a longer span judged the same way, in ten-minute blocks (0: none), for
        accounts turned to more slowly than the horizon can see: its sum is its last blocks
        with the open one, its usual is learnt from the blocks that leave it. A window is
        flagged when the longer span is and the horizon has flagged nothing in it (so an
        episode the hour raised does not last the longer span); `judged_s` is the span the
        last verdict judged.
    """

    def __init__(
        self,
        window_s: float = 60.0,
        horizon_s: float = 3600.0,
        min_total: float = 15.0,
        ratio: float = 4.0,
        threshold: float = 6.0,
        warmup: int = 0,
        prior_windows: int | None = None,
        memory_s: float = DAY,
        max_flagged_s: float = 6 * 3600.0,
        long_horizon_s: float = 0.0,
    ) -> None:
        self.window_s = window_s
        self.horizon_s = horizon_s
        self.min_total = min_total
        self.ratio = ratio
        self.threshold = threshold
        self.warmup = warmup
        self.prior_windows = prior_windows
        self.memory_s = memory_s
        self.max_flagged_s = max_flagged_s
        self.horizon = max(1, round(horizon_s / window_s))  # in windows, as the next two
        self.memory = max(1, round(memory_s / window_s))
        self.max_flagged = max(1, round(max_flagged_s / window_s))
        self.ring: list[float] = [0] * self.horizon  # the last `horizon` windows' counts
        self.at = 0  # where the next window goes in the ring
        self.total: float = 0  # the ring's sum
        self.mean = 0.0  # the usual count of a window, from the windows that left the ring
        self.weight = float(self.horizon if prior_windows is None else prior_windows)
        self.n = 0  # windows stepped
        self.last_flag = -1  # the last flagged window, by number
        self.run = 0  # flagged windows in a row
        self.long_horizon_s = long_horizon_s
        # The longer scale: the same judgement over `long_horizon_s`, in blocks of BLOCK_S,
        # by an accumulator of the blocks' sums; the open block's count so far; and the span
        # the last verdict judged.
        self.block = max(1, round(BLOCK_S / window_s))  # windows a block
        self.long: Accumulator | None = None
        if long_horizon_s > horizon_s:
            blocks = max(1, round(long_horizon_s / (self.block * window_s)))
            self.long = Accumulator(
                window_s=self.block * window_s,
                horizon_s=long_horizon_s,
                min_total=min_total,
                ratio=ratio,
                threshold=threshold,
                # With no prior, its history is unknown: a span filled and a span learnt.
                warmup=2 * blocks if prior_windows == 0 else -(-warmup // self.block),
                prior_windows=None if prior_windows is None else prior_windows // self.block,
                memory_s=memory_s,
                max_flagged_s=max_flagged_s,
            )
        self.partial: float = 0
        self.judged_s = horizon_s

    # -- the River interface ------------------------------------------------------------
    def learn_one(self, x: dict[Hashable, Any]) -> None:
        self._push(float(x["count"]), learn=True)

    def score_one(self, x: dict[Hashable, Any]) -> float:
        total = self.total - self.ring[self.at] + float(x["count"])
        return self.threshold * total / self.line()

    # -- decide and explain ---------------------------------------------------------------
    def line(self, scale: float = 1.0) -> float:
        """The alert line: the sum over the horizon at and above which a window is flagged.

        `ratio` times the usual sum, taken high by what little the baseline may have seen:
        the events it learnt from (`mean` times its windows), plus two of their standard
        deviations and four more, as a Poisson count's upper bound. An account seen for an
        hour with three contacts might usually get ten; one seen quiet for a day, hardly any.
        """
        weight = max(self.weight, 1.0)
        seen = self.mean * weight
        usual = (seen + 2 * math.sqrt(seen) + 4) / weight * self.horizon * scale
        return max(float(self.min_total), self.ratio * usual)

    def step(self, t: float, count: float, scale: float = 1.0) -> Verdict:
        """Add the window starting at `t`, judge the horizon's sum, and learn the window that
        left the horizon unless it was part of a flagged one. `scale` is how busy the hour is
        against the usual (`Population.scale`): what the account usually gets is scaled by it,
        so the day's busy hours are not taken for pressure."""
        expected = self.mean * self.horizon * scale
        line = self.line(scale)
        # The window leaving the ring is number n + 1 - horizon (this one is n + 1).
        self._push(count, learn=self.n + 1 - self.horizon > self.last_flag)
        flagged = self.n > self.warmup and self.total >= line
        if flagged:
            self.run += 1
            if self.run < self.max_flagged:
                self.last_flag = self.n
        else:
            self.run = 0
        verdict = Verdict(
            observed=float(self.total),
            expected=expected,
            lower=0.0,
            upper=line,
            score=self.threshold * self.total / line,
            flagged=flagged,
        )
        self.judged_s = self.horizon_s
        long = self.long
        if long is None:
            return verdict
        self.partial += count
        if self.n % self.block:
            # The long horizon as of now: its blocks but the oldest, and the open one.
            total = long.total - long.ring[long.at] + self.partial
            long_verdict = long.judge(total, scale)
        else:  # the block is complete: the long accumulator steps, and learns
            long_verdict = long.step(t, self.partial, scale)
            self.partial = 0
        # The hour decides, and what it flagged is not flagged again as the hours'; the hours
        # add the accounts turned to too slowly for it.
        recent = self.last_flag >= 0 and self.n - self.last_flag <= long.horizon * self.block
        if long_verdict.flagged and not recent:
            self.judged_s = long.horizon_s
            return long_verdict
        return verdict

    def judge(self, total: float, scale: float = 1.0) -> Verdict:
        """The verdict on `total` as the horizon's sum, without stepping."""
        line = self.line(scale)
        return Verdict(
            observed=float(total),
            expected=self.mean * self.horizon * scale,
            lower=0.0,
            upper=line,
            score=self.threshold * total / line,
            flagged=self.n >= self.warmup and total >= line,
        )

    def skip(self, windows: int, scale: float = 1.0) -> None:
        """Step `windows` empty windows (an idle account's) at once, in at most `horizon`
        steps: once the ring is empty, every further empty window is a zero learnt, and
        those are learnt in closed form."""
        long = self.long
        if long is not None and windows > 0:  # the blocks these windows complete
            blocks = (self.n + windows) // self.block - self.n // self.block
            if blocks:
                long.step(0.0, self.partial, scale)
                long.skip(blocks - 1, scale)
                self.partial = 0
        stepped = min(windows, self.horizon)
        for _ in range(stepped):  # `step` of an empty window, without its verdict
            # The line is never under `min_total`: a sum under it (most idle accounts') is
            # not flagged, whatever the line.
            below = self.total - self.ring[self.at] < self.min_total  # the sum after the push
            line = math.inf if below else self.line(scale)
            self._push(0, learn=self.n + 1 - self.horizon > self.last_flag)
            if self.n > self.warmup and self.total >= line:
                self.run += 1
                if self.run < self.max_flagged:
                    self.last_flag = self.n
            else:
                self.run = 0
        rest = windows - stepped
        if rest <= 0:
            return
        # The window leaving at step k is k - horizon: those up to the last flag are not learnt.
        learnt = rest - min(rest, max(0, self.last_flag + self.horizon - self.n))
        self.n += rest
        self.at = (self.at + rest) % self.horizon
        self.run = 0
        weight = self.weight
        growing = min(learnt, max(0, self.memory - int(weight)))
        if growing:  # a running mean of `growing` more zeros
            self.mean *= weight / (weight + growing) if weight + growing else 0.0
            self.weight = weight + growing
        if learnt > growing:  # then a moving mean over `memory` windows
            self.mean *= (1 - 1 / self.memory) ** (learnt - growing)

    def _push(self, count: float, learn: bool) -> None:
        leaving = self.ring[self.at]
        self.ring[self.at] = count
        self.at = (self.at + 1) % self.horizon
        self.total += count - leaving
        self.n += 1
        if self.n > self.horizon and learn:  # `leaving` was a window, not the ring's start
            self.weight = min(self.weight + 1, self.memory)
            self.mean += (leaving - self.mean) / self.weight

    @property
    def learned_windows(self) -> int:
        return max(0, self.n - self.horizon)


class Population:
    """The first contacts of every account of a stage-2 partition's group, summed per window:
    how busy the last `horizon` windows are against the usual, learnt as `Accumulator` learns
    (from the windows leaving the horizon, over `memory` windows at most). Traffic has a daily
    rhythm, and an account's usual hour is a mean over all hours: scaled by how busy this
    hour is, it is compared with what this hour brings.

    >>> population = Population(horizon=2)
    >>> [round(population.step(n), 2) for n in (10, 10, 10, 10, 30, 30)]
    [1.0, 1.0, 1.0, 1.0, 2.0, 3.0]
    """

    def __init__(self, horizon: int, memory: int = 1440, limit: float = 10.0) -> None:
        self.horizon = horizon
        self.memory = memory
        self.limit = limit  # the scale stays within [1 / limit, limit]
        self.ring: list[float] = [0] * horizon
        self.at = 0
        self.total: float = 0
        self.mean = 0.0
        self.weight = 0
        self.n = 0

    def step(self, count: float) -> float:
        """Add one window's total; the scale of the last horizon."""
        leaving = self.ring[self.at]
        self.ring[self.at] = count
        self.at = (self.at + 1) % self.horizon
        self.total += count - leaving
        self.n += 1
        if self.n > self.horizon:
            self.weight = min(self.weight + 1, self.memory)
            self.mean += (leaving - self.mean) / self.weight
        return self.scale()

    def scale(self) -> float:
        if self.weight < self.horizon or self.mean <= 0:
            return 1.0  # not a horizon learnt yet
        ratio = self.total / (self.mean * self.horizon)
        return min(max(ratio, 1 / self.limit), self.limit)
