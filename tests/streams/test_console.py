"""The triage console's API over a real SQLite store and a real broker, and its command."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock
from urllib.parse import quote

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from pydantic import ValidationError

from detectors.events import format_rfc3339, parse_rfc3339
from streams.broker import EmbeddedBroker
from streams.console import create_app
from streams.console.app import (
    LOCKOUT,
    LOCKOUT_S,
    MAX_FAILURES,
    PRODUCER,
    SETTINGS,
)
from streams.settings import Settings
from streams.store import BadRecord, Store, open_store
from tests.console_samples import (
    actor_anomaly,
    content_campaign,
    report_brigade,
    sample_alerts,
    volume_spike,
)

TOKEN = "correct-horse-battery-staple"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = time.time()

VOLUME = volume_spike(NOW)[0]["alert_id"]
ACTOR = actor_anomaly(NOW)["alert_id"]
CAMPAIGN = content_campaign(NOW)["alert_id"]
BRIGADE = report_brigade(NOW)["alert_id"]

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'alerts.db'}")
    for record in sample_alerts(NOW):
        opened.add_alert(record)
    yield opened
    opened.close()


@pytest.fixture
async def make_client(broker: EmbeddedBroker, store: Store) -> AsyncIterator[MakeClient]:
    clients: list[Client] = []

    async def make(**overrides: object) -> Client:
        settings = Settings(
            broker=broker.url,
            labels_topic=f"{uuid.uuid4().hex[:8]}-labels",
            input_partitions=1,
            **overrides,  # type: ignore[arg-type]
        )
        client: Client = TestClient(TestServer(create_app(settings, store, TOKEN)))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def get_json(client: Client, path: str, status: int = 200) -> Any:
    response = await client.get(path, headers=AUTH)
    assert response.status == status, await response.text()
    return await response.json()


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["alert_id"] for item in items]


async def read_topic(bootstrap: str, topic: str, count: int, timeout_s: float = 20) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    messages: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(messages) < count and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                messages.extend(batch)
    finally:
        await consumer.stop()
    return messages


async def test_the_api_needs_the_token(make_client: MakeClient) -> None:
    client = await make_client()
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ):
        for path in ("/api/queue", f"/api/alerts/{ACTOR}", "/api/entities/actor/u0021055"):
            client.server.app[LOCKOUT].failures.clear()  # the lockout has its own test
            response = await client.get(path, headers=headers)
            assert response.status == 401, (path, headers)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        response = await client.post("/api/labels", headers=headers, json={})
        assert response.status == 401
    # The page, its files and the probe load without it; the page asks for the token.
    for path in ("/", "/static/console.js", "/static/console.css", "/healthz"):
        response = await client.get(path)
        assert response.status == 200, path
    page = await client.get("/")
    assert "text/html" in page.headers["Content-Type"]
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert (await client.get("/static/nope.js")).status == 404


async def test_the_queue_by_priority_with_filters(make_client: MakeClient) -> None:
    client = await make_client(audit_rate=0.0)
    queue = (await get_json(client, "/api/queue"))["items"]
    assert ids(queue) == [CAMPAIGN, ACTOR, VOLUME, BRIGADE]
    assert [item["priority"] for item in queue] == [0.94, 0.81, 0.62, 0.47]
    assert not any(item["audit"] for item in queue)
    # The latest message of the volume spike, with the ts of its first.
    assert queue[2]["severity"] == "critical" and queue[2]["status"] == "update"
    assert parse_rfc3339(queue[2]["first_ts"]) < parse_rfc3339(queue[2]["ts"])

    by_detector = await get_json(client, "/api/queue?detector=volume_spike")
    assert ids(by_detector["items"]) == [VOLUME]
    warnings = await get_json(client, "/api/queue?severity=warning")
    assert ids(warnings["items"]) == [BRIGADE]
    since = format_rfc3339(NOW - 20 * 60)  # the brigade's latest message is 25 min old
    recent = await get_json(client, f"/api/queue?since={since.replace('+', '%2B')}")
    assert ids(recent["items"]) == [CAMPAIGN, ACTOR, VOLUME]
    assert ids((await get_json(client, "/api/queue?limit=2"))["items"]) == [CAMPAIGN, ACTOR]

    bad = await get_json(client, "/api/queue?severity=loud", status=400)
    assert bad["error"].startswith("severity: expected one of info, warning, critical")
    bad = await get_json(client, "/api/queue?since=yesterday", status=400)
    assert "since" in bad["error"]
    bad = await get_json(client, "/api/queue?limit=0", status=400)
    assert "limit" in bad["error"]


async def test_a_parameter_of_up_to_256_characters_is_taken_and_a_longer_one_refused(
    make_client: MakeClient,
) -> None:
    client = await make_client(audit_rate=0.0)
    longest = "d" * 256
    assert (await get_json(client, f"/api/queue?detector={longest}"))["items"] == []
    for name in ("detector", "labeler"):
        bad = await get_json(client, f"/api/queue?{name}={longest}d", status=400)
        assert bad["error"] == f"{name}: longer than 256 characters"


async def test_audit_items_go_to_another_labeller(make_client: MakeClient, store: Store) -> None:
    client = await make_client(audit_rate=1.0)
    response = await client.post(
        "/api/labels",
        headers=AUTH,
        json={"subject_type": "alert", "subject_id": ACTOR, "verdict": "abusive", "labeler": "ana"},
    )
    assert response.status == 201
    for_bo = (await get_json(client, "/api/queue?labeler=bo"))["items"]
    assert ids(for_bo) == [CAMPAIGN, ACTOR, VOLUME, BRIGADE]
    assert [item["audit"] for item in for_bo] == [False, True, False, False]
    for_ana = (await get_json(client, "/api/queue?labeler=ana"))["items"]
    assert ids(for_ana) == [CAMPAIGN, VOLUME, BRIGADE]


async def test_alert_detail(make_client: MakeClient) -> None:
    client = await make_client()
    detail = await get_json(client, f"/api/alerts/{VOLUME}")
    assert detail["alert"]["alert_id"] == VOLUME
    assert detail["alert"]["evidence"]["observed"] == 97  # the latest message
    assert [m["status"] for m in detail["messages"]] == ["firing", "update", "update", "update"]
    assert [m["evidence"]["observed"] for m in detail["messages"]] == [41, 118, 143, 97]
    assert detail["labels"] == []
    missing = await get_json(client, "/api/alerts/no-such-alert", status=404)
    assert missing["error"] == "no alert no-such-alert"


async def test_entity_history(make_client: MakeClient, store: Store) -> None:
    # The same account alerted two days earlier, was labelled, and its account labelled too.
    earlier = actor_anomaly(NOW - 2 * 86400)
    store.add_alert(earlier)
    older_label = {
        "label_id": "l-1",
        "ts": format_rfc3339(NOW - 2 * 86400 + 600),
        "subject_type": "alert",
        "subject_id": earlier["alert_id"],
        "verdict": "abusive",
        "labeler": "ana",
        "policy": "scam",
    }
    actor_label = {
        "label_id": "l-2",
        "ts": format_rfc3339(NOW - 86400),
        "subject_type": "actor",
        "subject_id": "u0021055",
        "verdict": "abusive",
        "labeler": "bo",
    }
    other_label = {**actor_label, "label_id": "l-3", "subject_id": "u0000001"}
    for label in (older_label, actor_label, other_label):
        store.add_label(label)

    client = await make_client()
    history = await get_json(client, "/api/entities/actor/u0021055")
    assert history["entity"] == {"type": "actor", "id": "u0021055"}
    assert ids(history["alerts"]) == [ACTOR, earlier["alert_id"]]
    assert [label["label_id"] for label in history["labels"]] == ["l-2", "l-1"]

    signal = await get_json(client, "/api/entities/signal/content.surface:groups")
    assert ids(signal["alerts"]) == [VOLUME] and signal["labels"] == []
    target = await get_json(client, "/api/entities/target/u0004588")
    assert ids(target["alerts"]) == [BRIGADE]
    await get_json(client, "/api/entities/planet/u0021055", status=404)


async def test_a_bad_label_is_refused_with_the_reason(
    make_client: MakeClient, store: Store
) -> None:
    client = await make_client()
    good = {"subject_type": "alert", "subject_id": ACTOR, "verdict": "abusive", "labeler": "ana"}

    async def refused(body: Any, status: int = 400) -> str:
        response = await client.post("/api/labels", headers=AUTH, data=orjson.dumps(body))
        assert response.status == status, await response.text()
        error: str = (await response.json())["error"]
        return error

    error = await refused({**good, "verdict": "spam"})
    assert "verdict" in error and "'abusive', 'benign' or 'unsure'" in error
    assert (await refused({k: v for k, v in good.items() if k != "labeler"})).startswith(
        "missing_field: labeler"
    )
    assert (await refused({**good, "labeler": ""})).startswith("invalid_value: labeler")
    assert (await refused({**good, "subject_type": "planet"})).startswith("wrong_type")
    assert (await refused([good])).startswith("not_an_object")
    response = await client.post("/api/labels", headers=AUTH, data=b"{not json")
    assert response.status == 400
    assert (await refused({**good, "subject_id": "no-such-alert"}, status=404)).startswith(
        "no alert"
    )
    assert store.labels() == []


async def test_a_label_is_stored_and_published(
    make_client: MakeClient, store: Store, broker: EmbeddedBroker
) -> None:
    client = await make_client(audit_rate=0.0)
    before = time.time()
    response = await client.post(
        "/api/labels",
        headers=AUTH,
        json={
            "subject_type": "alert",
            "subject_id": CAMPAIGN,
            "verdict": "abusive",
            "labeler": " ana ",
            "policy": "spam",
            "note": "",
            "label_id": "chosen-by-client",  # ignored: the console gives the id and time
        },
    )
    assert response.status == 201, await response.text()
    label = await response.json()
    assert set(label) == {
        "label_id",
        "ts",
        "subject_type",
        "subject_id",
        "verdict",
        "labeler",
        "policy",
    }
    assert len(label["label_id"]) == 32 and label["label_id"] != "chosen-by-client"
    assert before - 1 <= parse_rfc3339(label["ts"]) <= time.time() + 1
    assert (label["subject_id"], label["verdict"], label["labeler"], label["policy"]) == (
        CAMPAIGN,
        "abusive",
        "ana",
        "spam",
    )

    assert store.labels(subject_type="alert", subject_id=CAMPAIGN) == [label]
    detail = await get_json(client, f"/api/alerts/{CAMPAIGN}")
    assert detail["labels"] == [label]
    assert CAMPAIGN not in ids((await get_json(client, "/api/queue"))["items"])

    settings = client.server.app[SETTINGS]
    messages = await read_topic(broker.bootstrap, settings.labels_topic, count=1)
    assert len(messages) == 1
    assert messages[0].key == CAMPAIGN.encode()
    assert orjson.loads(messages[0].value) == label


async def test_a_label_that_cannot_be_published_is_answered_503_and_not_stored(
    make_client: MakeClient, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_client()
    refused = AsyncMock(side_effect=KafkaTimeoutError())
    monkeypatch.setattr(client.server.app[PRODUCER], "send_and_wait", refused)
    body = {"subject_type": "alert", "subject_id": ACTOR, "verdict": "abusive", "labeler": "ana"}
    response = await client.post("/api/labels", headers=AUTH, json=body)
    assert response.status == 503
    assert (await response.json())["error"].startswith("could not publish the label")
    refused.assert_awaited_once()
    assert store.labels() == []
    assert (await get_json(client, f"/api/alerts/{ACTOR}"))["labels"] == []


def test_the_console_refuses_an_empty_token(store: Store) -> None:
    with pytest.raises(ValueError, match="the console token must be at least 16 characters"):
        create_app(Settings(), store, "")


def test_console_needs_a_store(capsys: pytest.CaptureFixture[str], monkeypatch: Any) -> None:
    from streams.cli import main

    monkeypatch.delenv("ABUSEMON_ALERT_STORE", raising=False)
    assert main(["console"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ABUSEMON_ALERT_STORE is empty" in err


@pytest.mark.parametrize("configured", [False, True])
def test_console_command_prints_its_url(
    broker: EmbeddedBroker, tmp_path: Path, configured: bool
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABUSEMON_")}
    env |= {
        "ABUSEMON_BROKER": broker.url,
        "ABUSEMON_ALERT_STORE": f"sqlite:///{tmp_path / 'alerts.db'}",
        "ABUSEMON_LABELS_TOPIC": f"{uuid.uuid4().hex[:8]}-labels",
        "ABUSEMON_CONSOLE_TOKEN": TOKEN if configured else "",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "console", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("triage console at http://127.0.0.1:"), line
        url = line.split(" at ", 1)[1].split(" ", 1)[0]
        if configured:
            assert TOKEN not in line and "token=" not in line
            token = TOKEN
        else:
            assert "?" not in url and "/#token=" in url  # a fragment: never sent, never logged
            token = url.split("#token=", 1)[1]
            assert len(token) >= 32
        base = url.split("#", 1)[0]
        assert urllib.request.urlopen(base + "healthz", timeout=5).read() == b"ok\n"
        request = urllib.request.Request(
            base + "api/queue", headers={"Authorization": f"Bearer {token}"}
        )
        assert orjson.loads(urllib.request.urlopen(request, timeout=5).read()) == {"items": []}
    finally:
        process.terminate()
        out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    if configured:
        assert TOKEN not in out + err


async def test_a_unicode_digit_limit_is_a_bad_parameter(make_client: MakeClient) -> None:
    client = await make_client()
    for limit in ("\u00b2", "\u0663", "1\u00b9", "99999999999999999999"):
        bad = await get_json(client, f"/api/queue?limit={quote(limit)}", status=400)
        assert bad["error"] == "limit: expected a whole number from 1 to 1000"
        await get_json(client, f"/api/entities/actor/u1?limit={quote(limit)}", status=400)


async def test_control_characters_in_ids_are_refused_before_anything_is_published(
    broker: EmbeddedBroker, postgres_url: str
) -> None:
    """Against PostgreSQL, which cannot hold a NUL: every such request is a 400 with the
    reason, no label with one reaches the topic, and the console goes on serving."""
    store = open_store(postgres_url)
    for record in sample_alerts(NOW):
        store.add_alert(record)
    settings = Settings(
        broker=broker.url, labels_topic=f"{uuid.uuid4().hex[:8]}-labels", input_partitions=1
    )
    client: Client = TestClient(TestServer(create_app(settings, store, TOKEN)))
    await client.start_server()
    try:
        response = await client.post(
            "/api/labels",
            headers=AUTH,
            json={
                "subject_type": "actor",
                "subject_id": "u\u0000evil",
                "verdict": "abusive",
                "labeler": "ana",
            },
        )
        assert response.status == 400, await response.text()
        refused = await response.json()
        assert refused["reason"] == "invalid_value"
        assert "subject_id: must not contain control characters (U+0000" in refused["error"]
        for path in (
            "/api/queue?detector=%00",
            "/api/queue?labeler=a%00b",
            "/api/alerts/%00",
            "/api/entities/actor/a%00b",
        ):
            bad = await get_json(client, path, status=400)
            assert "must not contain control characters (U+0000)" in bad["error"], path
        # A note loses them; the label is stored and published.
        response = await client.post(
            "/api/labels",
            headers=AUTH,
            json={
                "subject_type": "actor",
                "subject_id": "u1",
                "verdict": "benign",
                "labeler": "ana",
                "note": "seen\u0000 it",
            },
        )
        assert response.status == 201, await response.text()
        label = await response.json()
        assert label["note"] == "seen it"
        assert store.labels() == [label]
        [message] = await read_topic(broker.bootstrap, settings.labels_topic, count=1)
        assert orjson.loads(message.value) == label  # the first and only one
    finally:
        await client.close()
        store.close()


async def test_a_label_is_stored_and_published_or_neither(
    make_client: MakeClient, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_client()
    producer = client.server.app[PRODUCER]
    sent: list[bytes] = []

    async def send_and_wait(topic: str, value: bytes, key: bytes) -> None:
        sent.append(value)

    monkeypatch.setattr(producer, "send_and_wait", send_and_wait)
    body = {"subject_type": "alert", "subject_id": ACTOR, "verdict": "abusive", "labeler": "ana"}

    def refuse(label: dict[str, Any]) -> bool:
        raise BadRecord("DataError: PostgreSQL text fields cannot contain NUL (0x00) bytes")

    with monkeypatch.context() as patch:  # the store refuses it: nothing is published
        patch.setattr(store, "add_label", refuse)
        response = await client.post("/api/labels", headers=AUTH, json=body)
        assert response.status == 400, await response.text()
        assert "the store refused the label" in (await response.json())["error"]
    assert sent == []

    async def unreachable(topic: str, value: bytes, key: bytes) -> None:
        raise KafkaConnectionError("no broker")

    monkeypatch.setattr(producer, "send_and_wait", unreachable)
    response = await client.post("/api/labels", headers=AUTH, json=body)
    assert response.status == 503  # not published: not stored either
    assert store.labels() == []


def test_the_console_token_is_stripped_and_long_enough() -> None:
    assert Settings(console_token=f"{TOKEN}\n").console_token.get_secret_value() == TOKEN  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="at least 16 characters"):
        Settings(console_token="a")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 16 characters"):
        create_app(Settings(), open_store("sqlite://:memory:"), "short")


async def test_repeated_wrong_tokens_lock_the_address_out(make_client: MakeClient) -> None:
    client = await make_client()
    lockout = client.server.app[LOCKOUT]
    now = [1000.0]
    lockout.clock = lambda: now[0]
    wrong = {"Authorization": "Bearer wrong-token-of-some-length"}
    for _ in range(MAX_FAILURES):
        assert (await client.get("/api/queue", headers=wrong)).status == 401
    # Locked out: even the right token is not checked until the time is up.
    response = await client.get("/api/queue", headers=AUTH)
    assert response.status == 429 and response.headers["Retry-After"] == "1"
    now[0] += LOCKOUT_S
    assert (await client.get("/api/queue", headers=wrong)).status == 401
    response = await client.get("/api/queue", headers=AUTH)
    assert response.status == 429 and response.headers["Retry-After"] == "2"  # doubled
    now[0] += 2 * LOCKOUT_S
    assert (await client.get("/api/queue", headers=AUTH)).status == 200
    assert lockout.failures == {}  # a right token clears the count
    assert (await client.get("/api/queue", headers=wrong)).status == 401
