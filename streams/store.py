"""The alert and label store behind investigations and the triage queue.

Every message of the `alerts` topic and every analyst verdict of the `labels` topic, kept in
SQLite (a file, the embedded default) or PostgreSQL (production), opened by URL with
`open_store`. The same plain SQL runs on both: the schema is created on open, and the only
difference is the parameter placeholder (`?` is written here and becomes `%s` for psycopg, so
no statement may hold a literal `?` or `%`).

Tables (see docs/labels.md): `alert_messages` keeps every message of every alert, for its
history; `alerts` keeps the latest message per `alert_id` and the `ts` of its first; `labels`
keeps every verdict once per `label_id`. Timestamps are stored as epoch seconds (`REAL`
columns) next to the record's JSON, so time filters work the same on both backends.

Calls are synchronous and each commits before it returns (the volume is low: alerts and
verdicts, not events). A SQLite store is usable only from the thread that opened it (the
event-loop thread of the worker or the console); a PostgreSQL store runs in autocommit mode.

A record or a query parameter the database refuses as data (a NUL in PostgreSQL text, a
string that cannot be encoded, a field missing) raises `BadRecord`: writing it again cannot
help, unlike a failed connection, which raises the driver's own error.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg

from detectors.events import format_rfc3339, parse_rfc3339
from detectors.labels import audit_selected

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS alert_messages (
        alert_id TEXT NOT NULL,
        status TEXT NOT NULL,
        severity TEXT NOT NULL,
        ts DOUBLE PRECISION NOT NULL,
        emitted_at DOUBLE PRECISION NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (alert_id, status, ts, severity)
    )""",
    """CREATE TABLE IF NOT EXISTS alerts (
        alert_id TEXT PRIMARY KEY,
        detector TEXT NOT NULL,
        status TEXT NOT NULL,
        severity TEXT NOT NULL,
        entity_type TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        ts DOUBLE PRECISION NOT NULL,
        first_ts DOUBLE PRECISION NOT NULL,
        emitted_at DOUBLE PRECISION NOT NULL,
        priority DOUBLE PRECISION,
        score_ratio DOUBLE PRECISION NOT NULL,
        record TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS alerts_entity ON alerts (entity_type, entity_id, ts)",
    "CREATE INDEX IF NOT EXISTS alerts_detector ON alerts (detector, ts)",
    "CREATE INDEX IF NOT EXISTS alerts_ts ON alerts (ts)",
    """CREATE TABLE IF NOT EXISTS labels (
        label_id TEXT PRIMARY KEY,
        ts DOUBLE PRECISION NOT NULL,
        subject_type TEXT NOT NULL,
        subject_id TEXT NOT NULL,
        verdict TEXT NOT NULL,
        labeler TEXT NOT NULL,
        policy TEXT,
        note TEXT,
        record TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS labels_subject ON labels (subject_type, subject_id)",
    "CREATE INDEX IF NOT EXISTS labels_labeler ON labels (labeler, ts)",
    "CREATE INDEX IF NOT EXISTS labels_ts ON labels (ts)",
)

# The latest message of an alert replaces the stored one unless it is older (a replay, or a
# message delivered out of order); first_ts is kept by a second statement.
UPSERT_ALERT = """
    INSERT INTO alerts (alert_id, detector, status, severity, entity_type, entity_id, ts,
                        first_ts, emitted_at, priority, score_ratio, record)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (alert_id) DO UPDATE SET
        detector = excluded.detector, status = excluded.status, severity = excluded.severity,
        entity_type = excluded.entity_type, entity_id = excluded.entity_id, ts = excluded.ts,
        emitted_at = excluded.emitted_at, priority = excluded.priority,
        score_ratio = excluded.score_ratio, record = excluded.record
    WHERE excluded.ts > alerts.ts
        OR (excluded.ts = alerts.ts AND excluded.emitted_at >= alerts.emitted_at)
"""

# What the queue reads of an alert: the first two make the item, the rest order it.
QUEUE_COLUMNS = "a.record, a.first_ts, a.priority, a.score_ratio, a.ts, a.alert_id"

# An alert labelled by exactly one labeller, with that labeller: a candidate for the audit.
LABELLED_ONCE = """
    SELECT subject_id, MIN(labeler) AS labeler FROM labels WHERE subject_type = 'alert'
    GROUP BY subject_id HAVING COUNT(DISTINCT labeler) = 1
"""


class BadRecord(ValueError):
    """A record or parameter the database refuses as data; retrying it cannot help."""


# What the drivers raise for bad data, as opposed to a store that is down or locked.
_BAD_DATA = (
    psycopg.DataError,
    sqlite3.DataError,
    UnicodeError,
    orjson.JSONEncodeError,
    KeyError,
    TypeError,
    ValueError,
)


