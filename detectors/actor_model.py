"""The population model of actor behaviour: a River anomaly detector, a quantile threshold,
and the explanation of each verdict in terms of the features.

`ActorModel.step(x)` scores an actor's features against the population seen so far, decides,
and learns only from actors with no abuse indicator (below), so attacks do not become the
norm. Each feature's typical range in the population
(its median and 99th percentile, or 1st where low is unusual, from River's streaming
quantiles) both scores and explains a verdict: which features are beyond the range, and how
far. HalfSpaceTrees and a one-class SVM from River can score instead (`model`); on the
simulator they rank scripted and spamming accounts below busy ordinary ones (see the README's
comparison). The threshold is a running quantile of the scores, so it adapts to the
population.

A high score alone does not flag an actor. Busy but otherwise ordinary accounts are
unusual, not abusive, and rate spikes are the volume detector's job; a flag also needs at
least one abuse indicator: near-identical texts, a scripted rhythm, contact with many new
accounts, or link-heavy content. A young account or reports received from several accounts
corroborate a flag (they add to the score, reports raise the severity) but do not make one:
new people join every day, and popular or controversial accounts draw reports too.

Actors are judged on two time scales: the last ten minutes and the last hour. An actor is a
candidate (scored against the population, and flagged if unusual) when it has at least
`min_events` events in the last ten minutes, or `min_events_1h` in the last hour spread over
half its ten-minute blocks or more (a pace kept up, not a burst that is over), and an
indicator. Over an hour, contact with many new accounts is within a person's reach (someone
answering questions in a community), so it is an indicator on that scale only when nearly
everything the account did was first contact and the account is young or reported by
several accounts; links and near-identical texts are indicators on both scales.

>>> import random
>>> rng = random.Random(1)
>>> model = ActorModel(warmup=200, seed=1)
>>> for _ in range(2400):
...     verdict = model.step(ordinary(rng))
>>> spammer = {**ordinary(rng), "events_10m": 140.0, "new_targets_10m": 131.0,
...            "new_target_share": 0.95, "dup_share": 0.97, "age_days": 2.0}
>>> verdict = model.step(spammer)
>>> verdict.flagged, [d.feature for d in verdict.drivers][:2]
(True, ['dup_share', 'new_targets_10m'])
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from river import anomaly, base, compose, preprocessing, stats

from detectors.actor_features import DAY, FEATURES
from detectors.alerts import required

# Features where a low value is the unusual one, and those with no unusual direction.
LOW_IS_UNUSUAL = frozenset({"gap_cv", "age_days"})
UNDIRECTED = frozenset({"message_share", "share_share", "comment_share", "blocks_1h"})
GATE_ONLY = frozenset({"blocks_1h"})  # read by the hourly gate, not scored
# Counts spread over orders of magnitude: the model sees log1p of them.
COUNTS = frozenset(
    {"events_10m", "events_1h", "events_24h", "new_targets_10m", "new_targets_1h",
     "new_domains_1h", "reporters_24h", "reports_filed_1h", "age_days"}
)  # fmt: skip
# On the hour's scale, new contacts are an indicator from this many on, when they are nearly
# all the account did (FIRST_CONTACT_SHARE of its events) and it is young or reported.
HOURLY_CONTACTS = 10.0
# The hourly gate is for a pace kept up: events in at least half the hour's ten-minute blocks.
# (A burst that is over is the ten-minute scale's, and was judged there.)
SUSTAINED_BLOCKS = 3
FIRST_CONTACT_SHARE = 0.8
YOUNG_DAYS = 30.0
# How long the actor windows are watched before contacts count as first ones: the ten
# minutes judged and as many before them.
CONTACT_HISTORY_S = 1200.0


def indicators(x: dict[str, float], contacts: bool = True) -> list[str]:
    """The abuse indicators present in a feature vector; a flag needs at least one.
    `contacts`: whether first contacts are told from the others (see `contacts_known`).

    >>> indicators({"dup_share": 0.9, "gap_cv": 1.0, "age_days": 400.0})
    ['dup_share']
    """
    found = []
    if x.get("dup_share", 0.0) >= 0.5:
        found.append("dup_share")
    if x.get("gap_cv", 1.0) <= 0.25:
        found.append("gap_cv")
    if contacts and x.get("new_targets_10m", 0.0) >= 25 and x.get("new_target_share", 0.0) >= 0.8:
        found.append("new_targets_10m")
    if x.get("link_share", 0.0) >= 0.5:
        found.append("link_share")
    hourly = x.get("new_targets_1h", 0.0) if contacts else 0.0
    if (
        hourly >= HOURLY_CONTACTS
        and hourly >= FIRST_CONTACT_SHARE * x.get("events_1h", 0.0)
        and (x.get("age_days", 1000.0) < YOUNG_DAYS or x.get("reporters_24h", 0.0) >= 2)
    ):
        found.append("new_targets_1h")
    return found


def contacts_known(x: dict[str, float], watched_s: float) -> bool:
    """Whether an actor's first contacts can be told from the others, `watched_s` after the
    actor windows began: every contact of an account is new to a worker that has just started
    (or lost its state), however often the account wrote to the same people before. They
    are told apart once it has watched for `CONTACT_HISTORY_S`, or for an account created
    since it began, all of whose contacts it saw."""
    return watched_s >= CONTACT_HISTORY_S or x.get("age_days", 1000.0) * DAY < watched_s


def scale(x: dict[str, float], min_events: float) -> str:
    """The time scale an actor is judged on: `10m` when its last ten minutes pass the gate
    of `min_events`, else `1h` (its last hour did)."""
    return "10m" if x.get("events_10m", 0.0) >= min_events else "1h"


@dataclass(frozen=True)
class Driver:
    """One feature that made the actor unusual: its value against the population's range."""

    feature: str
    value: float
    median: float
    p99: float  # the 1st percentile for features where low is unusual
    excess: float  # how far beyond the range, in units of the range's width


