"""Realistic alert messages, one alert per detector, for the triage console's tests.

Times are relative to `now` so that the console's time filters (last hour, last day) apply.
Priorities differ, so the queue's order is known: campaign, actor, volume spike, brigade.
"""

from __future__ import annotations

import hashlib
from typing import Any

from detectors.events import format_rfc3339

MINUTE = 60.0

Record = dict[str, Any]


def alert_id(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def message(
    *,
    ident: str,
    detector: str,
    status: str,
    severity: str,
    entity: tuple[str, str],
    start: float,
    end: float,
    score: float,
    threshold: float,
    summary: str,
    evidence: Record,
    priority: float | None,
) -> Record:
    record: Record = {
        "schema_version": 1,
        "alert_id": ident,
        "detector": detector,
        "status": status,
        "severity": severity,
        "entity": {"type": entity[0], "id": entity[1]},
        "ts": format_rfc3339(end),
        "window": {"start": format_rfc3339(start), "end": format_rfc3339(end)},
        "score": score,
        "threshold": threshold,
        "summary": summary,
        "evidence": evidence,
        "emitted_at": format_rfc3339(end + 1.2),
    }
    if priority is not None:
        record["priority"] = priority
    return record


def volume_spike(now: float, priority: float | None = 0.62) -> list[Record]:
    """A spam wave on the groups surface: four messages, escalated to critical."""
    ident = alert_id("volume_spike", "content.surface:groups", now)
    start = now - 40 * MINUTE
    series = [  # (minutes after start, observed, expected, lower, upper, severity, status)
        (1, 41, 12.4, 5.8, 19.6, "warning", "firing"),
        (11, 118, 12.9, 6.1, 20.3, "critical", "update"),
        (21, 143, 13.1, 6.2, 20.6, "critical", "update"),
        (31, 97, 13.6, 6.5, 21.2, "critical", "update"),
    ]
    messages = []
    peak = 0.0
    for index, (minutes, observed, expected, lower, upper, severity, status) in enumerate(series):
        end = start + minutes * MINUTE
        score = round((observed - expected) / ((upper - expected) / 6.0), 2)
        peak = max(peak, score)
        messages.append(
            message(
                ident=ident,
                detector="volume_spike",
                status=status,
                severity=severity,
                entity=("signal", "content.surface:groups"),
                start=start,
                end=end,
                score=score,
                threshold=6.0,
                summary=(
                    f"Content on surface groups: {observed} events in the 60 s to "
                    f"{format_rfc3339(end)[11:16]} UTC, expected about {expected:.0f} "
                    f"(normal up to {upper:.0f})."
                ),
                evidence={
                    "signal": "content.surface:groups",
                    "signal_family": "content.surface",
                    "window_seconds": 60.0,
                    "observed": observed,
                    "expected": expected,
                    "band": {"lower": lower, "upper": upper},
                    "ratio": round(observed / expected, 2),
                    "peak_score": peak,
                    "windows_flagged": 1 + index * 10,
                    "baseline_windows": 1440,
                    "sample_event_ids": [f"c01{index}{n:04d}" for n in range(5)],
                },
                priority=priority,
            )
        )
    return messages


def actor_anomaly(now: float, priority: float | None = 0.81, actor: str = "u0021055") -> Record:
    end = now - 12 * MINUTE
    return message(
        ident=alert_id("actor_anomaly", actor, now),
        detector="actor_anomaly",
        status="firing",
        severity="critical",
        entity=("actor", actor),
        start=end - MINUTE,
        end=end,
        score=0.9988,
        threshold=0.5,
        summary=(
            f"Account {actor}, 2 days old, sent 33 messages to 33 distinct new recipients "
            "in 10 min; 100% near-identical text; 99% with links."
        ),
        evidence={
            "actor": actor,
            "account_age_days": 1.62,
            "indicators": ["dup_share", "new_targets_10m", "link_share"],
            "top_features": [
                {
                    "feature": "new_targets_10m",
                    "value": 33.0,
                    "population_median": 0.0,
                    "population_edge": 1.0,
                    "excess": 32.0,
                },
                {
                    "feature": "dup_share",
                    "value": 1.0,
                    "population_median": 0.0,
                    "population_edge": 0.2,
                    "excess": 4.0,
                },
                {
                    "feature": "link_share",
                    "value": 0.99,
                    "population_median": 0.05,
                    "population_edge": 0.5,
                    "excess": 1.09,
                },
                {
                    "feature": "age_days",
                    "value": 1.62,
                    "population_median": 412.0,
                    "population_edge": 6.5,
                    "excess": 0.01,
                },
            ],
            "features": {
                "events_10m": 33.0,
                "events_24h": 33.0,
                "gap_cv": 1.0,
                "new_targets_10m": 33.0,
                "new_target_share": 1.0,
                "dup_share": 1.0,
                "link_share": 0.99,
                "new_domains_1h": 1.0,
                "age_days": 1.62,
                "reporters_24h": 0.0,
                "reports_filed_1h": 0.0,
                "message_share": 1.0,
            },
            "surface": "messenger",
            "domains": ["earnfast42.top"],
            "reports_received_reasons": {"scam": 3},
            "peak_score": 0.9988,
            "windows_flagged": 1,
            "model": "quantile",
            "population_size": 1810,
            "sample_event_ids": ["c0186642", "c0186650", "c0186661", "c0186670", "c0186683"],
        },
        priority=priority,
    )


def content_campaign(now: float, priority: float | None = 0.94) -> Record:
    end = now - 6 * MINUTE
    members = [f"u00212{n:02d}" for n in range(77)]
    return message(
        ident=alert_id("content_campaign", "cmp-979d46fce8da", now),
        detector="content_campaign",
        status="update",
        severity="critical",
        entity=("campaign", "cmp-979d46fce8da"),
        start=end - 4 * MINUTE,
        end=end,
        score=38.5,
        threshold=3.0,
        summary=(
            "Campaign cmp-979d46fce8da: 77 accounts (all under 30 days old) posted "
            'near-identical text in 4 min, linking to luxe-outlet65.top: "⚡ 64% OFF designer '
            'bags, final stock clearance ⚡ https://lux".'
        ),
        evidence={
            "campaign_kind": "content",
            "members": members,
            "member_count": 77,
            "account_age": {"known": 77, "younger_than_30_days": 77},
            "accounts_sharing_devices": 77,
            "first_seen": format_rfc3339(end - 4 * MINUTE + 1.4),
            "last_seen": format_rfc3339(end - 2.0),
            "indicators": ["young_accounts", "shared_devices", "new_domain", "tight_timing"],
            "sample_texts": [
                "⚡ 64% OFF designer bags, final stock clearance ⚡ https://luxe-outlet65.top/p/3f9a1c",
                "⚡ 64% OFF designer bags!! final stock clearance ⚡ https://luxe-outlet65.top/p/77d0",
                "<b>64% OFF</b> designer bags, final stock clearance https://luxe-outlet65.top/p/a1",
            ],
            "shared_domains": {"luxe-outlet65.top": 212},
            "new_domains": ["luxe-outlet65.top"],
            "sample_event_ids": ["c0168032", "c0168040", "c0168051", "c0168066", "c0168070"],
            "keys": 9,
            "members_flagged_individually": ["u0021203", "u0021217"],
        },
        priority=priority,
    )


def synchronised_campaign(now: float, priority: float | None = 0.84) -> Record:
    """Accounts keeping one schedule: a campaign of no text or link of its own."""
    end = now - 15 * MINUTE
    times = [end - 60 - 1083 * k for k in range(6, -1, -1)]
    return message(
        ident=alert_id("content_campaign", "cmp-9b158d84b049", now),
        detector="content_campaign",
        status="firing",
        severity="warning",
        entity=("campaign", "cmp-9b158d84b049"),
        start=end - MINUTE,
        end=end,
        score=3.2,
        threshold=1.0,
        summary=(
            "Campaign cmp-9b158d84b049: 8 accounts (1 of 8 under 30 days old) acting in the "
            "same 30 s, 7 times in 1.8 h, about every 18 min."
        ),
        evidence={
            "campaign_kind": "synchronised",
            "members": [f"u00207{36 + i}" for i in range(8)],
            "member_count": 8,
            "account_age": {"known": 8, "younger_than_30_days": 1},
            "accounts_sharing_devices": 7,
            "first_seen": format_rfc3339(times[0] - 1),
            "last_seen": format_rfc3339(times[-1] + 2),
            "indicators": ["shared_schedule", "shared_devices"],
            "sample_texts": [],
            "shared_domains": {},
            "new_domains": [],
            "sample_event_ids": ["c0450080", "c0450083", "c0450089"],
            "keys": 2,
            "members_flagged_individually": [],
            "schedule": {
                "times": [format_rfc3339(t) for t in times],
                "period_seconds": 1083,
                "slot_seconds": 30.0,
            },
        },
        priority=priority,
    )


def report_brigade(now: float, priority: float | None = 0.47) -> Record:
    end = now - 25 * MINUTE
    return message(
        ident=alert_id("report_brigade", "u0004588", now),
        detector="report_brigade",
        status="update",
        severity="warning",
        entity=("target", "u0004588"),
        start=end - 21 * MINUTE,
        end=end,
        score=5.6667,
        threshold=1.0,
        summary=(
            "Account u0004588 reported by 17 accounts in 3 min, all for hate; looks coordinated "
            "(17 of 17 reporters under 30 days old; one reason; tight timing; the same "
            "reporters also hit u0007398)."
        ),
        evidence={
            "pattern": "coordinated",
            "reporters": [f"u00211{n:02d}" for n in range(17)],
            "reporter_count": 17,
            "reports": 17,
            "reasons": {"hate": 17},
            "reporter_age": {"known": 17, "younger_than_30_days": 17},
            "span_seconds": 144.7,
            "indicators": [
                "young_reporters",
                "one_reason",
                "tight_timing",
                "same_reporters_other_targets",
            ],
            "same_reporters_also_targeted": ["u0007398"],
            "sample_event_ids": ["r0001003", "r0001004", "r0001005", "r0001007", "r0001008"],
        },
        priority=priority,
    )


def sample_alerts(now: float) -> list[Record]:
    """Every message of the four alerts, oldest first per alert."""
    return [
        *volume_spike(now),
        actor_anomaly(now),
        content_campaign(now),
        report_brigade(now),
    ]
