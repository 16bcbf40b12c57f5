"""Stage 2 of actor anomaly detection: merge each window's activity, update, score, alert.

`ActorProcessor` holds the actors routed to it (one per partition of the repartitioned topic
when streaming, one per simulated partition offline) with their `ActorState`, and one
`ActorModel` of the population it sees. `close(until)` takes every window ending by then, in
order; in each, every actor that created content is updated and scored once, and flagged
actors become `actor_anomaly` alert episodes, one per actor with a cooldown.

Idle actors expire after `ttl_s` of event time, and the least recently active are evicted
beyond `max_actors`, so memory is bounded whatever the input.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field

from detectors.actor_features import Activity, ActorPartial, ActorState
from detectors.actor_model import ActorModel, ActorVerdict, Driver, contacts_known, indicators
from detectors.alerts import Alert, Episode, EpisodePolicy, required
from detectors.windows import close_windows, next_due

DETECTOR = "actor_anomaly"
HOUR_S = 3600.0


@dataclass(frozen=True)
class ActorConfig:
    window_s: float = 60.0
    model: str = "quantile"
    quantile: float = 0.99
    warmup: int = 500
    min_events: float = 5.0
    min_events_1h: float = 10.0
    cooldown_s: float = 1800.0
    update_every: int = 10
    ttl_s: float = 6 * 3600.0
    max_actors: int = 250_000
    seed: int = 42


@dataclass
class ActorsClosed:
    """What closing actor windows produced."""

    alerts: list[Alert] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    windows: int = 0
    late: int = 0
    expired: int = 0
    evicted: int = 0


@dataclass
class _Pending:
    activity: Activity
    sources: set[str]


class ActorProcessor:
    def __init__(self, config: ActorConfig) -> None:
        self.config = config
        self.model = ActorModel(
            model=config.model,
            q=config.quantile,
            warmup=config.warmup,
            min_events=config.min_events,
            min_events_1h=config.min_events_1h,
            seed=config.seed,
        )
        self.policy = EpisodePolicy(config.cooldown_s, config.update_every)
        # An episode raised on the hour's scale resolves after an hour without a flag, the
        # span its evidence covers: a slow actor whose hour dips under the gate for a while
        # stays one alert.
        self.hour_policy = EpisodePolicy(max(config.cooldown_s, HOUR_S), config.update_every)
        self.actors: OrderedDict[str, ActorState] = OrderedDict()  # least recently active first
        self.open: set[str] = set()  # actors with an open episode
        self.hourly: set[str] = set()  # those whose episode was raised on the hour's scale
        self.pending: dict[float, dict[str, _Pending]] = {}
        self.closed_until = -math.inf
        self.first = -math.inf  # the first window: how long the actors have been watched

    def __len__(self) -> int:
        return len(self.actors)

    def add_partial(self, partial: ActorPartial) -> int:
        """Add one source's summary; returns 1 if its window had closed. Idempotent per source."""
        if partial.window_start + self.config.window_s <= self.closed_until:
            return 1
        window = self.pending.get(partial.window_start)
        if window is None:  # not setdefault, which would make a dict each time
            window = self.pending[partial.window_start] = {}
        tally = window.get(partial.actor)
        if tally is None:
            window[partial.actor] = _Pending(partial.activity, {partial.source})
        elif partial.source not in tally.sources:
            tally.sources.add(partial.source)
            tally.activity.merge(partial.activity)
        return 0

    def close(self, first: float, until: float) -> ActorsClosed:
        """Close every window from `first` on that ends by `until`, where both input groups
        have closed. Windows before `first` are dropped, as the signals drop them, so every
        worker and `evaluate` start from the same window."""
        closed = ActorsClosed()
        window_s = self.config.window_s
        if until == -math.inf:
            return closed
        if self.closed_until == -math.inf:
            self.closed_until = self.first = first
        for start in [s for s in self.pending if s < self.closed_until]:
            closed.late += len(self.pending.pop(start))
        self.closed_until = close_windows(
            self.closed_until,
            until,
            window_s,
            lambda a, b: self._close(a, b, closed),
            lambda start: next_due(start, bool(self.actors), self.pending),
        )
        return closed

    def _close(self, start: float, end: float, closed: ActorsClosed) -> None:
        closed.windows += 1
        active = self.pending.pop(start, {})
        model, window_s = self.model, self.config.window_s
        for actor in sorted(active):
            activity = active[actor].activity
            state = self.actors.get(actor)
            if state is None:
                closed.evicted += self._make_room()
                state = self.actors[actor] = ActorState()
            else:
                self.actors.move_to_end(actor)
            state.update(start, end, activity)
            if not activity.events:
                continue  # only reported, or reporting: updated, not scored
            # Most actors posted once or twice: below both gates, they cannot be flagged, and
            # the model learns from one in `learn_every` of them; only those need features.
            features: dict[str, float] = {}
            verdict = None
            gated = model.gated(*state.gate_counts(start, window_s))
            if gated or model.sampled():
                features = state.features(end, window_s)
                verdict = (
                    model.step(features, contacts_known(features, end - self.first))
                    if gated
                    else model.judge(features, tuple(indicators(features)), False)
                )
            if verdict is not None:
                closed.scores.append(verdict.score)
            if verdict is None and state.episode is None:
                # What _episode would do: with no score and no episode, the policy opens none.
                self.open.discard(actor)
                continue
            severity = _severity(verdict, features) if verdict and verdict.flagged else None
            self._episode(actor, state, start, end, verdict, severity, features, activity, closed)
        for actor in sorted(self.open - set(active)):
            state = self.actors[actor]
            previous = state.episode
            state.episode, action = self._policy(actor).step(
                previous, DETECTOR, "actor", actor, start, end, 0.0, None
            )
            if action == "resolved":
                ended = required(previous, "the episode that resolved")
                closed.alerts.append(self._resolved(actor, ended, end))
                self.open.discard(actor)
                self.hourly.discard(actor)
        closed.expired += self._expire(end)

    def _episode(
        self,
        actor: str,
        state: ActorState,
        start: float,
        end: float,
        verdict: ActorVerdict | None,
        severity: str | None,
        features: dict[str, float],
        activity: Activity,
        closed: ActorsClosed,
    ) -> None:
        previous = state.episode
        state.episode, action = self._policy(actor).step(
            previous,
            DETECTOR,
            "actor",
            actor,
            start,
            end,
            verdict.score if verdict else 0.0,
            severity,
        )
        if action == "resolved":
            ended = required(previous, "the episode that resolved")
            closed.alerts.append(self._resolved(actor, ended, end))
        elif action is not None:
            verdict = required(verdict, "the verdict that raised the alert")
            if action == "firing" and verdict.scale == "1h":
                self.hourly.add(actor)
            elif action == "firing":
                self.hourly.discard(actor)
            closed.alerts.append(
                self._alert(actor, state, verdict, features, activity, action, end)
            )
        if state.episode is None:
            self.open.discard(actor)
            self.hourly.discard(actor)
        else:
            self.open.add(actor)

    def _policy(self, actor: str) -> EpisodePolicy:
        return self.hour_policy if actor in self.hourly else self.policy

    def _make_room(self) -> int:
        evicted = 0
        while len(self.actors) >= self.config.max_actors:
            actor, _ = self.actors.popitem(last=False)
            self.open.discard(actor)
            self.hourly.discard(actor)
            evicted += 1
        return evicted

    def _expire(self, end: float) -> int:
        expired = 0
        while self.actors:
            actor, state = next(iter(self.actors.items()))
            if state.episode is not None or end - state.last_t <= self.config.ttl_s:
                break
            del self.actors[actor]
            expired += 1
        return expired

    # -- alerts ---------------------------------------------------------------------------
    def _alert(
        self,
        actor: str,
        state: ActorState,
        verdict: ActorVerdict,
        features: dict[str, float],
        activity: Activity,
        action: str,
        end: float,
    ) -> Alert:
        episode = required(state.episode, "the actor's episode")
        evidence = {
            "actor": actor,
            "account_age_days": _round(state.age_days(end)),
            "indicators": list(verdict.indicators),
            "scale": verdict.scale,
            "top_features": [_driver(d) for d in verdict.drivers],
            "features": {k: round(v, 4) for k, v in features.items()},
            "surface": state.surface,
            "domains": activity.domains,
            "reports_received_reasons": dict(sorted((state.reasons or {}).items())),
            "peak_score": round(episode.peak_score, 4),
            "windows_flagged": episode.flagged_windows,
            "model": self.config.model,
            "population_size": self.model.n,
            "sample_event_ids": list(state.sample_ids),
        }
        return Alert(
            alert_id=episode.alert_id,
            detector=DETECTOR,
            status=action,
            severity=episode.severity,
            entity_type="actor",
            entity_id=actor,
            ts=end,
            window_start=episode.start,
            window_end=episode.end,
            score=verdict.score,
            threshold=round(verdict.threshold, 4),
            summary=summarize(actor, state, features, verdict),
            evidence=evidence,
        )

    def _resolved(self, actor: str, last: Episode, end: float) -> Alert:
        minutes = (last.end - last.start) / 60.0
        quiet = (end - last.end) / 60.0
        return Alert(
            alert_id=last.alert_id,
            detector=DETECTOR,
            status="resolved",
            severity=last.severity,
            entity_type="actor",
            entity_id=actor,
            ts=end,
            window_start=last.start,
            window_end=last.end,
            score=last.peak_score,
            threshold=round(self.model.threshold.get() or 0.0, 4),
            summary=(
                f"Account {actor} has behaved within the population's range for "
                f"{quiet:.0f} min, after {minutes:.0f} min flagged."
            ),
            evidence={
                "actor": actor,
                "peak_score": round(last.peak_score, 4),
                "windows_flagged": last.flagged_windows,
            },
        )