@dataclass(frozen=True)
class ActorVerdict:
    score: float
    threshold: float
    flagged: bool
    drivers: tuple[Driver, ...]
    indicators: tuple[str, ...]
    scale: str = "10m"  # the time scale whose gate it passed: `10m` or `1h`


class ActorModel(base.AnomalyDetector):
    """Scores actor feature vectors against the population.

    Parameters
    ----------
    model: the scorer, one of
        `quantile`: how far the actor's features lie beyond the population's typical range,
        each measured against River streaming quantiles (median and 99th or 1st percentile),
        summed over the features and mapped to [0, 1]: an ensemble of one-feature detectors;
        `hst`: standard scaling, then River's HalfSpaceTrees;
        `svm`: standard scaling, then River's one-class SVM.
    q: the quantile of recent scores above which an actor is unusual.
    min_score: the threshold never goes below this.
    warmup: actors learned before anything is flagged.
    min_events: the ten-minute gate: an actor with fewer events in the last 10 minutes is
        never flagged, unless it passes the hourly gate.
    min_events_1h: the hourly gate: an actor with fewer events in the last hour, or with
        events in fewer than SUSTAINED_BLOCKS of its ten-minute blocks, is never flagged,
        unless it passes the ten-minute gate.
    learn_every: actors that cannot be flagged (too few events, or no abuse indicator) are
        neither scored nor learned from, except every `learn_every`-th one, which the
        population model, the threshold and the typical ranges learn from. Scoring costs
        tens of microseconds, and most actors in a window have posted once.
    seed: the only randomness (the trees of `hst`).
    """

    def __init__(
        self,
        model: str = "quantile",
        q: float = 0.99,
        min_score: float = 0.5,
        warmup: int = 500,
        min_events: float = 5.0,
        min_events_1h: float = 10.0,
        learn_every: int = 4,
        seed: int = 42,
    ) -> None:
        self.model = model
        self.q = q
        self.min_score = min_score
        self.warmup = warmup
        self.min_events = min_events
        self.min_events_1h = min_events_1h
        self.learn_every = learn_every
        self.seed = seed
        self.pipeline = self._pipeline(model, seed)
        self.threshold = stats.Quantile(q)
        self.median: dict[str, stats.Quantile] = {}
        self.edge: dict[str, stats.Quantile] = {}
        self.n = 0
        self.skipped = 0

    @staticmethod
    def _pipeline(model: str, seed: int) -> compose.Pipeline | None:
        if model == "quantile":
            return None
        if model == "hst":
            # Standardised features in fixed limits: min-max scaling would fold every value
            # beyond the largest seen so far into the edge cell, where a busy but ordinary
            # actor already sits; with a wide fixed range, extremes land in empty cells.
            limits: dict[Hashable, tuple[float, float]] = {
                name: (-4.0, 20.0) for name in FEATURES if name not in GATE_ONLY
            }
            return compose.Pipeline(
                preprocessing.StandardScaler(),
                anomaly.HalfSpaceTrees(
                    n_trees=25, height=8, window_size=250, limits=limits, seed=seed
                ),
            )
        if model == "svm":
            return compose.Pipeline(preprocessing.StandardScaler(), anomaly.OneClassSVM(nu=0.05))
        raise ValueError(f"unknown actor model {model!r}; known: quantile, hst, svm")

    # -- the River interface ------------------------------------------------------------
    def learn_one(self, x: dict[Hashable, Any]) -> None:
        if self.pipeline is not None:
            self.pipeline.learn_one(_transform(x))
        for name, value in x.items():
            key = str(name)
            if key in UNDIRECTED:
                continue
            if key not in self.median:
                self.median[key] = stats.Quantile(0.5)
                self.edge[key] = stats.Quantile(0.01 if key in LOW_IS_UNUSUAL else 0.99)
            self.median[key].update(float(value))
            self.edge[key].update(float(value))
        self.n += 1

    def score_one(self, x: dict[Hashable, Any]) -> float:
        if self.pipeline is not None:
            return float(self.pipeline.score_one(_transform(x)))
        excess = sum(self._excess(str(name), float(value)) for name, value in x.items())
        return 1.0 - math.exp(-excess / 4.0)

    # -- decide and explain ---------------------------------------------------------------
    def step(self, x: dict[str, float], contacts: bool = True) -> ActorVerdict | None:
        """Score, decide and explain; then learn from the actor if it shows no abuse indicator.
        `contacts`: whether first contacts are told from the others (`contacts_known`).

        None for an actor that cannot be flagged and is not in the learning sample.
        """
        found = tuple(indicators(x, contacts))
        gated = self.gated(
            x.get("events_10m", 0.0), x.get("events_1h", 0.0), x.get("blocks_1h", 0.0)
        )
        candidate = gated and bool(found)
        if not candidate and not self.sampled():
            return None
        return self.judge(x, found, candidate)

    def gated(self, events_10m: float, events_1h: float, blocks_1h: float) -> bool:
        """Whether an actor passes the ten-minute or the hourly gate: one that does not
        cannot be flagged, whatever its features."""
        return events_10m >= self.min_events or (
            events_1h >= self.min_events_1h and blocks_1h >= SUSTAINED_BLOCKS
        )

    def sampled(self) -> bool:
        """Count one actor that cannot be flagged; whether the model learns from it (every
        `learn_every`-th)."""
        self.skipped += 1
        return not self.skipped % self.learn_every

    def judge(self, x: dict[str, float], found: tuple[str, ...], candidate: bool) -> ActorVerdict:
        """`step`'s verdict on an actor that is a candidate or in the learning sample, with
        its indicators `found`."""
        keyed: dict[Hashable, Any] = {k: v for k, v in x.items()}
        score = self.score_one(keyed)
        quantile = self.threshold.get() if self.n else None
        threshold = max(self.min_score, quantile or 0.0)
        drivers = self.explain(x) if candidate else ()
        flagged = candidate and self.n >= self.warmup and score >= threshold
        if not candidate:
            # Only actors with no abuse indicator teach the model what is typical: a spam
            # wave learned from would move the typical range up to meet the next one.
            self.learn_one(keyed)
            self.threshold.update(score)
        return ActorVerdict(score, threshold, flagged, drivers, found, scale(x, self.min_events))

    def _excess(self, name: str, value: float) -> float:
        """How far beyond the population's typical range, in widths of that range; 0 within."""
        median_q, edge_q = self.median.get(name), self.edge.get(name)
        if median_q is None or edge_q is None:
            return 0.0
        median, edge = median_q.get(), edge_q.get()
        if median is None or edge is None:
            return 0.0
        if name in COUNTS:  # counts spread over orders of magnitude: compare their logs
            value, median, edge = math.log1p(value), math.log1p(median), math.log1p(edge)
        beyond = (edge - value) if name in LOW_IS_UNUSUAL else (value - edge)
        if beyond <= 0:
            return 0.0
        return beyond / max(abs(edge - median), _unit(name))

    def explain(self, x: dict[str, float], top: int = 4) -> tuple[Driver, ...]:
        """The features furthest beyond the population's typical range, most unusual first."""
        drivers = []
        for name, value in x.items():
            excess = self._excess(name, value)
            if excess > 0:
                median = required(self.median[name].get(), f"the median of {name}")
                edge = required(self.edge[name].get(), f"the edge of {name}")
                drivers.append(Driver(name, value, median, edge, excess))
        drivers.sort(key=lambda d: (-d.excess, d.feature))
        return tuple(drivers[:top])


