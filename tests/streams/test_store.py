"""The alert and label store, on SQLite and on a real PostgreSQL server this session starts."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from detectors.events import format_rfc3339, parse_rfc3339
from detectors.labels import audit_selected
from streams.store import BadRecord, Store, open_store

T0 = parse_rfc3339("2026-11-24T10:00:00.000Z")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


def alert(
    alert_id: str,
    at: float = 0.0,
    *,
    status: str = "firing",
    severity: str = "warning",
    detector: str = "volume_spike",
    entity: tuple[str, str] = ("signal", "content"),
    score: float = 12.0,
    threshold: float = 6.0,
    priority: float | None = None,
    emitted_at: float | None = None,
) -> dict[str, Any]:
    """An `alerts` message `at` seconds after T0."""
    ts = T0 + at
    record: dict[str, Any] = {
        "schema_version": 1,
        "alert_id": alert_id,
        "detector": detector,
        "status": status,
        "severity": severity,
        "entity": {"type": entity[0], "id": entity[1]},
        "ts": format_rfc3339(ts),
        "window": {"start": format_rfc3339(ts - 60), "end": format_rfc3339(ts)},
        "score": score,
        "threshold": threshold,
        "summary": f"alert {alert_id}",
        "evidence": {"observed": score, "expected": threshold / 2},
        "emitted_at": format_rfc3339(ts + 1 if emitted_at is None else emitted_at),
    }
    if priority is not None:
        record["priority"] = priority
    return record


def label(
    label_id: str,
    subject_id: str,
    at: float = 0.0,
    *,
    labeler: str = "ana",
    subject_type: str = "alert",
    verdict: str = "abusive",
    **optional: str,
) -> dict[str, Any]:
    return {
        "label_id": label_id,
        "ts": format_rfc3339(T0 + at),
        "subject_type": subject_type,
        "subject_id": subject_id,
        "verdict": verdict,
        "labeler": labeler,
        **optional,
    }


def ids(records: list[dict[str, Any]], key: str = "alert_id") -> list[str]:
    return [record[key] for record in records]


def test_an_alert_keeps_every_message_and_its_latest(store: Store) -> None:
    firing = alert("a1", 0, priority=0.5)
    update = alert("a1", 60, status="update", severity="critical", score=30.0)
    resolved = alert("a1", 120, status="resolved", severity="critical")
    for record in (firing, update, resolved, update, firing):  # repeats are kept once
        store.add_alert(record)
    assert store.alert_messages("a1") == [firing, update, resolved]
    assert store.alert("a1") == {**resolved, "first_ts": firing["ts"]}
    assert store.alert("nope") is None
    assert store.alert_messages("nope") == []


def test_a_late_older_message_keeps_the_latest_and_moves_first_ts(store: Store) -> None:
    update = alert("a1", 60, status="update")
    firing = alert("a1", 0)
    store.add_alert(update)
    store.add_alert(firing)
    assert store.alert("a1") == {**update, "first_ts": firing["ts"]}
    assert store.alert_messages("a1") == [firing, update]


def test_a_replay_with_a_new_emitted_at_is_kept_once(store: Store) -> None:
    store.add_alert(alert("a1", 0))
    replayed = alert("a1", 0, emitted_at=T0 + 3600)
    store.add_alert(replayed)
    assert len(store.alert_messages("a1")) == 1
    assert store.alert("a1") == {**replayed, "first_ts": replayed["ts"]}


def test_an_older_emission_of_the_same_message_never_replaces_the_stored_one(
    store: Store,
) -> None:
    later = alert("a1", 0, emitted_at=T0 + 3600, priority=0.9)
    store.add_alert(later)
    store.add_alert(alert("a1", 0, emitted_at=T0 + 10, priority=0.2))  # delivered late
    assert store.alert("a1") == {**later, "first_ts": later["ts"]}
    assert store.alert_messages("a1") == [later]
    assert ids(store.queue(limit=10)) == ["a1"] and store.queue(limit=10)[0]["priority"] == 0.9


def test_a_call_that_fails_midway_leaves_nothing_and_the_store_usable(store: Store) -> None:
    broken = {**alert("a1", 0), "detector": None}  # its message is kept, then the alert fails
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.NotNullViolation)):
        store.add_alert(broken)
    assert store.alert_messages("a1") == [] and store.alert("a1") is None
    good = alert("a1", 0)
    store.add_alert(good)
    assert store.alert_messages("a1") == [good]


def test_alerts_filters(store: Store) -> None:
    store.add_alert(alert("v1", 0, entity=("signal", "content")))
    store.add_alert(alert("v1", 30, status="resolved", entity=("signal", "content")))
    store.add_alert(alert("v2", 60, severity="critical", entity=("signal", "reports")))
    store.add_alert(alert("x1", 120, detector="actor_anomaly", entity=("actor", "u1")))
    store.add_alert(alert("x2", 180, detector="actor_anomaly", entity=("actor", "u2")))
    assert ids(store.alerts()) == ["x2", "x1", "v2", "v1"]
    assert store.alerts()[-1]["status"] == "resolved"
    assert ids(store.alerts(entity_type="actor")) == ["x2", "x1"]
    assert ids(store.alerts(entity_type="actor", entity_id="u1")) == ["x1"]
    assert ids(store.alerts(detector="volume_spike")) == ["v2", "v1"]
    assert ids(store.alerts(severity="critical")) == ["v2"]
    assert ids(store.alerts(since=T0 + 30)) == ["x2", "x1", "v2", "v1"]  # v1's latest is at 30
    assert ids(store.alerts(since=T0 + 60, until=T0 + 180)) == ["x1", "v2"]
    assert ids(store.alerts(limit=2)) == ["x2", "x1"]
    assert store.alerts(detector="content_campaign") == []


def test_labels_are_kept_once_and_filtered(store: Store) -> None:
    first = label("l1", "a1", 0, policy="spam", note="copy-paste ring")
    assert store.add_label(first) is True
    assert store.add_label({**first, "verdict": "benign"}) is False  # the same label_id
    store.add_label(label("l2", "a1", 60, labeler="bo", verdict="benign"))
    store.add_label(label("l3", "u1", 120, subject_type="actor"))
    assert store.labels() == [
        label("l3", "u1", 120, subject_type="actor"),
        label("l2", "a1", 60, labeler="bo", verdict="benign"),
        first,
    ]
    assert ids(store.labels(subject_type="alert"), "label_id") == ["l2", "l1"]
    assert ids(store.labels(subject_type="alert", subject_id="a1"), "label_id") == ["l2", "l1"]
    assert ids(store.labels(labeler="ana"), "label_id") == ["l3", "l1"]
    assert ids(store.labels(since=T0 + 60), "label_id") == ["l3", "l2"]
    assert ids(store.labels(until=T0 + 60), "label_id") == ["l1"]
    assert ids(store.labels(limit=1), "label_id") == ["l3"]


def test_the_queue_orders_by_priority_then_score_then_ts(store: Store) -> None:
    store.add_alert(alert("no-priority-high-score", 0, score=60.0))
    store.add_alert(alert("low", 0, priority=0.2))
    store.add_alert(alert("high", 0, priority=0.9))
    store.add_alert(alert("mid-score-20", 0, priority=0.5, score=20.0, threshold=10.0))
    store.add_alert(alert("mid-score-30", 0, priority=0.5, score=30.0, threshold=10.0))
    store.add_alert(alert("mid-score-30-later", 60, priority=0.5, score=3.0, threshold=1.0))
    queue = store.queue()
    assert ids(queue) == [
        "high",
        "mid-score-30-later",
        "mid-score-30",
        "mid-score-20",
        "low",
        "no-priority-high-score",
    ]
    assert not any(item["audit"] for item in queue)
    assert queue[0] == {
        **alert("high", 0, priority=0.9),
        "first_ts": queue[0]["ts"],
        "audit": False,
    }
    assert ids(store.queue(limit=2)) == ["high", "mid-score-30-later"]


def test_the_queue_leaves_out_labelled_alerts_and_applies_filters(store: Store) -> None:
    store.add_alert(alert("a1", 0))
    store.add_alert(alert("a2", 60, severity="critical"))
    store.add_alert(alert("a3", 120, detector="actor_anomaly", entity=("actor", "a1")))
    store.add_label(label("l1", "a1", 200))
    store.add_label(label("l2", "a2", 200, subject_type="actor"))  # not a label of the alert
    store.add_label(label("l3", "a1", 200, subject_type="actor"))  # an actor named like an alert
    assert ids(store.queue()) == ["a3", "a2"]
    assert ids(store.queue(detector="volume_spike")) == ["a2"]
    assert ids(store.queue(severity="critical")) == ["a2"]
    assert ids(store.queue(since=T0 + 100)) == ["a3"]
    assert ids(store.queue(until=T0 + 100)) == ["a2"]


def test_audit_items_go_to_another_labeller_only(store: Store) -> None:
    rate = 0.5
    chosen = [f"a{i}" for i in range(40) if audit_selected(f"a{i}", rate)][:3]
    spared = [f"a{i}" for i in range(40) if not audit_selected(f"a{i}", rate)][:3]
    assert len(chosen) == len(spared) == 3
    for n, alert_id in enumerate(chosen + spared):
        store.add_alert(alert(alert_id, n))
        store.add_label(label(f"l-{alert_id}", alert_id, 100, labeler="ana"))
    twice = chosen[0]  # labelled by a second labeller: the audit is done
    store.add_label(label(f"l2-{twice}", twice, 200, labeler="bo"))
    store.add_alert(alert("fresh", 500))

    for_bo = store.queue(labeler="bo", audit_rate=rate)
    assert ids(for_bo) == ["fresh", chosen[2], chosen[1]]
    assert [item["audit"] for item in for_bo] == [False, True, True]
    assert ids(store.queue(audit_rate=rate)) == ["fresh", chosen[2], chosen[1]]
    assert ids(store.queue(labeler="ana", audit_rate=rate)) == ["fresh"]
    assert ids(store.queue(labeler="bo", audit_rate=0.0)) == ["fresh"]
    assert ids(store.queue(labeler="bo", audit_rate=1.0)) == [
        "fresh",
        *reversed(spared),
        chosen[2],
        chosen[1],
    ]
    assert ids(store.queue(labeler="bo", audit_rate=rate, since=T0 + 2)) == ["fresh", chosen[2]]


@pytest.mark.parametrize("bad", ["a\x00b", "a\ud800b"])
def test_bad_data_is_refused_as_such_and_the_store_goes_on(
    store: Store, store_url: str, bad: str
) -> None:
    # PostgreSQL refuses a NUL in text; neither takes an unpaired surrogate. SQLite keeps a NUL.
    refused = bad != "a\x00b" or store_url.startswith("postgresql")
    writes = [
        lambda: store.add_alert(alert(bad)),
        lambda: store.add_alert(alert("ok", entity=("actor", bad))),
        lambda: store.add_label(label("l1", bad)),
        lambda: store.add_label(label("l2", "a", note=bad)),
    ]
    for write in writes:
        if refused:
            with pytest.raises(BadRecord):
                write()
        else:
            write()
    for read in (
        lambda: store.alert(bad),
        lambda: store.queue(detector=bad),
        lambda: store.alerts(entity_type="actor", entity_id=bad),
        lambda: store.labels(labeler=bad),
    ):
        if refused:
            with pytest.raises(BadRecord):
                read()
        else:
            read()
    store.add_alert(alert("good"))  # nothing was left half-written or in a failed transaction
    store.add_label(label("l3", "good"))
    assert "good" in ids(store.alerts())
    assert ids(store.labels(subject_id="good"), "label_id") == ["l3"]
    store.remove_label("l3")
    assert store.labels(subject_id="good") == []


def test_a_store_reopens_with_its_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = open_store(url)
    store.add_alert(alert("a1"))
    store.close()
    store = open_store(url)
    assert ids(store.alerts()) == ["a1"]
    store.close()


def test_sqlite_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for url in ("sqlite:///relative.db", f"sqlite:///{tmp_path}/absolute.db", "sqlite://:memory:"):
        open_store(url).close()
    assert (tmp_path / "relative.db").exists()
    assert (tmp_path / "absolute.db").exists()


@pytest.mark.parametrize(
    "url", ["", "mysql://host/db", "sqlite://", "sqlite:///", "sqlite://host/x.db", "memory://"]
)
def test_a_bad_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="URL") as info:
        open_store(url)
    assert "\n" not in str(info.value)


def test_the_documented_queries_run(store_url: str) -> None:
    """Every SQL example of docs/labels.md runs on the backend it is written for."""
    docs = (Path(__file__).parents[2] / "docs" / "labels.md").read_text()
    section = docs.split("## The alert and label store", 1)[1].split("\n## ", 1)[0]
    queries = re.findall(r"```sql\n(.*?)```", section, re.S)
    assert len(queries) >= 4
    store = open_store(store_url)
    alert_id = "5ed5df4529f3b65cbdce853c96fd9798"
    store.add_alert(alert(alert_id, 0, entity=("actor", "u123")))
    store.add_alert(alert(alert_id, 60, status="update", score=20.0, entity=("actor", "u123")))
    store.add_label(label("l1", alert_id, 100))
    store.close()
    backend = "SQLite" if store_url.startswith("sqlite") else "PostgreSQL"
    results = []
    for query in queries:
        first_line = query.splitlines()[0]
        if first_line.startswith("-- ") and first_line != f"-- {backend}":
            continue
        if backend == "SQLite":
            with sqlite3.connect(store_url.removeprefix("sqlite:///")) as connection:
                results.append(connection.execute(query).fetchall())
        else:
            with psycopg.connect(store_url) as connection:
                results.append(connection.execute(query).fetchall())
    history, on_account, precision, waiting = results
    assert [(row[0], float(row[3]), float(row[4])) for row in history] == [
        ("firing", 12.0, 3.0),
        ("update", 20.0, 3.0),
    ]
    assert [row[:2] for row in on_account] == [(alert_id, "volume_spike")]
    assert [(row[0], row[1], float(row[2])) for row in precision] == [("volume_spike", 1, 1.0)]
    assert waiting == []