@contextmanager
def _as_bad_record() -> Iterator[None]:
    try:
        yield
    except BadRecord:
        raise
    except _BAD_DATA as exc:
        raise BadRecord(f"{type(exc).__name__}: {exc}") from exc


def open_store(url: str) -> Store:
    """The store at `url`: `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`,
    `sqlite://:memory:`, or `postgresql://user:pass@host:port/db` (also `postgres://`).

    >>> store = open_store("sqlite://:memory:")
    >>> store.alerts()
    []
    >>> store.close()
    >>> open_store("mysql://db")
    Traceback (most recent call last):
    ...
    ValueError: alert store URL must start with sqlite:// or postgresql://, not 'mysql://db'
    """
    if url.startswith(("postgresql://", "postgres://")):
        return Store(psycopg.connect(url, autocommit=True))
    if url in ("sqlite://:memory:", "sqlite:///:memory:"):
        return Store(sqlite3.connect(":memory:", isolation_level=None))
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        return Store(sqlite3.connect(path, isolation_level=None))
    if url.startswith("sqlite:"):
        raise ValueError(
            f"SQLite store URL must be sqlite:///path.db or sqlite://:memory:, not {url!r}"
        )
    raise ValueError(f"alert store URL must start with sqlite:// or postgresql://, not {url!r}")


def score_ratio(record: dict[str, Any]) -> float:
    """How far past its threshold an alert's score is: the queue's second sort key.

    >>> score_ratio({"score": 12.0, "threshold": 6.0}), score_ratio({"score": 3.0, "threshold": 0})
    (2.0, 3.0)
    """
    score, threshold = float(record["score"]), float(record["threshold"])
    return score / threshold if threshold > 0 else score


