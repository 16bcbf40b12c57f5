"""`evaluate` end to end on a small hand-made file, and the golden alert shape."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson

from detectors.alerts import alert_id
from detectors.evaluation import format_report, score
from detectors.events import format_rfc3339
from simulator import SimConfig, write_files
from streams.evaluate import _sources, evaluate
from streams.files import partition_for
from streams.settings import Settings

GOLDEN = Path(__file__).parent.parent / "golden" / "volume_spike_alert.json"
T0 = 1795478400.0  # 2026-11-24T00:00:00Z


def write_events(path: Path) -> None:
    rng = random.Random(1)
    lines: list[dict[str, Any]] = []
    n = 0
    for minute in range(60):
        for i in range(rng.randint(40, 60)):
            n += 1
            ts = format_rfc3339(T0 + minute * 60 + i)
            lines.append(
                {
                    "topic": "content-events",
                    "value": {
                        "event_id": f"c{n}",
                        "ts": ts,
                        "actor_id": f"u{rng.randint(1, 300)}",
                        "kind": "post",
                        "surface": "feed",
                    },
                }
            )
            if rng.random() < 0.1:
                lines.append(
                    {
                        "topic": "report-events",
                        "value": {
                            "event_id": f"r{n}",
                            "ts": ts,
                            "reporter_id": f"u{rng.randint(1, 300)}",
                            "target_actor_id": f"u{rng.randint(1, 300)}",
                            "reason": "spam",
                        },
                    }
                )
        if minute == 40:
            for i in range(40):
                lines.append(
                    {
                        "topic": "report-events",
                        "value": {
                            "event_id": f"b{i}",
                            "ts": format_rfc3339(T0 + minute * 60 + 50),
                            "reporter_id": f"b{i}",
                            "target_actor_id": "victim",
                            "reason": "harassment",
                        },
                    }
                )
    lines.append({"topic": "content-events", "value": {"event_id": "bad"}})
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))


def test_evaluate_finds_the_brigade_and_accounts_for_everything(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    write_events(events)
    result = evaluate(events, Settings(input_partitions=3))
    firing = {(a["detector"], a["entity"]["id"]) for a in result.alerts if a["status"] == "firing"}
    assert firing == {
        ("volume_spike", "reports"),
        ("volume_spike", "reports.reason:harassment"),
        ("volume_spike", "reports.target:victim"),
        ("report_brigade", "victim"),  # 40 reporters in a second, for one reason
    }
    lines = sum(1 for _ in events.open())
    out = result.outcomes
    consumed = sum(v for k, v in out.items() if k.endswith(":consumed"))
    dead = sum(v for k, v in out.items() if ":dead_lettered:" in k)
    handled = sum(v for k, v in out.items() if k.split(":")[-1] in ("counted", "duplicate", "late"))
    assert consumed == lines and dead == 1 and handled + dead == consumed


def test_the_brigade_alert_is_derived_by_hand_and_has_the_golden_shape(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    write_events(events)
    alerts = evaluate(events, Settings(input_partitions=3)).alerts
    record = next(a for a in alerts if a["entity"]["id"] == "reports.target:victim")
    assert record.pop("emitted_at").endswith("Z")
    start = T0 + 40 * 60  # the 40 reports against victim, all in minute 40
    # A new per-account series forecasts 0; the noise of a count is the Poisson variance of
    # the forecast plus one event, so 1; the score is (40 - 0) / 1, and the band reaches the
    # threshold (6) noise units above the forecast, at least the minimum count (5).
    assert (
        record
        == {
            "alert_id": alert_id("volume_spike", "signal", "reports.target:victim", start),
            "detector": "volume_spike",
            "entity": {"id": "reports.target:victim", "type": "signal"},
            "evidence": {
                "band": {"lower": 0.0, "upper": 6.0},
                "baseline_windows": 0,
                "expected": 0.0,
                "observed": 40,
                "peak_score": 40.0,
                "ratio": None,  # no ratio to an expectation under one event
                "sample_event_ids": sorted(f"b{i}" for i in range(40))[:5],
                "signal": "reports.target:victim",
                "signal_family": "reports.target",
                "window_seconds": 60.0,
                "windows_flagged": 1,
            },
            "priority": 1 - 0.5 / (40 / 6),  # the score prior: no label has been given
            "schema_version": 1,
            "score": 40.0,
            "severity": "critical",  # at least twice the threshold
            "status": "firing",
            "summary": (
                "Reports against account victim: 40 events in the 60 s to 00:41 UTC, "
                "expected about 0 (normal up to 6)."
            ),
            "threshold": 6.0,
            "ts": format_rfc3339(start + 60),
            "window": {"end": format_rfc3339(start + 60), "start": format_rfc3339(start)},
        }
    )
    golden = orjson.loads(GOLDEN.read_bytes())
    assert set(record) == set(golden)
    assert set(record["evidence"]) == set(golden["evidence"])


def test_the_same_input_gives_the_same_alerts(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    write_events(events)
    first = evaluate(events, Settings(input_partitions=3)).alerts
    second = evaluate(events, Settings(input_partitions=5)).alerts
    strip = [{k: v for k, v in a.items() if k != "emitted_at"} for a in first]
    assert strip == [{k: v for k, v in a.items() if k != "emitted_at"} for a in second]


def test_actor_scenarios_are_flagged_with_explanations_and_decoys_are_not(
    tmp_path: Path,
) -> None:
    path = tmp_path / "actors.jsonl"
    config = SimConfig(
        duration_s=4 * 3600.0,
        rate=1.0,
        actors=2000,
        scenarios=(),
        actor_scenarios=(
            "bot_ring",
            "compromised_account",
            "fake_engagement",
            "mass_messaging",
            "popular_account",
            "new_account",
        ),
        group_scenarios=(),
        first_attack_s=1800.0,
        attack_every_s=1800.0,
    )
    write_files(path, config)
    truth = [orjson.loads(line) for line in Path(f"{path}.truth.jsonl").read_bytes().splitlines()]
    result = evaluate(path, Settings(actor_warmup=100))
    report = score(result.alerts, truth, result.duration_s)
    assert all(s.detected for s in report.scenarios), format_report(report)
    assert all(d.alerts == 0 for d in report.decoys), format_report(report)
    assert report.false_positives == 0, format_report(report)
    for alert in result.alerts:
        if alert["detector"] == "actor_anomaly" and alert["status"] == "firing":
            assert alert["summary"].startswith(f"Account {alert['entity']['id']}, ")
            assert alert["evidence"]["indicators"] and alert["evidence"]["top_features"]


def test_the_sources_are_the_partitions_with_a_valid_event(tmp_path: Path) -> None:
    """A partition counts as a source once a valid event is in it, and the file is read only
    until every partition of both input topics is one."""
    settings = Settings(input_partitions=2)
    by_partition: dict[int, str] = {}
    for i in range(100):
        by_partition.setdefault(partition_for(f"u{i}".encode(), 2), f"u{i}")
    first, second = by_partition[0], by_partition[1]

    def content(event_id: str, actor: str) -> bytes:
        value = {"event_id": event_id, "ts": format_rfc3339(T0), "actor_id": actor}
        return orjson.dumps({"topic": "content-events", "value": {**value, "kind": "post"}})

    def report(event_id: str, reporter: str) -> bytes:
        value = {"event_id": event_id, "ts": format_rfc3339(T0), "reporter_id": reporter}
        value |= {"target_actor_id": "victim", "reason": "spam"}
        return orjson.dumps({"topic": "report-events", "value": value})

    path = tmp_path / "events.jsonl"
    invalid = orjson.dumps({"topic": "content-events", "value": {"actor_id": second}})
    path.write_bytes(b"\n".join([content("c1", first), invalid, report("r1", first)]) + b"\n")
    assert _sources(path, settings, T0) == {"content-events": {0}, "report-events": {0}}
    every = [content("c1", first), content("c2", second), report("r1", second)]
    every += [report("r2", first), b"not json"]  # the last line is past every source: not read
    path.write_bytes(b"\n".join(every) + b"\n")
    assert _sources(path, settings, T0) == {"content-events": {0, 1}, "report-events": {0, 1}}
