"""The labelling loop's pure parts: the gate that applies analysts' verdicts to alerts
(suppression, escalation, precision, a learnt priority), agreement between labellers, and
audit sampling.

>>> audit_selected("a1", 0.0), audit_selected("a1", 1.0)
(False, True)
>>> round(cohen_kappa([("abusive", "abusive"), ("benign", "benign"), ("abusive", "benign")]), 3)
0.4
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from river import linear_model, optim

from detectors.alerts import Alert
from detectors.events import Label


def audit_selected(alert_id: str, rate: float) -> bool:
    """Whether a labelled alert goes to a second labeller: a stable share `rate` of alert ids,
    the same in every process, so the console and the worker agree without sharing state."""
    digest = hashlib.sha256(b"audit\x1f" + alert_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def cohen_kappa(pairs: Iterable[tuple[str, str]]) -> float | None:
    """Cohen's kappa of paired verdicts (first labeller, second labeller); None without pairs.

    1 is perfect agreement, 0 what chance alone gives; 1.0 when both only ever used one verdict.
    """
    pairs = list(pairs)
    if not pairs:
        return None
    n = len(pairs)
    observed = sum(a == b for a, b in pairs) / n
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    expected = sum(first[v] * second[v] for v in first) / (n * n)
    if expected >= 1.0:
        return 1.0
    return (observed - expected) / (1.0 - expected)


# -- learning which alerts analysts confirm ------------------------------------------------

# Evidence strings worth a feature of their own (a small set of values each); other strings
# are ids or prose.
CATEGORICAL = frozenset({"signal_family", "campaign_kind", "pattern", "surface", "model"})


def _signed_log(value: float) -> float:
    return math.copysign(math.log1p(abs(value)), value)


def _flatten(prefix: str, value: Any, out: dict[str, float], depth: int) -> None:
    if isinstance(value, bool):
        out[prefix] = float(value)
    elif isinstance(value, int | float):
        if math.isfinite(value):
            out[prefix] = _signed_log(float(value))
    elif isinstance(value, str):
        if prefix.rsplit(".", 1)[-1] in CATEGORICAL:
            out[f"{prefix}={value}"] = 1.0
    elif isinstance(value, list):
        if value and all(isinstance(v, str) for v in value) and prefix.endswith("indicators"):
            for v in value:
                out[f"{prefix}={v}"] = 1.0
        else:
            out[f"{prefix}#"] = _signed_log(len(value))
    elif isinstance(value, dict) and depth < 2:
        for key, item in value.items():
            _flatten(f"{prefix}.{key}", item, out, depth + 1)


def alert_features(alert: Alert) -> dict[str, float]:
    """What the priority model sees of an alert: its detector, severity and score against the
    threshold, and its evidence flattened (numbers log-scaled, list sizes, indicators and a
    few categorical fields one-hot), each name prefixed by the detector.

    >>> a = Alert("id", "volume_spike", "firing", "warning", "signal", "reports", 0.0, 0.0, 60.0,
    ...           12.0, 6.0, "", {"observed": 40, "signal_family": "reports", "sample_event_ids": ["e1"]})
    >>> sorted(alert_features(a))  # doctest: +NORMALIZE_WHITESPACE
    ['detector=volume_spike', 'entity=signal', 'score_ratio', 'severity=warning',
     'volume_spike.observed', 'volume_spike.sample_event_ids#', 'volume_spike.signal_family=reports']
    """
    ratio = alert.score / alert.threshold if alert.threshold > 0 else alert.score
    x = {
        f"detector={alert.detector}": 1.0,
        f"severity={alert.severity}": 1.0,
        f"entity={alert.entity_type}": 1.0,
        "score_ratio": _signed_log(ratio),
    }
    for key, value in alert.evidence.items():
        _flatten(f"{alert.detector}.{key}", value, x, 0)
    return x


def score_prior(alert: Alert) -> float:
    """The priority before any label: 0.5 at the threshold, rising with score / threshold.
    Ordering by it is ordering by score alone."""
    ratio = alert.score / alert.threshold if alert.threshold > 0 else 1.0
    return 1.0 - 0.5 / max(1.0, ratio)


class Prioritiser:
    """A River logistic regression on `alert_features`, trained online on analysts' verdicts.

    `priority` is its probability that an alert will be confirmed abusive, blended with the
    score prior while labels are few (`prior_weight` labels weigh as much as the prior).
    """

    def __init__(self, prior_weight: float = 20.0, learning_rate: float = 0.05) -> None:
        self.prior_weight = prior_weight
        self.learning_rate = learning_rate
        # No scaler: the features are log-scaled already, and standard scaling would turn a
        # one-hot feature that is always 1 when present (the detector, say) into 0.
        self.model = linear_model.LogisticRegression(optimizer=optim.SGD(learning_rate), l2=1e-4)
        self.n = 0

    def priority(self, x: dict[str, float], prior: float) -> float:
        if self.n == 0:
            return prior
        p = float(self.model.predict_proba_one(x).get(True, 0.5))  # type: ignore[no-untyped-call]
        weight = self.n / (self.n + self.prior_weight)
        return weight * p + (1.0 - weight) * prior

    def learn(self, x: dict[str, float], abusive: bool) -> None:
        self.model.learn_one(x, abusive)
        self.n += 1


# -- the gate every alert passes on its way out ---------------------------------------------


@dataclass(frozen=True)
class LabelConfig:
    suppress_s: float = 86400.0  # an entity labelled benign raises no alert for this long
    abusive_ttl_s: float = 604800.0  # an actor labelled abusive: later alerts critical
    precision_window_s: float = 604800.0
    max_alerts: int = 50_000  # alerts remembered so that labels on them can be learnt from
    max_entities: int = 100_000  # suppressed and abusive entities remembered
    max_pairs: int = 1000  # label pairs per policy kept for agreement
    max_policies: int = 20


@dataclass
class _Seen:
    detector: str
    entity: tuple[str, str]
    features: dict[str, float]
    first_verdict: tuple[str, str] | None = None  # (labeler, verdict) of the first label


@dataclass
class Applied:
    """What a label did: whether it was seen before (a repeated label_id is applied once), and
    the policy of the agreement pair it made, if it was a second labeller's verdict."""

    duplicate: bool = False
    pair_policy: str | None = None


