"""Volume-spike detector for one rate series: a River anomaly detector over window counts.

The baseline is learned online: a Holt level and damped trend, and once a day of data has
been seen, a multiplicative time-of-day profile (content volume is strongly diurnal). A
window's score is its excess over the forecast in units of the series' noise. The noise is
the learned residual variance with a floor: for counts (every value so far a whole number)
the Poisson variance of the forecast plus one event, so sparse series (most per-account counts
are zero) and busy ones are scored on one scale; for any other real values a scale-free floor,
a fraction of their typical magnitude. Residuals are winsorised at `clip` noise units before
they are learned, so one outlier neither inflates the noise nor drags the level.

Score before learning: `step` scores a window, decides, and learns only from windows it did
not flag, so an attack does not become the new normal. A series that stays flagged for
`max_shielded` windows in a row is taken as a new level and learned again.

Each verdict also carries `anomaly`, on [0, 1), for ranking windows across series (it is what
the NAB benchmark in bench/nab.py thresholds). Five kinds of evidence are kept: a drop below
the forecast (the score, negated), a sustained rise (the short-horizon mean of the scores,
each capped at the threshold so a lone spike moves it little), the value itself (a new high),
a jump up from the window before, and a drop below each of the last `RECENT` windows (so the
end of a short spike is no news of its own). Each is judged by its own `Rarity` over the last `horizon` windows, so a
series whose bursts are routine is not always anomalous while a jump it has not shown before
is; the window's surprise is the largest of the five. Surprise below the recent, decaying peak
is reported as 0, so an episode is reported at its onset and not on every window after it. A
plain record over the horizon maps to 0.5, and records by a wider margin rank higher. Flags
(what pages) still come from the score and the threshold.

>>> det = SpikeDetector(warmup=5)
>>> for minute in range(30):
...     verdict = det.step(minute * 60.0, 100 + (minute % 3))
>>> verdict.flagged
False
>>> verdict = det.step(30 * 60.0, 400)
>>> verdict.flagged, round(verdict.expected)
(True, 101)
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from collections.abc import Hashable
from typing import Any

import msgspec
from river import base, stats

DAY = 86400.0
HORIZON = 4000  # windows over which `anomaly` judges rarity
RECENT = 5  # windows a drop must go below, for `anomaly`


class Verdict(msgspec.Struct, frozen=True, gc=False):
    """What the detector made of one window (a frozen msgspec struct, as `windows.Partial`:
    there is one for every series and window)."""

    observed: float
    expected: float
    lower: float
    upper: float
    score: float
    flagged: bool
    anomaly: float = 0.0  # how unusual the window is, either way, on [0, 1) (see `step`)


class SpikeDetector(base.AnomalyDetector):
    """Scores window counts `{"t": window_start_seconds, "count": n}` of one series.

    Parameters
    ----------
    window_s: width of the windows fed to it, in seconds.
    threshold: the score at and above which a window is flagged.
    min_count: a window with fewer events is never flagged, whatever its score.
    warmup: windows learned before anything is flagged.
    alpha, beta, phi: smoothing of the level, of the trend, and damping of the trend.
    season_slots: time-of-day slots of the daily profile (0 disables it, as for sparse
        per-account series); season_alpha: its learning rate per window.
    var_alpha: learning rate of the residual variance.
    max_shielded: consecutive flagged windows after which the level is relearned.
    prior_level: where the level starts; None takes the first window's count. Sparse
        per-account series start at 0, so one busy first window does not become their norm.
    clip: residuals are winsorised at this many noise units before they are learned (0: off).
    floor: the noise floor of non-count series, as a fraction of their typical magnitude.
    horizon: windows over which `anomaly` judges how rare a window is (0: no anomaly, as for
        sparse per-account series, which page on their score alone).
    short_alpha: smoothing of the short-horizon mean of the (capped) scores.
    refractory: decay per window of the recent peak below which surprise is muted (0: off).
    """

    def __init__(
        self,
        window_s: float = 60.0,
        threshold: float = 6.0,
        min_count: float = 10.0,
        warmup: int = 30,
        alpha: float = 0.15,
        beta: float = 0.01,
        phi: float = 0.9,
        season_slots: int = 96,
        season_alpha: float = 0.1,
        var_alpha: float = 0.05,
        max_shielded: int = 60,
        prior_level: float | None = None,
        clip: float = 4.0,
        floor: float = 0.01,
        horizon: int = HORIZON,
        short_alpha: float = 0.15,
        refractory: float = 0.05,
    ) -> None:
        self.window_s = window_s
        self.threshold = threshold
        self.min_count = min_count
        self.warmup = warmup
        self.alpha = alpha
        self.beta = beta
        self.phi = phi
        self.season_slots = season_slots
        self.season_alpha = season_alpha
        self.var_alpha = var_alpha
        self.max_shielded = max_shielded
        self.prior_level = prior_level
        self.clip = clip
        self.horizon = horizon
        self.short_alpha = short_alpha
        self.refractory = refractory
        self.floor = floor

        self.n = 0
        self.level: float | None = prior_level
        self.trend = 0.0
        self.residuals = stats.EWVar(fading_factor=var_alpha)
        self.daily = stats.EWMean(fading_factor=window_s / DAY)
        self.season = [1.0] * season_slots
        self.seasonal = False  # the profile is in use once a full day has been learned
        self.first_t: float | None = None
        self.shielded = 0
        self.counts = True  # every value so far a whole number >= 0
        self.magnitude = stats.EWMean(fading_factor=max(window_s / DAY, 1e-3))
        self.recent = 0.0  # short-horizon mean of the capped scores
        # For `anomaly` only, so not kept without a horizon (per-account series are many).
        self.lately: deque[float] | None = deque(maxlen=RECENT) if horizon else None
        self.tails = [Rarity(horizon) for _ in range(5)] if horizon else []
        self.peak = 0.0

    # -- the River interface ------------------------------------------------------------
    def learn_one(self, x: dict[Hashable, Any]) -> None:
        self._learn(float(x["t"]), float(x["count"]))

    def _learn(
        self, t: float, count: float, expected: float | None = None, noise: float | None = None
    ) -> None:
        """`learn_one`, given when known the forecast and noise at `t` as they were before."""
        if self.first_t is None:
            self.first_t = t
        factor = self._factor(t)
        if self.counts and (count < 0 or count != math.floor(count)):
            self.counts = False
        self.magnitude.update(abs(count))
        if self.level is None:
            self.level = count / factor
        else:
            if expected is None:
                expected = self.forecast(t)  # nothing above changes it
            residual = count - expected
            if self.clip and self.n >= self.warmup:
                if noise is None or not self.counts:
                    noise = self._noise(t)  # of counts, nothing above changes it
                # Winsorised: one outlier neither inflates the noise nor drags the level.
                reach = self.clip * noise
                residual = min(max(residual, -reach), reach)
                count = expected + residual
            self.residuals.update(residual)
            previous = self.level
            self.level = self.alpha * (count / factor) + (1 - self.alpha) * (
                previous + self.phi * self.trend
            )
            self.trend = self.beta * (self.level - previous) + (1 - self.beta) * self.phi * (
                self.trend
            )
        self._learn_season(t, count)
        self.n += 1

    def score_one(self, x: dict[Hashable, Any]) -> float:
        t, count = float(x["t"]), float(x["count"])
        return (count - self.forecast(t)) / self._noise(t)

    # -- decide and explain ---------------------------------------------------------------
    def forecast(self, t: float) -> float:
        if self.level is None:
            return 0.0
        return max(0.0, (self.level + self.phi * self.trend) * self._factor(t))

    def step(self, t: float, count: float) -> Verdict:
        """Score the window starting at `t`, decide, then learn from it unless flagged."""
        expected = self.forecast(t)
        noise = self._noise(t, expected)
        score = (count - expected) / noise
        flagged = self.n >= self.warmup and score >= self.threshold and count >= self.min_count
        anomaly = self._anomaly(score, count)
        reach = self.threshold * noise
        upper = max(expected + reach, self.min_count)
        if flagged:
            self.shielded += 1
        if not flagged or self.shielded > self.max_shielded:
            self.shielded = 0 if not flagged else self.shielded
            self._learn(float(t), float(count), expected, noise)
        else:
            # The daily profile still learns, from the count clipped to the band: a step that
            # recurs every day becomes expected within days, a one-off attack barely moves it.
            self._learn_season(t, upper)
        return Verdict(
            observed=count,
            expected=expected,
            lower=max(0.0, expected - reach),
            upper=upper,
            score=score,
            flagged=flagged,
            anomaly=anomaly,
        )

    def idle(self, t: float, windows: int) -> None:
        """`step` of `windows` empty windows from `t` on, their verdicts unused: what a sparse
        series does for the windows it was not due, most of its steps. None of them can be
        flagged (a count of 0 is below `min_count`), so each learns the 0; without a profile
        or `anomaly`, that is the learning alone, by the same arithmetic as `step`."""
        if self.season_slots or self.horizon or self.min_count <= 0 or not self.counts:
            for _ in range(windows):
                self.step(t, 0)
                t += self.window_s
            return
        # `step` then `_learn` with a count of 0, a factor of 1 and counts' noise, inlined.
        update, get = self.residuals.update, self.residuals.get
        alpha, beta, phi, clip = self.alpha, self.beta, self.phi, self.clip
        for _ in range(windows):
            if self.first_t is None:
                self.first_t = t
            self.magnitude.update(0.0)
            level = self.level
            if level is None:
                self.level = 0.0
            else:
                expected = max(0.0, level + phi * self.trend)
                residual = 0.0 - expected
                if clip and self.n >= self.warmup:
                    reach = clip * math.sqrt(max(get(), expected) + 1.0)
                    residual = max(residual, -reach)
                update(residual)
                self.level = alpha * (expected + residual) + (1 - alpha) * (
                    level + phi * self.trend
                )
                self.trend = beta * (self.level - level) + (1 - beta) * phi * self.trend
            self.shielded = 0
            self.n += 1
            t += self.window_s

    def _anomaly(self, score: float, count: float) -> float:
        lately = self.lately
        if lately is None:
            return 0.0
        a, cap = self.short_alpha, self.threshold
        # Capped at the threshold: the mean is for shifts, and a lone spike has its own kinds.
        self.recent += a * (max(min(score, cap), -cap) - self.recent)
        sustained = self.recent / math.sqrt(a / (2 - a))
        jump = count - lately[-1] if lately else 0.0
        drop = min(lately) - count if lately else 0.0
        lately.append(count)
        evidence = (-score, sustained, count, jump, drop)
        surprise = max(tail.update(e) for tail, e in zip(self.tails, evidence, strict=True))
        if self.refractory:
            # Only news is reported: surprise below the (decaying) recent peak is muted.
            peak = self.peak
            self.peak = max(peak * (1 - self.refractory), surprise)
            if surprise <= peak:
                surprise = 0.0
        return surprise / (surprise + math.log(self.horizon + 1))

    @property
    def learned_windows(self) -> int:
        return self.n

    def profile(self, t: float) -> float | None:
        """The daily profile's factor at `t`, once the profile is in use; None before."""
        return self._factor(t) if self.seasonal else None

    # -- internals ------------------------------------------------------------------------
    def _noise(self, t: float, expected: float | None = None) -> float:
        """The noise at `t`; `expected` is the forecast at `t`, when known."""
        if self.counts:
            # Counts: at least Poisson noise, and one event.
            if expected is None:
                expected = self.forecast(t)
            variance = max(self.residuals.get(), expected) + 1.0
        else:
            # Any other real values: scale-free, a floor relative to their magnitude.
            floor = self.floor * self.magnitude.get()
            variance = max(self.residuals.get(), floor * floor, 1e-12)
        return math.sqrt(variance)

    def _slot(self, t: float) -> int:
        return int((t % DAY) / DAY * self.season_slots)

    def _factor(self, t: float) -> float:
        # Floored so a quiet night slot cannot divide the level by zero.
        return max(self.season[self._slot(t)], 0.05) if self.seasonal else 1.0

    def _learn_season(self, t: float, count: float) -> None:
        if not self.season_slots:
            return
        self.daily.update(count)
        mean = self.daily.get()
        if mean > 0:
            slot = self._slot(t)
            ratio = count / mean
            self.season[slot] += self.season_alpha * (ratio - self.season[slot])
        if not self.seasonal and self.first_t is not None and t - self.first_t >= DAY:
            # From here on the level tracks the deseasonalised series.
            self.seasonal = True
            factor = self.season[self._slot(t + self.window_s)]
            if self.level is not None and factor > 0:
                self.level /= factor


