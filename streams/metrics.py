"""Every Prometheus metric the worker exports, declared in one place against a given registry.

Labels are bounded: topic, reason, detector, severity, group, policy, and `signal` only for
the aggregate signals (never per-account series), capped at `MAX_SIGNAL_LABELS` values;
`labeler` is capped at `MAX_LABELER_LABELS` values and holds a pseudonym
(`labeler_pseudonym`), never an analyst's name.

Each gauge names how the supervisor of `worker --processes N` combines its processes'
values (`multiprocess_mode`; counters and histograms are summed): `livesum` for what each
process holds (lag, partitions, state, queues), `livemax` for what one process sets and the
others leave at zero (partition 0's owner) or for the furthest watermark, and
`livemostrecent` for a signal's rates, set by whichever process owns the signal now. `live`:
a process that died stops counting. Without the supervisor the modes do nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

MAX_SIGNAL_LABELS = 200

SCORE_BUCKETS = (-4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 20.0, 50.0)
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)
ACTOR_SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
PRIORITY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
MAX_LABELER_LABELS = 100
CHECKPOINT_BYTES_BUCKETS = (1e3, 1e4, 1e5, 1e6, 1e7, 1e8)
CHECKPOINT_SECONDS_BUCKETS = (0.001, 0.005, 0.025, 0.1, 0.25, 1.0, 2.5, 10.0)
PROCESSING_BUCKETS = (1e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
GC_PAUSE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
HOP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000)


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        ns = "abusemon"
        self.consumed = Counter(
            "events_consumed",
            "Messages read from an input topic.",
            ["topic"],
            namespace=ns,
            registry=registry,
        )
        self.processed = Counter(
            "events_processed",
            "Valid messages handled (including duplicates and late events).",
            ["topic"],
            namespace=ns,
            registry=registry,
        )
        self.dead_lettered = Counter(
            "events_dead_lettered",
            "Invalid messages sent to the dead-letter topic.",
            ["topic", "reason"],
            namespace=ns,
            registry=registry,
        )
        self.duplicates = Counter(
            "events_duplicate",
            "Valid messages whose event_id was already processed.",
            ["topic"],
            namespace=ns,
            registry=registry,
        )
        self.late = Counter(
            "events_late",
            "Events that arrived after their window closed (not counted in it).",
            ["topic"],
            namespace=ns,
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "batch_processing_seconds",
            "Wall time to handle one batch of messages (one partition's fetch), per topic: "
            "the input topics' (stage 1) and the internal one's (stage 2).",
            ["topic"],
            buckets=PROCESSING_BUCKETS,
            namespace=ns,
            registry=registry,
        )
        self.batch_messages = Histogram(
            "batch_messages",
            "Messages in one batch, per topic (the input topics and the internal one).",
            ["topic"],
            buckets=BATCH_BUCKETS,
            namespace=ns,
            registry=registry,
        )
        self.hop_seconds = Histogram(
            "internal_hop_seconds",
            "Time from a message's write to the internal topic (its timestamp) until stage 2 "
            "takes it up: one hop of a window's close between the stages, the producer's and "
            "the fetch's waits included.",
            buckets=HOP_BUCKETS,
            namespace=ns,
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "consumer_lag_messages",
            "Messages behind the end of the input topic.",
            ["topic"],
            namespace=ns,
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.assigned = Gauge(
            "assigned_partitions",
            "Partitions of each topic this worker consumes.",
            ["topic"],
            namespace=ns,
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.watermark = Gauge(
            "event_time_watermark_seconds",
            "Event time up to which windows are closed.",
            ["group"],
            namespace=ns,
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.windows_closed = Counter(
            "windows_closed",
            "Event-time windows closed, per signal group, summed over the stage-2 partitions held.",
            ["group"],
            namespace=ns,
            registry=registry,
        )
        self.observed = Gauge(
            "signal_observed_rate",
            "Events per second in the last closed window.",
            ["signal"],
            namespace=ns,
            multiprocess_mode="livemostrecent",
            registry=registry,
        )
        self.expected = Gauge(
            "signal_expected_rate",
            "The detector's expected events per second for that window.",
            ["signal"],
            namespace=ns,
            multiprocess_mode="livemostrecent",
            registry=registry,
        )
        self.band_lower = Gauge(
            "signal_band_lower_rate",
            "Lower edge of the normal band, events per second.",
            ["signal"],
            namespace=ns,
            multiprocess_mode="livemostrecent",
            registry=registry,
        )
        self.band_upper = Gauge(
            "signal_band_upper_rate",
            "Upper edge of the normal band (the alert line), events per second.",
            ["signal"],
            namespace=ns,
            multiprocess_mode="livemostrecent",
            registry=registry,
        )
        self.score = Histogram(
            "detector_score",
            "Scores of closed windows, per detector.",
            ["detector"],
            buckets=SCORE_BUCKETS,
            namespace=ns,
            registry=registry,
        )
        self.actor_score = Histogram(
            "actor_score",
            "Population-model scores of actors (0..1), at most one per actor and window.",
            buckets=ACTOR_SCORE_BUCKETS,
            namespace=ns,
            registry=registry,
        )
        self.actors_tracked = Gauge(
            "actors_tracked",
            "Actors whose behaviour state this worker holds.",
            namespace=ns,
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.actors_evicted = Counter(
            "actor_state_evicted",
            "Actor states dropped because the actor cap was reached.",
            namespace=ns,
            registry=registry,
        )
        self.actors_expired = Counter(
            "actor_state_expired",
            "Actor states of idle actors that expired.",
            namespace=ns,
            registry=registry,
        )
        self.coordination_keys = Gauge(
            "coordination_keys",
            "Text buckets, new domains and reported accounts held for coordination, with rows.",
            namespace=ns,
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.coordination_rows = Gauge(
            "coordination_rows",
            "Posts and reports held in those keys' sliding windows.",
            namespace=ns,
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.coordination_evicted = Counter(
            "coordination_keys_evicted",
            "Coordination keys dropped because the key cap was reached.",
            namespace=ns,
            registry=registry,
        )
        self.alerts_folded = Counter(
            "actor_alerts_folded",
            "Actor alerts not published because their account is in a campaign already raised.",
            namespace=ns,
            registry=registry,
        )
        self.groups_open = Gauge(
            "coordinated_groups_open",
            "Campaigns and brigades being followed (on the worker holding partition 0).",
            namespace=ns,
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.series_live = Gauge(
            "series_live",
            "Rate series held by this worker.",
            namespace=ns,
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.series_evicted = Counter(
            "series_evicted",
            "Series dropped because the series cap was reached.",
            namespace=ns,
            registry=registry,
        )
        self.series_expired = Counter(
            "series_expired",
            "Idle per-account or dimension series that expired.",
            namespace=ns,
            registry=registry,
        )
        self.alerts = Counter(
            "alerts",
            "Alert messages published, by status (firing, update, resolved).",
            ["detector", "severity", "status"],
            namespace=ns,
            registry=registry,
        )
        self.alert_latency = Histogram(
            "alert_latency_seconds",
            "Wall-clock emission time minus the alert's event time.",
            ["detector"],
            buckets=LATENCY_BUCKETS,
            namespace=ns,
            registry=registry,
        )
        self.alertmanager_pushed = Counter(
            "alertmanager_alerts_pushed",
            "Alerts Alertmanager accepted, re-sends of open alerts included.",
            namespace=ns,
            registry=registry,
        )
        self.alertmanager_failures = Counter(
            "alertmanager_push_failures",
            "Pushes to Alertmanager that failed: unreachable, timeout, server_error (retried with backoff) or rejected (a 4xx; dropped).",
            ["reason"],
            namespace=ns,
            registry=registry,
        )
        self.alertmanager_dropped = Counter(
            "alertmanager_queue_dropped",
            "Alert records dropped, oldest first, because the Alertmanager queue was full.",
            namespace=ns,
            registry=registry,
        )
        self.alertmanager_queue = Gauge(
            "alertmanager_queue_length",
            "Alert records waiting to be pushed to Alertmanager.",
            namespace=ns,
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.labels = Counter(
            "labels",
            "Analysts' verdicts applied, by subject type (alert, actor, content, campaign) and verdict.",
            ["subject_type", "verdict"],
            namespace=ns,
            registry=registry,
        )
        self.labeler_labels = Counter(
            "labeler_labels",
            f"Verdicts per labeller (throughput), by pseudonym (keyed hash of the name, ABUSEMON_LABELER_PSEUDONYM_KEY); labellers beyond the first {MAX_LABELER_LABELS} count as `other`.",
            ["labeler"],
            namespace=ns,
            registry=registry,
        )
        self.label_precision = Gauge(
            "label_precision_ratio",
            "Per detector, abusive / (abusive + benign) among analysts' first verdicts on its alerts over ABUSEMON_PRECISION_WINDOW_S.",
            ["detector"],
            namespace=ns,
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.label_verdicts = Gauge(
            "label_verdicts_in_window",
            "Per detector, the abusive and benign verdicts the precision is computed from.",
            ["detector"],
            namespace=ns,
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.label_agreement = Gauge(
            "label_agreement_kappa",
            "Cohen's kappa between first and second labellers of audited alerts, per policy.",
            ["policy"],
            namespace=ns,
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.label_pairs = Counter(
            "label_audit_pairs",
            "Alerts labelled by a second labeller (audit pairs), per policy.",
            ["policy"],
            namespace=ns,
            registry=registry,
        )
        self.alerts_suppressed = Counter(
            "alerts_suppressed",
            "Alert messages not published because their entity was labelled benign.",
            ["detector"],
            namespace=ns,
            registry=registry,
        )
        self.alerts_escalated = Counter(
            "alerts_escalated",
            "Alert messages raised to critical because their actor was labelled abusive.",
            ["detector"],
            namespace=ns,
            registry=registry,
        )
        self.alerts_unlabelled = Gauge(
            "alerts_unlabelled",
            "Alerts raised over the precision window that no analyst has labelled yet.",
            namespace=ns,
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.alert_priority = Histogram(
            "alert_priority",
            "Learnt priority of firing alerts: how likely analysts are to confirm them.",
            ["detector"],
            buckets=PRIORITY_BUCKETS,
            namespace=ns,
            registry=registry,
        )
        self.store_failures = Counter(
            "alert_store_failures",
            "Writes to the alert and label store that failed (the stream goes on; the write is retried).",
            namespace=ns,
            registry=registry,
        )
        self.store_rejected = Counter(
            "alert_store_rejected",
            "Alert and label writes the store refused as bad data (e.g. a NUL in PostgreSQL text): set aside and logged, never retried; by kind (alert, label).",
            ["kind"],
            namespace=ns,
            registry=registry,
        )
        self.store_backlog = Gauge(
            "alert_store_backlog",
            "Alert and label writes waiting for the store to accept them again, retried every 5 s.",
            namespace=ns,
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.store_dropped = Counter(
            "alert_store_dropped",
            "Alert and label writes dropped, oldest first, because the store's backlog was full.",
            namespace=ns,
            registry=registry,
        )
        self.checkpoint_bytes = Histogram(
            "checkpoint_bytes",
            "Size of each checkpoint of a unit of state (compressed), per stage.",
            ["stage"],
            buckets=CHECKPOINT_BYTES_BUCKETS,
            namespace=ns,
            registry=registry,
        )
        self.checkpoint_seconds = Histogram(
            "checkpoint_seconds",
            "Wall time to save a checkpoint and have the broker acknowledge it, per stage.",
            ["stage"],
            buckets=CHECKPOINT_SECONDS_BUCKETS,
            namespace=ns,
            registry=registry,
        )
        self.checkpoint_pause = Histogram(
            "checkpoint_pause_seconds",
            "Time the event loop waited while a checkpoint read a unit's state, per stage; the "
            "rest of it (compressing, writing, the acknowledgement) goes on beside the stream.",
            ["stage"],
            buckets=CHECKPOINT_SECONDS_BUCKETS,
            namespace=ns,
            registry=registry,
        )
        self.gc_pause = Histogram(
            "gc_pause_seconds",
            "Time the event loop waited for a collection of Python's cyclic garbage "
            "collector, per generation (0 young, 2 full); a full collection traverses all "
            "the state held.",
            ["generation"],
            buckets=GC_PAUSE_BUCKETS,
            namespace=ns,
            registry=registry,
        )
        # Shown at zero from the start: before the first checkpoint, and between collections.
        for stage in ("ingest", "signals"):
            self.checkpoint_pause.labels(stage)
        for generation in range(3):
            self.gc_pause.labels(str(generation))
        self.checkpoint_failures = Counter(
            "checkpoint_failures",
            "Checkpoints whose write, acknowledgement or commit failed, per stage: the unit "
            "goes on, its committed offset at its last checkpoint, and is checkpointed again "
            "when next due.",
            ["stage"],
            namespace=ns,
            registry=registry,
        )
        self.state_restored = Counter(
            "state_restored",
            "Units of state restored from their checkpoint when a partition was taken up.",
            ["stage"],
            namespace=ns,
            registry=registry,
        )
        self.state_refused = Counter(
            "state_refused",
            "Checkpoints not restored, their unit started empty, per stage and reason: damaged (not whole, or a bad header), format (of another format, such as the pickles of earlier versions) or refused (by the codec: a type or version it does not rebuild, or data that is not a state).",
            ["stage", "reason"],
            namespace=ns,
            registry=registry,
        )
        self.replayed = Counter(
            "messages_replayed",
            "Messages read again after a restart or rebalance whose effect the state already held.",
            ["topic"],
            namespace=ns,
            registry=registry,
        )
        self.rewinds = Counter(
            "partition_rewinds",
            "Times a partition was read again from its state's offset, because the consumer "
            "resumed past it after a restart or rebalance.",
            ["topic"],
            namespace=ns,
            registry=registry,
        )
        self.state_gap = Counter(
            "state_gap_messages",
            "Messages a resumed state never saw: the consumer resumed past its offset, and "
            "reading again did not bring them back. Should stay zero.",
            ["topic"],
            namespace=ns,
            registry=registry,
        )
        self.alerts_deduplicated = Counter(
            "alerts_deduplicated",
            "Alert messages raised again by a replay from a checkpoint and not published twice.",
            namespace=ns,
            registry=registry,
        )
        self.signal_labels: set[str] = set()
        self.labelers: set[str] = set()
        self.children: dict[tuple[MetricWrapperBase, tuple[str, ...]], Any] = {}

    def child(self, metric: MetricWrapperBase, *labels: str) -> Any:
        """`metric.labels(*labels)`, kept after its first use: for the metrics updated per
        event, where `labels` (which checks and locks on every call) cost more than the
        update. Not for metrics whose children are removed."""
        key = (metric, labels)
        child = self.children.get(key)
        if child is None:
            child = self.children[key] = metric.labels(*labels)
        return child

    def labeler_label(self, labeler: str) -> str:
        """The labeller's own label value while under the cap, else `other`."""
        if labeler in self.labelers or len(self.labelers) < MAX_LABELER_LABELS:
            self.labelers.add(labeler)
            return labeler
        return "other"

    def signal_label_allowed(self, signal: str) -> bool:
        """Admit a new `signal` label value only while under the cap."""
        if signal in self.signal_labels:
            return True
        if len(self.signal_labels) >= MAX_SIGNAL_LABELS:
            return False
        self.signal_labels.add(signal)
        return True


def labeler_pseudonym(key: bytes, labeler: str) -> str:
    """The stable stand-in for a labeller's name in metrics: the first 12 hex digits of
    HMAC-SHA256 of the name under `key`. Without the key, the name cannot be guessed from it
    (analysts' names are few and guessable, so an unkeyed hash would not hide them).

    >>> labeler_pseudonym(b"k" * 32, "ana")
    'l-3f090c71617f'
    """
    return "l-" + hmac.new(key, labeler.encode(), hashlib.sha256).hexdigest()[:12]


def metrics_table() -> str:
    """Every metric as a Markdown table, for docs/metrics.md."""
    rows = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    for metric in vars(Metrics(CollectorRegistry())).values():
        if isinstance(metric, MetricWrapperBase):
            kind = metric._type
            name = metric._name + ("_total" if kind == "counter" else "")
            labels = ", ".join(metric._labelnames) or "-"
            rows.append(f"| `{name}` | {kind} | {labels} | {metric._documentation} |")
    return "\n".join(rows)
