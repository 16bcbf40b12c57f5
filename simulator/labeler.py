"""Simulated analysts: verdicts on alerts from the simulation's ground truth, with noise.

An analyst labels an alert abusive when it detects an attack of the ground truth and benign
otherwise (decoys and organic traffic), wrong with probability `noise` and unsure with
probability `unsure`. A stable share `audit_rate` of labelled alerts get a second verdict from
another analyst, as the console re-queues them, so agreement can be measured. Labels are
stamped `delay_s` after the alert was raised, in the order an analyst would reach them.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from detectors.evaluation import ground_truth
from detectors.events import format_rfc3339, parse_rfc3339
from detectors.labels import audit_selected

POLICIES = {
    "volume_spike": "spam",
    "actor_anomaly": "spam",
    "content_campaign": "spam",
    "report_brigade": "harassment",
}


@dataclass(frozen=True)
class LabelerConfig:
    seed: int = 7
    noise: float = 0.05  # probability a verdict is the wrong one
    unsure: float = 0.02  # probability a verdict is `unsure`
    audit_rate: float = 0.1
    delay_s: float = 600.0
    labelers: tuple[str, ...] = ("ana", "ben", "chen")

    def __post_init__(self) -> None:
        if not 0 <= self.noise <= 1 or not 0 <= self.unsure <= 1 or not 0 <= self.audit_rate <= 1:
            raise ValueError("noise, unsure and audit_rate must be between 0 and 1")
        if len(self.labelers) < 2:
            raise ValueError("at least two labellers, for audits")


class Labeler:
    """Gives the verdicts of `config.labelers` on alerts, from `truth`."""

    def __init__(self, truth: Iterable[Mapping[str, Any]], config: LabelerConfig) -> None:
        self.truth = list(truth)
        self.config = config
        self.rng = random.Random(f"labels:{config.seed}")

    def verdict(self, abusive: bool) -> str:
        draw = self.rng.random()
        if draw < self.config.unsure:
            return "unsure"
        wrong = draw < self.config.unsure + self.config.noise
        return "abusive" if abusive != wrong else "benign"

    def label(
        self, record: Mapping[str, Any], abusive: bool, labeler: str, ts: float
    ) -> dict[str, Any]:
        alert_id = record["alert_id"]
        return {
            "label_id": f"{alert_id}:{labeler}",
            "ts": format_rfc3339(ts),
            "subject_type": "alert",
            "subject_id": alert_id,
            "verdict": self.verdict(abusive),
            "labeler": labeler,
            "policy": POLICIES.get(record["detector"], "other"),
        }

    def labels(self, alerts: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """One verdict per alert (on its first message), and a second for audited ones."""
        firsts: dict[str, Mapping[str, Any]] = {}
        for record in alerts:
            firsts.setdefault(record["alert_id"], record)
        truth = ground_truth(firsts.values(), self.truth)
        config = self.config
        out = []
        for number, (alert_id, record) in enumerate(firsts.items()):
            ts = parse_rfc3339(record["ts"]) + config.delay_s
            first = config.labelers[number % len(config.labelers)]
            out.append(self.label(record, truth[alert_id], first, ts))
            if audit_selected(alert_id, config.audit_rate):
                second = config.labelers[(number + 1) % len(config.labelers)]
                out.append(self.label(record, truth[alert_id], second, ts + config.delay_s))
        out.sort(key=lambda label: (parse_rfc3339(label["ts"]), label["label_id"]))
        return out