def _severity(verdict: ActorVerdict, features: dict[str, float]) -> str:
    """Critical when reports from several accounts, or three indicators, corroborate it."""
    if features.get("reporters_24h", 0.0) >= 3 or len(verdict.indicators) >= 3:
        return "critical"
    return "warning"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _driver(d: Driver) -> dict[str, object]:
    return {
        "feature": d.feature,
        "value": round(d.value, 4),
        "population_median": round(d.median, 4),
        "population_edge": round(d.p99, 4),
        "excess": round(d.excess, 2),
    }


KIND_WORDS = {"message": "messages", "post": "posts", "comment": "comments", "share": "shares"}


def _age(days: float | None) -> str:
    """
    >>> _age(0.01), _age(0.04), _age(1.03), _age(12.0), _age(200.0), _age(800.0)
    ('under an hour old', '1 hour old', '1 day old', '12 days old', '7 months old', '2.2 years old')
    """
    if days is None:
        return "of unknown age"
    if days * 24 < 0.5:
        return "under an hour old"
    for amount, unit in ((days * 24, "hour"), (days, "day")):
        if (unit == "hour" and days < 1) or (unit == "day" and days < 60):
            n = max(1, round(amount))
            return f"{n} {unit}{'s' if n != 1 else ''} old"
    return f"{days / 365:.1f} years old" if days >= 365 else f"{days / 30:.0f} months old"