class Store:
    """Alerts and labels in one SQL database; see the module docstring and docs/labels.md."""

    def __init__(self, connection: sqlite3.Connection | psycopg.Connection[Any]) -> None:
        self._connection = connection
        with self._transaction():
            for statement in SCHEMA:
                self._execute(statement)

    def close(self) -> None:
        self._connection.close()

    def add_alert(self, record: dict[str, Any]) -> None:
        """Keep one message of the `alerts` topic (plus an optional `priority`); idempotent."""
        with _as_bad_record():
            self._add_alert(record)

    def _add_alert(self, record: dict[str, Any]) -> None:
        ts = parse_rfc3339(record["ts"])
        emitted_at = parse_rfc3339(record["emitted_at"])
        body = orjson.dumps(record).decode()
        priority = record.get("priority")
        with self._transaction():
            self._execute(
                "INSERT INTO alert_messages (alert_id, status, severity, ts, emitted_at, record)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (record["alert_id"], record["status"], record["severity"], ts, emitted_at, body),
            )
            self._execute(
                UPSERT_ALERT,
                (
                    record["alert_id"],
                    record["detector"],
                    record["status"],
                    record["severity"],
                    record["entity"]["type"],
                    record["entity"]["id"],
                    ts,
                    ts,
                    emitted_at,
                    None if priority is None else float(priority),
                    score_ratio(record),
                    body,
                ),
            )
            self._execute(
                "UPDATE alerts SET first_ts = ? WHERE alert_id = ? AND first_ts > ?",
                (ts, record["alert_id"], ts),
            )

    def add_label(self, label: dict[str, Any]) -> bool:
        """Keep one message of the `labels` topic; False if its `label_id` was already kept."""
        with _as_bad_record(), self._transaction():
            inserted = self._execute(
                "INSERT INTO labels (label_id, ts, subject_type, subject_id, verdict, labeler,"
                " policy, note, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    label["label_id"],
                    parse_rfc3339(label["ts"]),
                    label["subject_type"],
                    label["subject_id"],
                    label["verdict"],
                    label["labeler"],
                    label.get("policy"),
                    label.get("note"),
                    orjson.dumps(label).decode(),
                ),
            )
        return inserted > 0

    def remove_label(self, label_id: str) -> None:
        """Forget a label kept by `add_label` (the console's, when it could not be published)."""
        with _as_bad_record(), self._transaction():
            self._execute("DELETE FROM labels WHERE label_id = ?", (label_id,))

    def alert(self, alert_id: str) -> dict[str, Any] | None:
        """The latest message of an alert, with `first_ts`; None if it was never seen."""
        rows = self._query("SELECT record, first_ts FROM alerts WHERE alert_id = ?", (alert_id,))
        return _alert(rows[0]) if rows else None

    def alert_messages(self, alert_id: str) -> list[dict[str, Any]]:
        """Every message of an alert, oldest first."""
        rows = self._query(
            "SELECT record FROM alert_messages WHERE alert_id = ? ORDER BY ts, emitted_at",
            (alert_id,),
        )
        return [orjson.loads(record) for (record,) in rows]

    def alerts(
        self,
        *,
        entity_type: str | None = None,
        entity_id: str | None = None,
        detector: str | None = None,
        severity: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """The latest message of each alert, newest `ts` first; `since`/`until` (epoch seconds,
        `until` excluded) apply to that `ts`."""
        where, params = _filters(
            "a",
            entity_type=entity_type,
            entity_id=entity_id,
            detector=detector,
            severity=severity,
            since=since,
            until=until,
        )
        rows = self._query(
            f"SELECT a.record, a.first_ts FROM alerts a WHERE {where}"
            " ORDER BY a.ts DESC, a.alert_id LIMIT ?",
            (*params, limit),
        )
        return [_alert(row) for row in rows]

    def labels(
        self,
        *,
        subject_type: str | None = None,
        subject_id: str | None = None,
        labeler: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Verdicts as they were given, newest first; `since`/`until` as in `alerts`."""
        where, params = _filters(
            "l",
            subject_type=subject_type,
            subject_id=subject_id,
            labeler=labeler,
            since=since,
            until=until,
        )
        rows = self._query(
            f"SELECT l.record FROM labels l WHERE {where} ORDER BY l.ts DESC, l.label_id LIMIT ?",
            (*params, limit),
        )
        return [orjson.loads(record) for (record,) in rows]

    def queue(
        self,
        *,
        labeler: str | None = None,
        detector: str | None = None,
        severity: str | None = None,
        since: float | None = None,
        until: float | None = None,
        audit_rate: float = 0.0,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """The triage queue for `labeler`: every alert no one has labelled, and the audit share
        (`detectors.labels.audit_selected`) of those labelled by one labeller other than
        `labeler`, each with `"audit"`; by priority (none last), score over threshold, then ts,
        all descending."""
        where, params = _filters(
            "a", detector=detector, severity=severity, since=since, until=until
        )
        unlabelled = self._query(
            f"SELECT {QUEUE_COLUMNS} FROM alerts a WHERE {where} AND NOT EXISTS"
            " (SELECT 1 FROM labels l WHERE l.subject_type = 'alert' AND l.subject_id = a.alert_id)"
            " ORDER BY a.priority IS NULL, a.priority DESC, a.score_ratio DESC, a.ts DESC,"
            " a.alert_id LIMIT ?",
            (*params, limit),
        )
        items = [(row, False) for row in unlabelled]
        if audit_rate > 0:
            other = ""
            if labeler is not None:
                other, params = " AND labelled.labeler <> ?", [*params, labeler]
            labelled_once = self._query(
                f"SELECT {QUEUE_COLUMNS} FROM alerts a JOIN ({LABELLED_ONCE}) labelled"
                f" ON labelled.subject_id = a.alert_id WHERE {where}{other}",
                params,
            )
            items += [(row, True) for row in labelled_once if audit_selected(row[5], audit_rate)]

        def order(item: tuple[Sequence[Any], bool]) -> tuple[bool, float, float, float, str]:
            _, _, priority, ratio, ts, alert_id = item[0]
            return (priority is None, -(priority or 0.0), -ratio, -ts, alert_id)

        items.sort(key=order)
        return [{**_alert(row), "audit": audit} for row, audit in items[:limit]]

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        if isinstance(self._connection, psycopg.Connection):
            return self._connection.execute(sql.replace("?", "%s"), params).rowcount
        return self._connection.execute(sql, params).rowcount

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        with _as_bad_record():
            if isinstance(self._connection, psycopg.Connection):
                return self._connection.execute(sql.replace("?", "%s"), params).fetchall()
            return self._connection.execute(sql, params).fetchall()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """The statements of one call commit together or not at all."""
        if isinstance(self._connection, psycopg.Connection):
            with self._connection.transaction():
                yield
            return
        self._connection.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")


def _alert(row: Sequence[Any]) -> dict[str, Any]:
    """An alert record from its stored JSON, with the RFC 3339 `first_ts` of its first message."""
    record: dict[str, Any] = orjson.loads(row[0])
    record["first_ts"] = format_rfc3339(row[1])
    return record


def _filters(table: str, **values: Any) -> tuple[str, list[Any]]:
    """A WHERE condition of the given equalities and time bounds (`since`, `until` on `ts`),
    skipping those that are None; built in Python so no parameter's type is left to guess."""
    conditions, params = ["1 = 1"], []
    for column, value in values.items():
        if value is None:
            continue
        if column == "since":
            conditions.append(f"{table}.ts >= ?")
        elif column == "until":
            conditions.append(f"{table}.ts < ?")
        else:
            conditions.append(f"{table}.{column} = ?")
        params.append(value)
    return " AND ".join(conditions), params