class Rarity:
    """How rare each value of a stream is among the `horizon` values before it, in nats.

    A value that `m` of the last `horizon` values equal or exceed has a surprise of
    log((horizon + 1) / (m + 1)): a new high over the horizon scores log(horizon + 1), and earns
    `margin` times log(value / previous high) on top when both are positive, so records are
    ranked by how far they go. Only the `keep` largest values of the horizon are held, with
    their positions, so it costs O(keep) whatever the horizon: counts of `keep` or more are
    reported as `keep`, and a value pushed out by larger ones is not counted again when those
    expire (the count is then an underestimate, never for the largest values).

    >>> tail = Rarity(horizon=100)
    >>> [round(tail.update(x), 2) for x in (5.0, 3.0, 5.0, 6.0)]
    [4.62, 3.92, 3.92, 5.53]
    """

    __slots__ = ("horizon", "keep", "margin", "n", "oldest", "seen", "values")

    def __init__(self, horizon: int, keep: int = 32, margin: float = 5.0) -> None:
        self.horizon = horizon
        self.keep = keep
        self.margin = margin
        self.n = 0
        self.values: list[float] = []  # the largest values held, ascending
        self.seen: list[int] = []  # the position of each
        self.oldest = math.inf  # the earliest of those positions

    def update(self, x: float) -> float:
        """The surprise of `x` against the horizon before it; then `x` joins the horizon."""
        n, values = self.n, self.values
        self.n = n + 1
        if n - self.oldest >= self.horizon:
            self._expire(n)
        i = bisect_left(values, x)
        above = len(values) - i
        surprise = math.log((self.horizon + 1) / (above + 1))
        if not above and values and x > 0 and values[-1] > 0:
            surprise += self.margin * math.log(x / values[-1])
        if above < self.keep:
            seen = self.seen
            values.insert(i, x)
            seen.insert(i, n)
            if len(values) > self.keep:
                del values[0], seen[0]
                self.oldest = min(seen)
            elif n < self.oldest:
                self.oldest = n
        return surprise

    def _expire(self, n: int) -> None:
        values, seen = self.values, self.seen
        kept = [i for i, at in enumerate(seen) if n - at < self.horizon]
        values[:] = [values[i] for i in kept]
        seen[:] = [seen[i] for i in kept]
        self.oldest = min(seen, default=math.inf)
