"""Alerts: the contract's alert record, deterministic ids, and one alert per episode.

An episode is the life of one alert for one (detector, entity): it opens on the first flagged
window, is updated while flags keep coming (on escalation, and every `update_every` flagged
windows), and resolves after `cooldown_s` of event time without a flag. So a 30-minute spike
is one alert plus a few updates, not thirty alerts, and every message of an episode carries
the same `alert_id`.

>>> policy = EpisodePolicy(cooldown_s=120.0, update_every=10)
>>> episode, action = policy.step(None, "volume_spike", "signal", "reports", 0.0, 60.0, 7.5, "warning")
>>> action, episode.alert_id == alert_id("volume_spike", "signal", "reports", 0.0)
('firing', True)
>>> episode, action = policy.step(episode, "volume_spike", "signal", "reports", 60.0, 120.0, 3.0, None)
>>> action is None
True
>>> episode, action = policy.step(episode, "volume_spike", "signal", "reports", 120.0, 180.0, 1.0, None)
>>> action, episode
('resolved', None)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from detectors.events import format_rfc3339, parse_rfc3339

T = TypeVar("T")

SCHEMA_VERSION = 1
SEVERITIES = ("info", "warning", "critical")


def alert_id(detector: str, entity_type: str, entity_id: str, window_start: float) -> str:
    """Deterministic: the same detector, entity and episode start give the same id."""
    key = f"{detector}\x1f{entity_type}\x1f{entity_id}\x1f{format_rfc3339(window_start)}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def severity_for(score: float, threshold: float, critical_ratio: float = 2.0) -> str | None:
    """`warning` from the threshold, `critical` from `critical_ratio` times it, else None."""
    if score >= threshold * critical_ratio:
        return "critical"
    if score >= threshold:
        return "warning"
    return None


@dataclass(frozen=True)
class Episode:
    alert_id: str
    start: float
    end: float
    severity: str
    peak_score: float
    flagged_windows: int
    emitted_at_flags: int


@dataclass(frozen=True)
class EpisodePolicy:
    cooldown_s: float = 600.0
    update_every: int = 10

    def step(
        self,
        episode: Episode | None,
        detector: str,
        entity_type: str,
        entity_id: str,
        window_start: float,
        window_end: float,
        score: float,
        severity: str | None,
    ) -> tuple[Episode | None, str | None]:
        """Advance one window; returns the episode and `firing`, `update`, `resolved` or None."""
        if episode is not None and severity is None and window_end >= episode.end + self.cooldown_s:
            return None, "resolved"
        if severity is None:
            return episode, None
        if episode is None or window_start >= episode.end + self.cooldown_s:
            opened = Episode(
                alert_id=alert_id(detector, entity_type, entity_id, window_start),
                start=window_start,
                end=window_end,
                severity=severity,
                peak_score=score,
                flagged_windows=1,
                emitted_at_flags=1,
            )
            return opened, "firing"
        escalated = SEVERITIES.index(severity) > SEVERITIES.index(episode.severity)
        grown = replace(
            episode,
            end=window_end,
            severity=severity if escalated else episode.severity,
            peak_score=max(score, episode.peak_score),
            flagged_windows=episode.flagged_windows + 1,
        )
        if escalated or grown.flagged_windows - grown.emitted_at_flags >= self.update_every:
            return replace(grown, emitted_at_flags=grown.flagged_windows), "update"
        return grown, None


@dataclass(frozen=True)
class Alert:
    """One message on the alerts topic, less `emitted_at`, which is stamped on emission."""

    alert_id: str
    detector: str
    status: str  # firing, update or resolved
    severity: str
    entity_type: str
    entity_id: str
    ts: float
    window_start: float
    window_end: float
    score: float
    threshold: float
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    priority: float | None = None  # how likely analysts confirm it, 0..1 (detectors/labels.py)

    def to_record(self, emitted_at: float) -> dict[str, Any]:
        record = {
            "schema_version": SCHEMA_VERSION,
            "alert_id": self.alert_id,
            "detector": self.detector,
            "status": self.status,
            "severity": self.severity,
            "entity": {"type": self.entity_type, "id": self.entity_id},
            "ts": format_rfc3339(self.ts),
            "window": {
                "start": format_rfc3339(self.window_start),
                "end": format_rfc3339(self.window_end),
            },
            "score": round(self.score, 4),
            "threshold": self.threshold,
            "summary": self.summary,
            "evidence": self.evidence,
            "emitted_at": format_rfc3339(emitted_at),
        }
        if self.priority is not None:
            record["priority"] = self.priority
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Alert:
        """The alert of a record written by `to_record` (its `emitted_at` aside)."""
        return cls(
            alert_id=record["alert_id"],
            detector=record["detector"],
            status=record["status"],
            severity=record["severity"],
            entity_type=record["entity"]["type"],
            entity_id=record["entity"]["id"],
            ts=parse_rfc3339(record["ts"]),
            window_start=parse_rfc3339(record["window"]["start"]),
            window_end=parse_rfc3339(record["window"]["end"]),
            score=float(record["score"]),
            threshold=float(record["threshold"]),
            summary=record["summary"],
            evidence=record["evidence"],
            priority=record.get("priority"),
        )


def required(value: T | None, what: str) -> T:
    """`value`, which an invariant of the caller says is there. An explicit check rather than
    an `assert`, which `python -O` would drop.

    >>> required(3, "a count")
    3
    """
    if value is None:
        raise RuntimeError(f"invariant broken: {what} is missing")
    return value
