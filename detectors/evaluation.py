"""Detection quality against ground truth: precision, recall and time to detect.

An alert detects a scenario when its window overlaps [start, end + 5 minutes] (closed
intervals: touching counts) and its entity is one of the scenario's signals (type `signal`),
actors (`actor`), targets (`target`), or a campaign whose `evidence.members` include one of
its actors. Messages sharing an `alert_id` are one alert (its updates), whose window is the
union of theirs. An alert that detects no scenario is a false positive.

>>> truth = [{"scenario_id": "b-1", "kind": "report_brigade", "start": "2026-11-24T10:00:00Z",
...           "end": "2026-11-24T10:05:00Z", "actors": ["r1"], "targets": ["u9"],
...           "signals": ["reports.target:u9"]}]
>>> def alert(ident, entity, start, end):
...     return {"alert_id": ident, "detector": "volume_spike", "ts": end,
...             "entity": {"type": "signal", "id": entity},
...             "window": {"start": start, "end": end}}
>>> report = score([alert("a", "reports.target:u9", "2026-11-24T10:01:00Z", "2026-11-24T10:02:00Z"),
...                 alert("b", "content", "2026-11-24T12:00:00Z", "2026-11-24T12:01:00Z")], truth)
>>> report.precision, report.recall, report.scenarios[0].time_to_detect_s
(0.5, 1.0, 120.0)
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from detectors.events import parse_rfc3339

GRACE_S = 300.0


@dataclass(frozen=True)
class DetectorScore:
    detector: str
    alerts: int
    true_positives: int
    false_positives: int
    precision: float | None
    recall: float


@dataclass(frozen=True)
class ScenarioScore:
    scenario_id: str
    kind: str
    detected: bool
    detectors: tuple[str, ...]
    time_to_detect_s: float | None


@dataclass(frozen=True)
class KindScore:
    kind: str
    scenarios: int
    detected: int
    recall: float
    median_time_to_detect_s: float | None


@dataclass(frozen=True)
class Report:
    alerts: int
    true_positives: int
    false_positives: int
    precision: float | None
    recall: float | None
    false_positives_per_day: float | None
    detectors: tuple[DetectorScore, ...]
    kinds: tuple[KindScore, ...]
    scenarios: tuple[ScenarioScore, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Alert:
    alert_id: str
    detector: str
    entity_type: str
    entity_id: str
    members: frozenset[str]
    start: float
    end: float
    raised: float


def _merge(alerts: Iterable[Mapping[str, Any]]) -> list[_Alert]:
    merged: dict[str, _Alert] = {}
    for record in alerts:
        start = parse_rfc3339(record["window"]["start"])
        end = parse_rfc3339(record["window"]["end"])
        raised = parse_rfc3339(record["ts"])
        known = merged.get(record["alert_id"])
        if known is None:
            entity = record["entity"]
            members = (record.get("evidence") or {}).get("members") or ()
            merged[record["alert_id"]] = _Alert(
                record["alert_id"],
                record["detector"],
                entity["type"],
                entity["id"],
                frozenset(members),
                start,
                end,
                raised,
            )
        else:
            known.start, known.end = min(known.start, start), max(known.end, end)
            known.raised = min(known.raised, raised)
    return list(merged.values())


def _detects(alert: _Alert, scenario: Mapping[str, Any]) -> bool:
    start = parse_rfc3339(scenario["start"])
    end = parse_rfc3339(scenario["end"]) + GRACE_S
    if alert.end < start or alert.start > end:
        return False
    kind, ident = alert.entity_type, alert.entity_id
    if kind == "signal":
        return ident in scenario.get("signals", ())
    if kind == "actor":
        return ident in scenario.get("actors", ())
    if kind == "target":
        return ident in scenario.get("targets", ())
    if kind == "campaign":
        return not alert.members.isdisjoint(scenario.get("actors", ()))
    return False


def score(
    alerts: Iterable[Mapping[str, Any]],
    truth: Iterable[Mapping[str, Any]],
    duration_s: float | None = None,
) -> Report:
    merged = _merge(alerts)
    scenarios = list(truth)
    hits = {a.alert_id: [i for i, s in enumerate(scenarios) if _detects(a, s)] for a in merged}

    per_scenario = []
    for i, scenario in enumerate(scenarios):
        detecting = [a for a in merged if i in hits[a.alert_id]]
        start = parse_rfc3339(scenario["start"])
        ttd = max(0.0, min(a.raised for a in detecting) - start) if detecting else None
        per_scenario.append(
            ScenarioScore(
                scenario["scenario_id"],
                scenario["kind"],
                bool(detecting),
                tuple(sorted({a.detector for a in detecting})),
                ttd,
            )
        )

    per_detector = []
    for detector in sorted({a.detector for a in merged}):
        mine = [a for a in merged if a.detector == detector]
        tp = sum(1 for a in mine if hits[a.alert_id])
        found = {i for a in mine for i in hits[a.alert_id]}
        per_detector.append(
            DetectorScore(
                detector,
                len(mine),
                tp,
                len(mine) - tp,
                tp / len(mine),
                len(found) / len(scenarios) if scenarios else 0.0,
            )
        )

    per_kind = []
    for kind in sorted({s.kind for s in per_scenario}):
        mine_s = [s for s in per_scenario if s.kind == kind]
        times = [s.time_to_detect_s for s in mine_s if s.time_to_detect_s is not None]
        detected = sum(1 for s in mine_s if s.detected)
        per_kind.append(
            KindScore(
                kind,
                len(mine_s),
                detected,
                detected / len(mine_s),
                statistics.median(times) if times else None,
            )
        )

    tp = sum(1 for a in merged if hits[a.alert_id])
    fp = len(merged) - tp
    detected = sum(1 for s in per_scenario if s.detected)
    if duration_s is None:
        times = [a.start for a in merged] + [a.end for a in merged]
        times += [parse_rfc3339(s[k]) for s in scenarios for k in ("start", "end")]
        duration_s = (max(times) - min(times)) if times else None
    per_day = fp * 86400.0 / duration_s if duration_s else None
    return Report(
        alerts=len(merged),
        true_positives=tp,
        false_positives=fp,
        precision=tp / len(merged) if merged else None,
        recall=detected / len(scenarios) if scenarios else None,
        false_positives_per_day=per_day,
        detectors=tuple(per_detector),
        kinds=tuple(per_kind),
        scenarios=tuple(per_scenario),
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} s"


def format_report(report: Report) -> str:
    lines = [
        "per detector:",
        f"  {'detector':<20} {'alerts':>6} {'TP':>5} {'FP':>5} {'precision':>9} {'recall':>7}",
    ]
    for d in report.detectors:
        lines.append(
            f"  {d.detector:<20} {d.alerts:>6} {d.true_positives:>5} {d.false_positives:>5} "
            f"{_pct(d.precision):>9} {_pct(d.recall):>7}"
        )
    lines += [
        "per scenario kind:",
        f"  {'kind':<20} {'found':>7} {'recall':>7} {'median time to detect':>22}",
    ]
    for k in report.kinds:
        lines.append(
            f"  {k.kind:<20} {k.detected:>3}/{k.scenarios:<3} {_pct(k.recall):>7} "
            f"{_secs(k.median_time_to_detect_s):>22}"
        )
    lines += ["per scenario:"]
    for s in report.scenarios:
        found = ", ".join(s.detectors) if s.detected else "missed"
        lines.append(f"  {s.scenario_id:<24} {_secs(s.time_to_detect_s):>8}  {found}")
    per_day = (
        "-" if report.false_positives_per_day is None else f"{report.false_positives_per_day:.1f}"
    )
    lines.append(
        f"overall: {report.alerts} alerts, {report.true_positives} true, {report.false_positives} false, "
        f"precision {_pct(report.precision)}, recall {_pct(report.recall)}, "
        f"{per_day} false alerts per day"
    )
    return "\n".join(lines)
