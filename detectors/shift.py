"""Accumulated evidence on dense series: a sustained moderate shift, over half an hour.

A surface at 1.5 or 2 times its normal rate for half an hour has no minute that stands out,
and the spike detector's level learns the new rate within a few windows. `ShiftDetector`
watches a dense series with a baseline of its own: it sums the last `horizon_s` of counts
and compares the sum with what the daily profile (the spike detector's, once in use) times
a slow level expects. The level is learnt only from windows leaving the horizon, and not
from those of a flagged horizon, so a shift is never compared with a baseline it raised;
it follows a slow organic change an hour behind, as the windows leave the horizon.

The bound is not Poisson alone: the profile is learnt from a day or two, so a horizon's sum
misses by a few percent even without any shift. The variance of a sum expected at `E` is
taken as `E (1 + h / w) + k E^2`: Poisson, the level's own uncertainty (learnt from `w`
windows, summed over `h`), and an overdispersion `k` learnt from the series' own horizon
sums that were not flagged. A horizon is flagged when its sum is `threshold` standard
deviations above the expected, at least `ratio` times it, and `min_excess` events over it.

Each slot of the profile is read once, as it was when the slot began: the spike detector
keeps learning its profile from the windows it does not flag, a shift's among them.

>>> det = ShiftDetector(window_s=60.0, horizon_s=600.0, threshold=5.0, ratio=1.3)
>>> flags = [det.step(60.0 * i, 100, 1.0, 100.0).flagged for i in range(60)]
>>> any(flags)
False
>>> [det.step(60.0 * i, 200, 1.0, 100.0).flagged for i in range(60, 66)]
[False, False, False, False, True, True]
>>> det.began
3600.0
"""

from __future__ import annotations

import math

from detectors.spike import Verdict

DAY = 86400.0