# A label on a subject of this type applies to alerts on entities of that type.
SUBJECT_ENTITY = {"actor": "actor", "campaign": "campaign"}


class LabelGate:
    """Analysts' verdicts applied to the alerts on their way out.

    - `admit` takes each alert message in emission order: it drops those on entities labelled
      benign (for `suppress_s` of event time), raises to critical those on actors labelled
      abusive, and adds the learnt `priority`.
    - `label` takes each verdict: per-detector precision over `precision_window_s`, the
      suppressions, the abusive actors, the priority model (taught only by the first verdict on
      an alert, so an audit does not count twice), and pairs of verdicts on one alert by two
      labellers, for agreement per policy.

    A label applies to the alerts that reach the gate after it, up to `suppress_s` (or
    `abusive_ttl_s`) of event time after the label's own `ts`.
    """

    def __init__(self, config: LabelConfig | None = None) -> None:
        self.config = config or LabelConfig()
        self.prioritiser = Prioritiser()
        self.seen: OrderedDict[str, _Seen] = OrderedDict()
        self.suppressed_until: OrderedDict[tuple[str, str], float] = OrderedDict()
        self.abusive_until: OrderedDict[tuple[str, str], float] = OrderedDict()
        self.dropped: OrderedDict[str, None] = OrderedDict()  # alert ids whose firing was dropped
        self.verdicts: deque[tuple[float, str, bool]] = deque()  # (ts, detector, abusive)
        self.pairs: dict[str, deque[tuple[str, str]]] = {}
        self.unlabelled: OrderedDict[str, float] = OrderedDict()  # firing alert id -> ts
        self.label_ids: OrderedDict[str, None] = OrderedDict()
        self.latest = -math.inf

    # -- alerts --
    def admit(self, alert: Alert) -> tuple[Alert | None, str | None]:
        """The alert to publish (None: suppressed) and what was done: `suppressed`,
        `escalated` or None."""
        # The score as its record has it, whether the alert comes from memory (`evaluate`) or
        # through the internal topic (the worker): the priority is worked out from the same.
        alert = replace(alert, score=round(alert.score, 4))
        entity = (alert.entity_type, alert.entity_id)
        if alert.alert_id in self.dropped:
            if alert.status == "resolved":
                del self.dropped[alert.alert_id]
            return None, "suppressed"
        if alert.status != "resolved" and self.suppressed_until.get(entity, -math.inf) > alert.ts:
            if alert.status == "firing":
                self._remember(self.dropped, alert.alert_id, None, self.config.max_entities)
            return None, "suppressed"
        action = None
        if (
            alert.status != "resolved"
            and alert.severity != "critical"
            and self.abusive_until.get(entity, -math.inf) > alert.ts
        ):
            evidence = {**alert.evidence, "labelled_abusive": True}
            alert = replace(alert, severity="critical", evidence=evidence)
            action = "escalated"
        x = alert_features(alert)
        alert = replace(alert, priority=round(self.prioritiser.priority(x, score_prior(alert)), 4))
        if alert.status != "resolved":
            seen = self.seen.get(alert.alert_id)
            self._remember(
                self.seen,
                alert.alert_id,
                _Seen(alert.detector, entity, x, seen.first_verdict if seen else None),
                self.config.max_alerts,
            )
            if alert.status == "firing":
                self._remember(self.unlabelled, alert.alert_id, alert.ts, self.config.max_entities)
        return alert, action

    # -- labels --
    def label(self, label: Label) -> Applied:
        config = self.config
        applied = Applied()
        if label.label_id in self.label_ids:
            return Applied(duplicate=True)
        self._remember(self.label_ids, label.label_id, None, config.max_entities)
        self.latest = max(self.latest, label.ts)
        entity: tuple[str, str] | None = None
        if label.subject_type == "alert":
            seen = self.seen.get(label.subject_id)
            if seen is not None:
                entity = seen.entity
                applied.pair_policy = self._pair(seen, label)
                if seen.first_verdict is None:
                    seen.first_verdict = (label.labeler, label.verdict)
                    self.unlabelled.pop(label.subject_id, None)
                    if label.verdict != "unsure":
                        abusive = label.verdict == "abusive"
                        self.verdicts.append((label.ts, seen.detector, abusive))
                        self.prioritiser.learn(seen.features, abusive)
        elif label.subject_type in SUBJECT_ENTITY:
            entity = (SUBJECT_ENTITY[label.subject_type], label.subject_id)
        if entity is not None and label.verdict == "benign":
            self._remember(
                self.suppressed_until, entity, label.ts + config.suppress_s, config.max_entities
            )
            self.abusive_until.pop(entity, None)
        elif entity is not None and label.verdict == "abusive" and entity[0] == "actor":
            self._remember(
                self.abusive_until, entity, label.ts + config.abusive_ttl_s, config.max_entities
            )
            self.suppressed_until.pop(entity, None)
        self._expire()
        return applied

    def _pair(self, seen: _Seen, label: Label) -> str | None:
        """A second labeller's verdict on an alert makes a pair for agreement."""
        if seen.first_verdict is None or seen.first_verdict[0] == label.labeler:
            return None
        policy = label.policy or "none"
        if policy not in self.pairs and len(self.pairs) >= self.config.max_policies:
            policy = "other"
        pairs = self.pairs.setdefault(policy, deque(maxlen=self.config.max_pairs))
        pairs.append((seen.first_verdict[1], label.verdict))
        return policy

    def _remember(self, table: OrderedDict[Any, Any], key: Any, value: Any, limit: int) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > limit:
            table.popitem(last=False)

    def _expire(self) -> None:
        horizon = self.latest - self.config.precision_window_s
        while self.verdicts and self.verdicts[0][0] < horizon:
            self.verdicts.popleft()
        while self.unlabelled and next(iter(self.unlabelled.values())) < horizon:
            self.unlabelled.popitem(last=False)

    # -- what it knows --
    def precision(self) -> dict[str, tuple[float, int]]:
        """Per detector: abusive / (abusive + benign) over the window, and how many verdicts."""
        counts: dict[str, list[int]] = {}
        for _, detector, abusive in self.verdicts:
            c = counts.setdefault(detector, [0, 0])
            c[0] += abusive
            c[1] += 1
        return {d: (a / n, n) for d, (a, n) in counts.items()}

    def agreement(self) -> dict[str, float]:
        """Cohen's kappa per policy over the recent pairs of verdicts."""
        out = {}
        for policy, pairs in self.pairs.items():
            kappa = cohen_kappa(pairs)
            if kappa is not None:
                out[policy] = kappa
        return out