def summarize(
    actor: str, state: ActorState, features: dict[str, float], verdict: ActorVerdict
) -> str:
    """One sentence for an analyst: who, how much, and what is unusual about it.

    >>> s = ActorState(); s.created_at = 0.0
    >>> f = {"events_10m": 140.0, "new_targets_10m": 131.0, "dup_share": 0.97, "link_share": 0.0,
    ...      "message_share": 1.0, "gap_cv": 1.0, "reporters_24h": 0.0}
    >>> v = ActorVerdict(0.9, 0.8, True, (), ("dup_share", "new_targets_10m", "age_days"))
    >>> summarize("u123", s, f, v)  # doctest: +NORMALIZE_WHITESPACE
    'Account u123, under an hour old, sent 140 messages to 131 distinct new recipients in 10 min;
     97% near-identical text.'

    Judged on the hour's scale, it says the hour's figures:

    >>> f = {**f, "events_10m": 3.0, "events_1h": 23.0, "new_targets_1h": 21.0, "link_share": 0.9}
    >>> v = ActorVerdict(0.9, 0.8, True, (), ("link_share", "new_targets_1h"), "1h")
    >>> summarize("u123", s, f, v)  # doctest: +NORMALIZE_WHITESPACE
    'Account u123, under an hour old, sent 23 messages to 21 distinct new recipients in the last
     hour; 90% with links.'
    """
    hourly = verdict.scale == "1h"
    events = int(features.get("events_1h" if hourly else "events_10m", 0))
    shares = {k: features.get(f"{k}_share", 0.0) for k in ("message", "share", "comment")}
    shares["post"] = 1.0 - sum(shares.values())
    kind = max(sorted(shares), key=shares.__getitem__)
    noun = KIND_WORDS[kind] if shares[kind] >= 0.5 else "items"
    head = f"Account {actor}, {_age(state.age_days(state.last_t))}, sent {events} {noun}"
    targets = int(features.get("new_targets_1h" if hourly else "new_targets_10m", 0))
    if targets >= 2:
        head += f" to {targets} distinct new recipients"
    head += " in the last hour" if hourly else " in 10 min"
    clauses = []
    found = set(verdict.indicators)
    if "dup_share" in found:
        clauses.append(f"{features['dup_share']:.0%} near-identical text")
    if "gap_cv" in found:
        clauses.append("on a near-fixed schedule")
    if "link_share" in found:
        clauses.append(f"{features['link_share']:.0%} with links")
    if "reporters_24h" in found:
        clauses.append(f"reported by {features['reporters_24h']:.0f} accounts")
    return head + ("; " + "; ".join(clauses) if clauses else "") + "."
