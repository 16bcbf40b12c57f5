"""Detection quality against ground truth: precision, recall and time to detect.

`score` matches alerts (records of the `alerts` topic) to ground-truth scenarios (lines of a
`*.truth.jsonl` file) with the contract's rule and returns a `Report`: figures per detector,
per scenario kind, per scenario and overall. `format_report` renders it as text tables and
`Report.to_dict` as plain JSON-able data.

Matching:

- All messages with one `alert_id` are one alert (its firing, updates and resolution). Its
  window is the union of theirs (earliest start, latest end), its entity and detector those
  of its first message, its campaign members the union of every message's
  `evidence.members`, and it was raised at the earliest `ts`.
- Windows are half-open, like the detectors' tumbling windows: an alert covering [a, b)
  overlaps a scenario when a < end + 5 minutes and b > start. So a window ending exactly at
  the scenario's start does not overlap it, nor does one starting exactly 5 minutes after its
  end. A zero-length window is the instant a, which overlaps when start <= a < end + 5 min.
- The entity must be one of the scenario's `signals` (type `signal`), `actors` (`actor`),
  `targets` (`target`), or a `campaign` whose members include one of its actors. A signal of
  a per-account family (`content.target:u1`, `reports.reporters:u1`, ...) also matches a
  scenario whose `targets` hold its account.
- An alert that detects no scenario is a false positive; one that detects several is still
  one true positive.
- A truth record marked `"decoy": true` is organic behaviour that must not be alerted on: it
  is not a scenario to detect, and the alerts on it (by the same rule) are listed per decoy,
  as the false positives they are. Its optional `"allowed"` list names what it may rightly
  cause (`{"detector": ..., "severity": ...}`, severity optional, matched against the alert's
  highest): such alerts are expected, counted apart and neither true nor false positives.

Families: `score` may be given families of scenario kinds (e.g. quiet attacks at several
strengths and the decoys that resemble them). A family whose attacks are in the truth gets a
`FamilyScore`, and `format_report` a table of its own for it: its kinds' figures, and the
alerts its decoys drew. Its kinds are then left out of the table per scenario kind.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from detectors.events import format_rfc3339, parse_rfc3339
from detectors.signals import is_per_account

GRACE_S = 300.0
"""How long after a scenario's end an alert still counts as detecting it."""

_NAMED = frozenset({"signal", "actor", "target"})


@dataclass(frozen=True)
class DetectorScore:
    """One detector's alerts, and the share of all scenarios it detected (`recall`)."""

    detector: str
    alerts: int
    true_positives: int
    false_positives: int
    precision: float | None
    recall: float | None


@dataclass(frozen=True)
class ScenarioScore:
    """One ground-truth scenario: was it detected, by which detectors, and how fast."""

    scenario_id: str
    kind: str
    start: str
    detected: bool
    detectors: tuple[str, ...]
    alerts: int
    time_to_detect_s: float | None


@dataclass(frozen=True)
class DecoyScore:
    """One decoy: how many alerts it drew (each a false positive), and from which detectors;
    and how many of the alerts it may rightly cause (`expected`) it caused."""

    scenario_id: str
    kind: str
    start: str
    alerts: int
    detectors: tuple[str, ...]
    expected: int = 0


@dataclass(frozen=True)
class KindScore:
    """The scenarios of one kind: how many were detected, and the median time to detect."""

    kind: str
    scenarios: int
    detected: int
    recall: float
    median_time_to_detect_s: float | None


@dataclass(frozen=True)
class FamilyScore:
    """One family of scenario kinds: its attacks per kind (in the family's order), and its
    decoys, each with the alerts it drew."""

    family: str
    kinds: tuple[KindScore, ...]
    decoys: tuple[DecoyScore, ...]


