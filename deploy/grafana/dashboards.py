"""The Grafana boards, as code: `python deploy/grafana/dashboards.py` writes the JSON files
that Grafana provisions from deploy/grafana/dashboards/. A test checks the files are current,
and another runs every panel's queries against a Prometheus that scraped a real worker.

Panels use the recording rules of deploy/prometheus/rules.yml where one exists.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
WIDTH = 24


def panel(
    title: str,
    *targets: tuple[str, str],
    unit: str = "short",
    kind: str = "timeseries",
    description: str = "",
) -> dict[str, Any]:
    """One panel: (PromQL, legend) targets, drawn as a time series or a single stat."""
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "expr": expr,
                "legendFormat": legend,
                "datasource": DATASOURCE,
            }
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def dashboard(
    uid: str,
    title: str,
    rows: list[list[dict[str, Any]]],
    variables: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A board of rows of panels, each row split evenly across the width."""
    panels = []
    y = 0
    for row in rows:
        width = WIDTH // len(row)
        for i, item in enumerate(row):
            item = dict(
                item, id=len(panels) + 1, gridPos={"x": i * width, "y": y, "w": width, "h": 8}
            )
            panels.append(item)
        y += 8
    datasource_variable = {
        "name": "datasource",
        "label": "Prometheus",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
    }
    return {
        "uid": uid,
        "title": title,
        "tags": ["abuse-monitor"],
        "schemaVersion": 39,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [datasource_variable, *(variables or [])]},
        "panels": panels,
    }


def overview() -> dict[str, Any]:
    return dashboard(
        "abuse-monitor-overview",
        "abuse-monitor: overview",
        [
            [
                panel("Workers up", ('up{job="abuse-monitor"}', "{{instance}}"), kind="stat"),
                panel(
                    "Alerts raised in the last hour",
                    ("sum(abusemon:alerts_firing:increase1h)", "alerts"),
                    kind="stat",
                ),
                panel(
                    "Event time behind the wall clock",
                    (
                        "time() - max by (group) (abusemon_event_time_watermark_seconds)",
                        "{{group}}",
                    ),
                    unit="s",
                    kind="stat",
                ),
            ],
            [
                panel(
                    "Events in and processed",
                    ("abusemon:events_consumed:rate5m", "consumed {{topic}}"),
                    ("abusemon:events_processed:rate5m", "processed {{topic}}"),
                    unit="ops",
                ),
                panel(
                    "Dead-lettered and late",
                    ("abusemon:events_dead_lettered:rate5m", "dead-lettered {{topic}} {{reason}}"),
                    ("sum by (topic) (rate(abusemon_events_late_total[5m]))", "late {{topic}}"),
                    unit="ops",
                ),
            ],
            [
                panel("Consumer lag", ("abusemon:consumer_lag_messages:sum", "{{topic}}")),
                panel(
                    "Processing time per message, p99",
                    ("abusemon:event_processing_seconds:p99_5m", "{{topic}}"),
                    unit="s",
                ),
            ],
            [
                panel(
                    "Alerts raised per hour, by detector and severity",
                    ("abusemon:alerts_firing:increase1h", "{{detector}} {{severity}}"),
                ),
                panel(
                    "Event time to alert, p99",
                    ("abusemon:alert_latency_seconds:p99_15m", "{{detector}}"),
                    unit="s",
                ),
            ],
        ],
    )


def signals() -> dict[str, Any]:
    signal = {
        "name": "signal",
        "label": "Signal",
        "type": "query",
        "datasource": DATASOURCE,
        "query": {
            "query": "label_values(abusemon_signal_observed_rate, signal)",
            "refId": "signal",
        },
        "definition": "label_values(abusemon_signal_observed_rate, signal)",
        "refresh": 2,
        "current": {"text": "content", "value": "content"},
        "hide": 0,
    }
    return dashboard(
        "abuse-monitor-signals",
        "abuse-monitor: signals",
        [
            [
                panel(
                    "$signal: observed against expected, with the normal band",
                    ('abusemon_signal_observed_rate{signal="$signal"}', "observed"),
                    ('abusemon_signal_expected_rate{signal="$signal"}', "expected"),
                    ('abusemon_signal_band_upper_rate{signal="$signal"}', "alert line"),
                    ('abusemon_signal_band_lower_rate{signal="$signal"}', "band low"),
                    unit="ops",
                    description="Events per second in each closed window; above the alert line the spike detector flags the window.",
                )
            ],
            [
                panel(
                    "Spike scores, p50 and p99",
                    (
                        'histogram_quantile(0.5, sum by (le) (rate(abusemon_detector_score_bucket{detector="volume_spike"}[15m])))',
                        "p50",
                    ),
                    (
                        'histogram_quantile(0.99, sum by (le) (rate(abusemon_detector_score_bucket{detector="volume_spike"}[15m])))',
                        "p99",
                    ),
                ),
                panel(
                    "Windows closed per minute",
                    ("abusemon:windows_closed:rate5m * 60", "{{group}}"),
                ),
                panel(
                    "Series held",
                    ("sum(abusemon_series_live)", "live"),
                    ("sum(rate(abusemon_series_expired_total[15m])) * 60", "expired per minute"),
                ),
            ],
        ],
        [signal],
    )


def actors_and_campaigns() -> dict[str, Any]:
    return dashboard(
        "abuse-monitor-actors",
        "abuse-monitor: actors and campaigns",
        [
            [
                panel("Actors tracked", ("sum(abusemon_actors_tracked)", "actors"), kind="stat"),
                panel(
                    "Campaigns and brigades followed",
                    ("max(abusemon_coordinated_groups_open)", "open"),
                    kind="stat",
                ),
                panel(
                    "Coordination state",
                    ("sum(abusemon_coordination_keys)", "keys"),
                    ("sum(abusemon_coordination_rows)", "rows"),
                    kind="stat",
                ),
            ],
            [
                panel(
                    "Actors scored per second, and the share above 0.5",
                    ("sum(rate(abusemon_actor_score_count[5m]))", "scored/s"),
                    (
                        '1 - sum(rate(abusemon_actor_score_bucket{le="0.5"}[15m])) / sum(rate(abusemon_actor_score_count[15m]))',
                        "share above 0.5",
                    ),
                ),
                panel(
                    "Actor alerts per hour, and those folded into campaigns",
                    (
                        'sum by (severity) (increase(abusemon_alerts_total{detector="actor_anomaly", status="firing"}[1h]))',
                        "raised {{severity}}",
                    ),
                    (
                        "sum(increase(abusemon_actor_alerts_folded_total[1h]))",
                        "folded into campaigns",
                    ),
                ),
            ],
            [
                panel(
                    "Campaigns and brigades raised per hour",
                    (
                        'sum by (detector, severity) (increase(abusemon_alerts_total{detector=~"content_campaign|report_brigade", status="firing"}[1h]))',
                        "{{detector}} {{severity}}",
                    ),
                ),
                panel(
                    "State evicted to stay under the caps, per minute",
                    ("abusemon:state_evictions:rate15m * 60", "evicted"),
                ),
            ],
        ],
    )


BOARDS = {
    "overview.json": overview,
    "signals.json": signals,
    "actors-and-campaigns.json": actors_and_campaigns,
}


def render(build: Any) -> str:
    return json.dumps(build(), indent=2) + "\n"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, build in BOARDS.items():
        (OUT / name).write_text(render(build))


if __name__ == "__main__":
    main()