def _unit(name: str) -> float:
    """The smallest range width that counts: a doubling of a count, or 5% of a share."""
    return math.log(2) if name in COUNTS else 0.05


def _transform(x: dict[Hashable, Any]) -> dict[Hashable, Any]:
    """The features `hst` and `svm` see: counts as log1p, and not the hourly gate's own."""
    return {k: math.log1p(v) if k in COUNTS else v for k, v in x.items() if k not in GATE_ONLY}


def ordinary(rng: random.Random) -> dict[str, float]:
    """A feature vector of a typical, established actor, for examples and tests."""
    events = float(rng.choice((1, 1, 1, 2, 2, 3, 4)))
    events_1h = events + rng.choice((0, 0, 1, 2, 4))
    new_targets = float(rng.random() < 0.3)
    return {
        "events_10m": events,
        "events_1h": events_1h,
        "events_24h": events * rng.uniform(3, 30),
        "gap_cv": rng.uniform(0.7, 2.0),
        "new_targets_10m": new_targets,
        "new_targets_1h": new_targets + float(rng.random() < 0.3),
        "new_target_share": rng.uniform(0.0, 1.0) if rng.random() < 0.3 else 0.0,
        "dup_share": rng.uniform(0.0, 0.1),
        "link_share": rng.uniform(0.0, 0.3),
        "new_domains_1h": float(rng.random() < 0.2),
        "age_days": 10 ** rng.uniform(1.0, 3.5),
        "reporters_24h": float(rng.random() < 0.02),
        "reports_filed_1h": float(rng.random() < 0.05),
        "message_share": rng.uniform(0.0, 0.4),
        "share_share": rng.uniform(0.0, 0.2),
        "comment_share": rng.uniform(0.0, 0.5),
        "blocks_1h": min(3.0, events_1h),
    }