@dataclass(frozen=True)
class Report:
    """Overall figures, then per detector, per scenario kind and per scenario (input order)."""

    alerts: int
    true_positives: int
    false_positives: int
    precision: float | None
    recall: float | None
    false_positives_per_day: float | None
    duration_s: float | None
    detectors: tuple[DetectorScore, ...]
    kinds: tuple[KindScore, ...]
    scenarios: tuple[ScenarioScore, ...]
    decoys: tuple[DecoyScore, ...] = ()
    families: tuple[FamilyScore, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts, lists, strings, numbers, booleans and None, ready for `orjson.dumps`."""
        plain = _plain(self)
        assert isinstance(plain, dict)
        return plain


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


@dataclass
class _Alert:
    alert_id: str
    detector: str
    entity_type: str
    entity_id: str
    start: float
    end: float
    raised: float
    members: set[str] = field(default_factory=set)
    severity: str = "info"


@dataclass(frozen=True)
class _Scenario:
    scenario_id: str
    kind: str
    start: float
    end: float
    actors: frozenset[str]
    targets: frozenset[str]
    signals: frozenset[str]
    decoy: bool = False
    allowed: tuple[tuple[str, str | None], ...] = ()

    def allows(self, alert: _Alert) -> bool:
        return any(
            alert.detector == detector and severity in (None, alert.severity)
            for detector, severity in self.allowed
        )


def _field(record: Mapping[str, Any], name: str, what: str) -> Any:
    try:
        return record[name]
    except (KeyError, TypeError):
        raise ValueError(f"{what}: no {name!r}") from None


def _time(value: Any, what: str) -> float:
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise ValueError(f"{what}: not an RFC 3339 time: {value!r}") from None


def _ids(record: Mapping[str, Any], name: str, what: str) -> frozenset[str]:
    value = record.get(name)
    if value is None:
        return frozenset()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what}: {name!r} is not a list of strings")
    return frozenset(value)


def _members(record: Mapping[str, Any]) -> set[str]:
    evidence = record.get("evidence")
    members = evidence.get("members") if isinstance(evidence, Mapping) else None
    if not isinstance(members, list | tuple):
        return set()
    return {m for m in members if isinstance(m, str)}


_SEVERITIES = ("info", "warning", "critical")


def _severity(record: Mapping[str, Any]) -> str:
    severity = record.get("severity")
    return severity if severity in _SEVERITIES else "info"


def _allowed(record: Mapping[str, Any], what: str) -> tuple[tuple[str, str | None], ...]:
    value = record.get("allowed", [])
    if not isinstance(value, list) or not all(
        isinstance(v, Mapping) and isinstance(v.get("detector"), str) for v in value
    ):
        raise ValueError(f"{what}: 'allowed' is not a list of {{detector, severity}} objects")
    return tuple((str(v["detector"]), v.get("severity")) for v in value)


def _merge(alerts: Iterable[Mapping[str, Any]]) -> list[_Alert]:
    merged: dict[str, _Alert] = {}
    for number, record in enumerate(alerts, start=1):
        what = f"alert message {number}"
        ident = _field(record, "alert_id", what)
        window = _field(record, "window", what)
        start = _time(_field(window, "start", what), what)
        end = _time(_field(window, "end", what), what)
        raised = _time(_field(record, "ts", what), what)
        known = merged.get(ident)
        if known is None:
            entity = _field(record, "entity", what)
            merged[ident] = _Alert(
                alert_id=ident,
                detector=_field(record, "detector", what),
                entity_type=_field(entity, "type", what),
                entity_id=_field(entity, "id", what),
                start=start,
                end=end,
                raised=raised,
                members=_members(record),
                severity=_severity(record),
            )
        else:
            known.start = min(known.start, start)
            known.end = max(known.end, end)
            known.raised = min(known.raised, raised)
            known.members |= _members(record)
            known.severity = max(known.severity, _severity(record), key=_SEVERITIES.index)
    return list(merged.values())


def _scenarios(truth: Iterable[Mapping[str, Any]]) -> list[_Scenario]:
    out = []
    for number, record in enumerate(truth, start=1):
        what = f"truth record {number}"
        out.append(
            _Scenario(
                scenario_id=str(_field(record, "scenario_id", what)),
                kind=str(_field(record, "kind", what)),
                start=_time(_field(record, "start", what), what),
                end=_time(_field(record, "end", what), what),
                actors=_ids(record, "actors", what),
                targets=_ids(record, "targets", what),
                signals=_ids(record, "signals", what),
                decoy=bool(record.get("decoy", False)),
                allowed=_allowed(record, what),
            )
        )
    return out


def _overlaps(alert: _Alert, scenario: _Scenario) -> bool:
    until = scenario.end + GRACE_S
    if alert.end <= alert.start:
        return scenario.start <= alert.start < until
    return alert.start < until and alert.end > scenario.start


def _matches(alerts: Sequence[_Alert], scenarios: Sequence[_Scenario]) -> list[list[int]]:
    """For each alert, the indices of the scenarios it detects."""
    index: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, s in enumerate(scenarios):
        for entity_type, ids in (
            ("signal", s.signals),
            ("actor", s.actors),
            ("target", s.targets),
            ("campaign", s.actors),  # keyed by member actor
        ):
            for ident in ids:
                index[entity_type, ident].append(i)
    out = []
    for alert in alerts:
        if alert.entity_type == "campaign":
            keys = [("campaign", member) for member in alert.members]
        elif alert.entity_type in _NAMED:
            keys = [(alert.entity_type, alert.entity_id)]
            if alert.entity_type == "signal" and is_per_account(alert.entity_id):
                # A per-account series is about the account it counts (as a target).
                keys.append(("target", alert.entity_id.partition(":")[2]))
        else:
            keys = []
        candidates = sorted({i for key in keys for i in index.get(key, ())})
        out.append([i for i in candidates if _overlaps(alert, scenarios[i])])
    return out


def ground_truth(
    alerts: Iterable[Mapping[str, Any]], truth: Iterable[Mapping[str, Any]]
) -> dict[str, bool]:
    """Per alert id, whether the alert detects an attack (a scenario that is not a decoy): the
    verdict a perfect analyst would give."""
    merged = _merge(alerts)
    scenarios = _scenarios(truth)
    return {
        alert.alert_id: any(not scenarios[i].decoy for i in found)
        for alert, found in zip(merged, _matches(merged, scenarios), strict=True)
    }


def _span(alerts: Sequence[_Alert], scenarios: Sequence[_Scenario]) -> float | None:
    times = [t for a in alerts for t in (a.start, a.end, a.raised)]
    times += [t for s in scenarios for t in (s.start, s.end)]
    if not times:
        return None
    return max(times) - min(times)


def score(
    alerts: Iterable[Mapping[str, Any]],
    truth: Iterable[Mapping[str, Any]],
    duration_s: float | None = None,
    families: Mapping[str, Sequence[str]] | None = None,
) -> Report:
    """Score alert messages against ground-truth records.

    `duration_s` is the span of event time the alerts were drawn from, for false positives per
    day; without it the span from the earliest to the latest alert or scenario time is used.
    `families` names families of kinds (family -> kinds, attacks and decoys); each family with
    an attack in the truth is scored apart too.
    A malformed alert message or truth record raises `ValueError` naming it.

    >>> truth = [{"scenario_id": "brigade-1", "kind": "report_brigade",
    ...           "start": "2026-11-24T10:00:00Z", "end": "2026-11-24T10:05:00Z",
    ...           "actors": ["r1", "r2"], "targets": ["u9"], "signals": ["reports.target:u9"]}]
    >>> def alert(ident, entity, start, end):
    ...     return {"alert_id": ident, "detector": "volume_spike", "ts": end,
    ...             "entity": {"type": "signal", "id": entity},
    ...             "window": {"start": start, "end": end}}
    >>> report = score(
    ...     [alert("a1", "reports.target:u9", "2026-11-24T10:01:00Z", "2026-11-24T10:02:00Z"),
    ...      alert("a2", "content", "2026-11-24T12:00:00Z", "2026-11-24T12:01:00Z")],
    ...     truth, duration_s=86400.0)
    >>> report.true_positives, report.false_positives, report.precision, report.recall
    (1, 1, 0.5, 1.0)
    >>> report.scenarios[0].detectors, report.scenarios[0].time_to_detect_s
    (('volume_spike',), 120.0)
    >>> report.false_positives_per_day
    1.0
    """
    everything = _scenarios(truth)
    scenarios = [s for s in everything if not s.decoy]
    decoys = [s for s in everything if s.decoy]
    merged = []
    on_decoys: list[list[_Alert]] = [[] for _ in decoys]
    expected = [0 for _ in decoys]
    every = _merge(alerts)
    for alert, found in zip(every, _matches(every, decoys), strict=True):
        if found and all(decoys[i].allows(alert) for i in found):
            for i in found:
                expected[i] += 1
            continue  # rightly caused by organic behaviour: neither true nor false
        merged.append(alert)
        for i in found:
            on_decoys[i].append(alert)
    hits = _matches(merged, scenarios)

    detecting: list[list[_Alert]] = [[] for _ in scenarios]
    for alert, found in zip(merged, hits, strict=True):
        for i in found:
            detecting[i].append(alert)

    per_scenario = []
    for scenario, by in zip(scenarios, detecting, strict=True):
        # An alert whose window began before the scenario can be raised before it too.
        ttd = max(0.0, min(a.raised for a in by) - scenario.start) if by else None
        per_scenario.append(
            ScenarioScore(
                scenario_id=scenario.scenario_id,
                kind=scenario.kind,
                start=format_rfc3339(scenario.start),
                detected=bool(by),
                detectors=tuple(sorted({a.detector for a in by})),
                alerts=len(by),
                time_to_detect_s=ttd,
            )
        )

    per_detector = []
    for detector in sorted({a.detector for a in merged}):
        mine = [found for a, found in zip(merged, hits, strict=True) if a.detector == detector]
        tp = sum(1 for found in mine if found)
        covered = {i for found in mine for i in found}
        per_detector.append(
            DetectorScore(
                detector=detector,
                alerts=len(mine),
                true_positives=tp,
                false_positives=len(mine) - tp,
                precision=tp / len(mine),
                recall=len(covered) / len(scenarios) if scenarios else None,
            )
        )

    per_kind = []
    for kind in sorted({s.kind for s in per_scenario}):
        of_kind = [s for s in per_scenario if s.kind == kind]
        times = [s.time_to_detect_s for s in of_kind if s.time_to_detect_s is not None]
        found_count = sum(1 for s in of_kind if s.detected)
        per_kind.append(
            KindScore(
                kind=kind,
                scenarios=len(of_kind),
                detected=found_count,
                recall=found_count / len(of_kind),
                median_time_to_detect_s=statistics.median(times) if times else None,
            )
        )

    decoy_scores = tuple(
        DecoyScore(
            scenario_id=d.scenario_id,
            kind=d.kind,
            start=format_rfc3339(d.start),
            alerts=len(by),
            detectors=tuple(sorted({a.detector for a in by})),
            expected=n,
        )
        for d, by, n in zip(decoys, on_decoys, expected, strict=True)
    )
    by_kind = {k.kind: k for k in per_kind}
    per_family = tuple(
        FamilyScore(
            family=family,
            kinds=tuple(by_kind[kind] for kind in kinds if kind in by_kind),
            decoys=tuple(d for d in decoy_scores if d.kind in kinds),
        )
        for family, kinds in (families or {}).items()
        if any(kind in by_kind for kind in kinds)
    )

    tp = sum(1 for found in hits if found)
    fp = len(merged) - tp
    detected = sum(1 for s in per_scenario if s.detected)
    span = duration_s if duration_s is not None else _span(merged, scenarios)
    return Report(
        alerts=len(merged),
        true_positives=tp,
        false_positives=fp,
        precision=tp / len(merged) if merged else None,
        recall=detected / len(scenarios) if scenarios else None,
        false_positives_per_day=fp * 86400.0 / span if span is not None and span > 0 else None,
        duration_s=span,
        detectors=tuple(per_detector),
        kinds=tuple(per_kind),
        scenarios=tuple(per_scenario),
        decoys=decoy_scores,
        families=per_family,
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    """Fixed-width columns; `align` has an `l` (left) or `r` (right) per column."""
    if not rows:
        return ["  (none)"]
    widths = [max(len(row[c]) for row in [header, *rows]) for c in range(len(header))]
    return [
        (
            "  "
            + "  ".join(
                cell.ljust(width) if side == "l" else cell.rjust(width)
                for cell, width, side in zip(row, widths, align, strict=True)
            )
        ).rstrip()
        for row in [header, *rows]
    ]


def _kind_table(kinds: Sequence[KindScore]) -> list[str]:
    return _table(
        ["kind", "scenarios", "detected", "recall", "median time to detect (s)"],
        [
            [
                k.kind,
                str(k.scenarios),
                str(k.detected),
                _pct(k.recall),
                _secs(k.median_time_to_detect_s),
            ]
            for k in kinds
        ],
        "lrrrr",
    )


def format_report(report: Report) -> str:
    """The report as text: per detector, per scenario kind (each family of kinds in a table
    of its own), per scenario, then overall.

    >>> truth = [{"scenario_id": "s1", "kind": "spam_wave", "start": "2026-11-24T10:00:00Z",
    ...           "end": "2026-11-24T10:10:00Z", "signals": ["content"]}]
    >>> alerts = [{"alert_id": "a1", "detector": "volume_spike", "ts": "2026-11-24T10:02:30Z",
    ...            "entity": {"type": "signal", "id": "content"},
    ...            "window": {"start": "2026-11-24T10:01:00Z", "end": "2026-11-24T10:02:00Z"}}]
    >>> print(format_report(score(alerts, truth, duration_s=43200.0)))
    Per detector
      detector      alerts  TP  FP  precision  recall
      volume_spike       1   1   0     100.0%  100.0%
    <BLANKLINE>
    Per scenario kind
      kind       scenarios  detected  recall  median time to detect (s)
      spam_wave          1         1  100.0%                      150.0
    <BLANKLINE>
    Per scenario
      scenario  kind       start                     detected  time to detect (s)  detectors
      s1        spam_wave  2026-11-24T10:00:00.000Z  yes                    150.0  volume_spike
    <BLANKLINE>
    Overall: 1 alerts, 1 true positives, 0 false positives, precision 100.0%, recall 100.0%, 0.0 false positives per day over 12.0 h
    """
    lines = ["Per detector"]
    lines += _table(
        ["detector", "alerts", "TP", "FP", "precision", "recall"],
        [
            [
                d.detector,
                str(d.alerts),
                str(d.true_positives),
                str(d.false_positives),
                _pct(d.precision),
                _pct(d.recall),
            ]
            for d in report.detectors
        ],
        "lrrrrr",
    )
    in_families = {k.kind for f in report.families for k in f.kinds}
    kinds = [k for k in report.kinds if k.kind not in in_families]
    if kinds or not report.families:
        lines += ["", "Per scenario kind"]
        lines += _kind_table(kinds)
    for family in report.families:
        lines += ["", f"Family {family.family}"]
        lines += _kind_table(family.kinds)
        decoys: dict[str, list[DecoyScore]] = defaultdict(list)
        for d in family.decoys:
            decoys[d.kind].append(d)
        if decoys:
            lines += _table(
                ["decoy", "decoys", "alerts", "detectors", "expected alerts"],
                [
                    [
                        kind,
                        str(len(ds)),
                        str(sum(d.alerts for d in ds)),
                        ", ".join(sorted({a for d in ds for a in d.detectors})) or "-",
                        str(sum(d.expected for d in ds)),
                    ]
                    for kind, ds in decoys.items()
                ],
                "lrrlr",
            )
    lines += ["", "Per scenario"]
    lines += _table(
        ["scenario", "kind", "start", "detected", "time to detect (s)", "detectors"],
        [
            [
                s.scenario_id,
                s.kind,
                s.start,
                "yes" if s.detected else "no",
                _secs(s.time_to_detect_s),
                ", ".join(s.detectors) or "-",
            ]
            for s in report.scenarios
        ],
        "llllrl",
    )
    if report.decoys:
        lines += ["", "Decoys (organic behaviour that must not alert)"]
        lines += _table(
            ["decoy", "kind", "start", "alerts", "detectors", "expected alerts"],
            [
                [
                    d.scenario_id,
                    d.kind,
                    d.start,
                    str(d.alerts),
                    ", ".join(d.detectors) or "-",
                    str(d.expected),
                ]
                for d in report.decoys
            ],
            "lllrlr",
        )
    per_day = (
        "-" if report.false_positives_per_day is None else f"{report.false_positives_per_day:.1f}"
    )
    over = "" if report.duration_s is None else f" over {report.duration_s / 3600:.1f} h"
    lines += [
        "",
        f"Overall: {report.alerts} alerts, {report.true_positives} true positives, "
        f"{report.false_positives} false positives, precision {_pct(report.precision)}, "
        f"recall {_pct(report.recall)}, {per_day} false positives per day{over}",
    ]
    return "\n".join(lines)