class ShiftDetector:
    """Scores window counts of one dense series by the sum of the last `horizon_s`.

    Parameters
    ----------
    window_s, horizon_s: the windows' width, and the span summed (a whole number of windows).
    threshold: standard deviations above the expected sum at which a horizon is flagged.
    ratio: the fewest times the expected sum that is flagged.
    min_excess: the fewest events above the expected sum that are flagged.
    score_scale: the score reported at the alert line (the spike detector's threshold, so
        that one episode policy and one severity rule serve both).
    memory_s: the level is a running mean over this much event time, at most.
    dispersion: the overdispersion assumed before any is learnt; dispersion_weight: how many
        horizons of evidence that assumption is worth.
    dispersion_memory_s: the overdispersion is a running mean over this much event time.
    max_flagged_s: flagged this long in a row, the level is taken as the new normal.
    """

    def __init__(
        self,
        window_s: float = 60.0,
        horizon_s: float = 1800.0,
        threshold: float = 5.0,
        ratio: float = 1.3,
        min_excess: float = 10.0,
        score_scale: float = 6.0,
        memory_s: float = 1800.0,
        dispersion: float = 0.01,
        dispersion_weight: float = 60.0,
        dispersion_memory_s: float = DAY,
        max_flagged_s: float = 2 * 3600.0,
        clip: float = 1.5,
    ) -> None:
        self.clip = clip
        self.window_s = window_s
        self.horizon_s = horizon_s
        self.threshold = threshold
        self.ratio = ratio
        self.min_excess = min_excess
        self.score_scale = score_scale
        self.horizon = max(1, round(horizon_s / window_s))
        self.memory = max(1, round(memory_s / window_s))
        self.dispersion_memory = max(1, round(dispersion_memory_s / window_s))
        self.max_flagged = max(1, round(max_flagged_s / window_s))
        self.counts: list[float] = []  # the horizon's counts, oldest first
        self.factors: list[float] = []  # the profile's factor of each
        self.slot = -1  # the profile's slot being read, and its factor as the slot began
        self.factor = 1.0
        self.level: float | None = None  # a window's usual count, deseasonalised
        self.weight = 0.0  # windows the level has learnt from (at most `memory`)
        self.dispersion = dispersion
        self.dispersion_weight = dispersion_weight
        self.n = 0  # windows stepped with the profile in use
        self.last_flag = -1  # the last flagged window, by number
        self.run = 0  # flagged windows in a row
        self.began: float | None = None  # where the excess of the last horizon starts

    def step(
        self, t: float, count: float, factor: float | None, level: float, spiked: bool = False
    ) -> Verdict:
        """Add the window starting at `t` and judge the horizon's sum.

        `factor` is the daily profile's factor at `t` before the window was learnt (None
        while the profile is not in use: nothing is judged then); `level` the spike
        detector's deseasonalised level, which the baseline starts from; `spiked`, whether
        the spike detector flagged the window: its count is then replaced by what the
        baseline expects, as its excess is alerted on already.
        """
        if factor is None:
            self._reset()
            return _quiet(count)
        slot = int((t % DAY) / DAY * 96)
        if slot != self.slot:
            self.slot, self.factor = slot, factor
        factor = self.factor
        if self.level is None:
            self.level, self.weight = max(level, 0.0), float(self.horizon)
        if spiked:
            count = self.level * factor
        self.counts.append(count)
        self.factors.append(factor)
        self.n += 1
        if len(self.counts) > self.horizon:
            leaving, leaving_factor = self.counts.pop(0), self.factors.pop(0)
            # The window leaving is number n - horizon; one of a flagged horizon is not learnt.
            if self.n - self.horizon > self.last_flag:
                self.weight = min(self.weight + 1, self.memory)
                self.level += (leaving / leaving_factor - self.level) / self.weight
        if len(self.counts) < self.horizon:
            return _quiet(count)
        total = sum(self.counts)
        expected = self.level * sum(self.factors)
        variance = self._variance(expected)
        noise = math.sqrt(variance)
        line = max(
            expected + self.threshold * noise, expected * self.ratio, expected + self.min_excess
        )
        flagged = total >= line
        if flagged:
            self.run += 1
            if self.run < self.max_flagged:
                self.last_flag = self.n
            self.began = self._onset(t)
        else:
            self.run = 0
            if expected > 0:  # the overdispersion, from horizons judged normal
                # Winsorised at `clip` standard deviations: a shift building up below the line
                # raises the overdispersion it is judged by only a little.
                poisson = variance - self.dispersion * expected * expected
                surplus = min((total - expected) ** 2, self.clip**2 * variance) - poisson
                sample = max(0.0, surplus) / (expected * expected)
                self.dispersion_weight = min(self.dispersion_weight + 1, self.dispersion_memory)
                self.dispersion += (sample - self.dispersion) / self.dispersion_weight
        return Verdict(
            observed=total,
            expected=expected,
            lower=max(0.0, expected - self.threshold * noise),
            upper=line,
            score=self.score_scale * (total - expected) / (line - expected),
            flagged=flagged,
        )

    def _variance(self, expected: float) -> float:
        poisson = expected * (1 + self.horizon / max(self.weight, 1.0)) + 1.0
        return poisson + self.dispersion * expected * expected

    def _onset(self, t: float) -> float:
        """The start of the suffix of the horizon with the largest excess over the baseline:
        where the shift began, as far as the horizon shows."""
        level, best, run, at = self.level or 0.0, -math.inf, 0.0, len(self.counts) - 1
        for i in range(len(self.counts) - 1, -1, -1):
            run += self.counts[i] - level * self.factors[i]
            if run > best:
                best, at = run, i
        return t - (len(self.counts) - 1 - at) * self.window_s

    def _reset(self) -> None:
        self.counts.clear()
        self.factors.clear()
        self.slot, self.level, self.weight, self.n, self.last_flag, self.run = (
            -1,
            None,
            0.0,
            0,
            -1,
            0,
        )

    @property
    def learned_windows(self) -> int:
        return max(0, self.n - self.horizon)


def _quiet(count: float) -> Verdict:
    return Verdict(observed=count, expected=0.0, lower=0.0, upper=0.0, score=0.0, flagged=False)
