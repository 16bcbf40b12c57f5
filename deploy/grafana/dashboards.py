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
# The worker processes scraped: N for `worker --processes N` (its supervisor's gauge), else one
# per target up. Their histograms are summed, so a share of time per process divides by it.
PROCESSES = 'scalar(clamp_min(sum(abusemon_worker_processes or up{job="abuse-monitor"}), 1))'


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
                    "Time per batch, p99 (input topics: stage 1; signal-partials: stage 2), "
                    "and per hop between the stages",
                    ("abusemon:batch_processing_seconds:p99_5m", "{{topic}}"),
                    ("abusemon:internal_hop_seconds:p99_5m", "hop between the stages"),
                    unit="s",
                ),
                panel(
                    "Share of time a worker process stood still: checkpoints reading the "
                    "state, and the garbage collector",
                    (
                        "sum by (stage) (rate(abusemon_checkpoint_pause_seconds_sum[5m]))"
                        f" / {PROCESSES}",
                        "checkpoints {{stage}}",
                    ),
                    (
                        "sum by (generation) (rate(abusemon_gc_pause_seconds_sum[5m]))"
                        f" / {PROCESSES}",
                        "collector, generation {{generation}}",
                    ),
                    unit="percentunit",
                    description="Every stage of the process waits meanwhile: a window's close, "
                    "and its alerts, too. Long full collections (generation 2) mean much state "
                    "per process. Averaged over the processes (`worker --processes N`); "
                    "AbuseMonitorWorkerPausing fires over a fifth.",
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


def labels() -> dict[str, Any]:
    return dashboard(
        "abuse-monitor-labels",
        "abuse-monitor: labels",
        [
            [
                panel(
                    "Alerts awaiting a verdict",
                    ("max(abusemon_alerts_unlabelled)", "unlabelled"),
                    kind="stat",
                    description="Firing alerts over the precision window (ABUSEMON_PRECISION_WINDOW_S) that no analyst has labelled: the triage queue without its audits. If it only grows, analysts cannot keep up: staff the queue or raise the detectors' thresholds (alert AbuseMonitorTriageBacklog).",
                ),
                panel(
                    "Verdicts in the last hour",
                    ("sum(abusemon:labels:increase1h)", "verdicts"),
                    kind="stat",
                    description="Analysts' verdicts the worker applied in the last hour, on every subject type. Zero while analysts are working means their labels do not reach the worker: check the console publishes to the labels topic and the worker consumes it.",
                ),
                panel(
                    "Store write failures in the last hour",
                    ("sum(increase(abusemon_alert_store_failures_total[1h]))", "failures"),
                    kind="stat",
                    description="Alerts and labels the worker could not write to the alert and label store. Anything above zero: the console's queue and history miss them; see the runbook of AbuseMonitorAlertStoreFailing.",
                ),
            ],
            [
                panel(
                    "Precision per detector",
                    ("abusemon:label_precision_ratio:max", "{{detector}}"),
                    unit="percentunit",
                    description="Share of a detector's labelled alerts that analysts confirmed (abusive / (abusive + benign), first verdicts over the precision window). Under 50% with 20 verdicts or more, alert AbuseMonitorDetectorPrecisionLow fires: read the benign-labelled alerts and retune that detector. Read it with the number of verdicts beside it.",
                ),
                panel(
                    "Verdicts behind the precision",
                    ("abusemon:label_verdicts_in_window:max", "{{detector}}"),
                    description="Abusive and benign first verdicts per detector over the precision window, from which the precision is computed. Under about 20, a precision says little; if a detector has none while it raises alerts, its alerts are not being labelled.",
                ),
            ],
            [
                panel(
                    "Labelled and unlabelled alerts",
                    ("sum(abusemon:label_verdicts_in_window:max)", "labelled abusive or benign"),
                    ("max(abusemon_alerts_unlabelled)", "awaiting a verdict"),
                    description="Over the precision window: alerts with an abusive or benign first verdict, and firing alerts with none yet (the queue). A growing queue while the labelled line stays flat means analysts are not keeping up, or their labels do not reach the worker.",
                ),
                panel(
                    "Verdicts per hour, by verdict",
                    ("abusemon:labels:increase1h", "{{verdict}} on {{subject_type}}"),
                    description="Verdicts applied per hour, by verdict and subject type (alert, actor, content, campaign). Many unsure verdicts mean the evidence does not let analysts decide: improve the alert's evidence or the policy guidance. A drop to zero during working hours: the labels stopped flowing.",
                ),
                panel(
                    "Verdicts per hour, by labeller",
                    (
                        "sum by (labeler) (increase(abusemon_labeler_labels_total[1h]))",
                        "{{labeler}}",
                    ),
                    description="Throughput of each labeller (beyond the first 100, `other`). A labeller far above the others may be clicking through the queue: compare their verdicts with the audits.",
                ),
            ],
            [
                panel(
                    "Agreement between labellers (Cohen's kappa)",
                    ("abusemon:label_agreement_kappa:max", "{{policy}}"),
                    unit="none",
                    description="Cohen's kappa between first and second verdicts on audited alerts, per policy: 1 is full agreement, 0 is chance. Under 0.4 with enough audit pairs, alert AbuseMonitorLabelAgreementLow fires: analysts apply the policy differently, so precision and the learnt priority are noise. Review the disagreeing pairs with them.",
                ),
                panel(
                    "Audit pairs per hour",
                    ("abusemon:label_audit_pairs:increase1h", "{{policy}}"),
                    description="Alerts given a second verdict by another labeller (audits), per policy. None for a long time while alerts are labelled: the kappa is stale. Check ABUSEMON_AUDIT_RATE is above zero and analysts take the audit items of the queue.",
                ),
            ],
            [
                panel(
                    "Alerts suppressed and escalated per hour",
                    (
                        "sum by (detector) (increase(abusemon_alerts_suppressed_total[1h]))",
                        "suppressed {{detector}}",
                    ),
                    (
                        "sum by (detector) (increase(abusemon_alerts_escalated_total[1h]))",
                        "escalated {{detector}}",
                    ),
                    description="Alert messages dropped because their entity was labelled benign (for ABUSEMON_LABEL_SUPPRESS_S), and raised to critical because their actor was labelled abusive. Many suppressions from one detector mean it keeps flagging the same benign entities: tune it. Escalations are repeat offenders: check they are actioned.",
                ),
                panel(
                    "Priority of firing alerts, median per detector",
                    ("abusemon:alert_priority:p50_1h", "{{detector}}"),
                    unit="percentunit",
                    description="Median learnt priority (how likely analysts are to confirm an alert, 0 to 1) of the alerts each detector raised in the last hour; the triage queue is ordered by it. Before any verdict it follows the score (50% at the threshold); verdicts move it toward how often alike alerts were confirmed. A detector whose alerts sit low: analysts mostly label them benign, read its precision. No line for a detector that raises alerts: check the worker log.",
                ),
                panel(
                    "Store write failures per minute",
                    ("sum(rate(abusemon_alert_store_failures_total[5m])) * 60", "failures"),
                    description="Writes to the alert and label store that failed. The stream goes on, but the console does not see those alerts or labels. Check the database (disk, connections, permissions) and the worker log for `alert store write failed`.",
                ),
            ],
        ],
    )


BOARDS = {
    "overview.json": overview,
    "signals.json": signals,
    "actors-and-campaigns.json": actors_and_campaigns,
    "labels.json": labels,
}


def render(build: Any) -> str:
    return json.dumps(build(), indent=2) + "\n"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, build in BOARDS.items():
        (OUT / name).write_text(render(build))


if __name__ == "__main__":
    main()
