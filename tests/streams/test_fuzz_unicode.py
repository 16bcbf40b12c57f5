"""Arbitrary Unicode written by attackers, through parsing, the worker's store writes and the
console API, on SQLite and on the real PostgreSQL the tests start: control characters, NUL,
unpaired surrogates escaped in JSON (`"\\ud800"`), bidi controls, ids of 256 characters and
more. No 5xx, no write stuck in the worker's backlog, and a reason wherever input is refused."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from detectors.events import REASONS, ContentEvent, InvalidEvent, format_rfc3339, parse_event
from streams.app import create_app as create_worker
from streams.broker import EmbeddedBroker
from streams.console import create_app
from streams.console.app import PRODUCER
from streams.metrics import Metrics
from streams.settings import Settings
from streams.store import open_store

TOKEN = "fuzz-token-of-the-console"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HOSTILE = "\x00\x01\x1b\x7f\x85\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2069\ud800\udfff\ufeff"

# Every code point, unpaired surrogates included (JSON carries them as \ud800 escapes), with
# the hostile ones often; lengths around the 256-character limit of ids.
characters = st.one_of(st.characters(exclude_categories=()), st.sampled_from(HOSTILE))
texts = st.one_of(
    st.text(characters, min_size=1, max_size=20),
    st.text(characters, min_size=250, max_size=260),
    st.text(st.sampled_from("ab"), min_size=256, max_size=256).map(lambda s: s[:-1] + "\x00"),
)


def content_json(actor_id: str, text: str) -> bytes:
    """A content event as a producer might write it: json.dumps escapes every non-ASCII
    character, unpaired surrogates as \\udXXX."""
    event = {
        "event_id": actor_id,
        "ts": format_rfc3339(time.time()),
        "actor_id": actor_id,
        "kind": "post",
        "text": text,
        "links": [text],
        "attrs": {text: text},
    }
    return json.dumps(event, ensure_ascii=True).encode()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


async def test_arbitrary_unicode_never_breaks_the_store_or_the_console(
    broker: EmbeddedBroker, store_url: str
) -> None:
    loop = asyncio.get_running_loop()
    worker = create_worker(
        Settings(broker="kafka://127.0.0.1:1", app_id="fuzz", alert_store=store_url),
        Metrics(CollectorRegistry()),
    )
    store = open_store(store_url)
    settings_ = Settings(
        broker=broker.url, labels_topic=f"{uuid.uuid4().hex[:8]}-labels", input_partitions=1
    )
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings_, store, TOKEN)))
    await client.start_server()
    client.server.app[PRODUCER].send_and_wait = AsyncMock()  # type: ignore[method-assign]

    def q(value: str) -> str:
        """Percent-encoded as an attacker can send it: an unpaired surrogate as its 3 bytes."""
        return quote(value.encode("utf-8", "surrogatepass"), safe="")

    async def example(actor_id: str, text: str) -> None:
        # Parsing: a typed event or a reason, and an accepted id holds no control character.
        try:
            event = parse_event("content-events", content_json(actor_id, text))
        except InvalidEvent as error:
            assert error.reason in REASONS and error.detail
        else:
            assert isinstance(event, ContentEvent)
            assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in event.actor_id)
        # The worker's store writes of raw attacker strings, as if they had got past
        # validation (unpaired surrogates cannot): stored or set aside, never left waiting.
        worker._store("alert", worker_record(actor_id, text))
        label = {
            "label_id": actor_id,
            "ts": format_rfc3339(time.time()),
            "subject_type": "actor",
            "subject_id": actor_id,
            "verdict": "abusive",
            "labeler": text,
            "note": text,
        }
        worker._store("label", label)
        assert not worker.store_backlog
        # The console API: never a 5xx; a refused label gives its reason.
        for path in (
            f"/api/queue?detector={q(actor_id)}&labeler={q(text)}&limit={q(text)}",
            f"/api/alerts/{q(actor_id)}",
            f"/api/entities/actor/{q(actor_id)}",
        ):
            response = await client.get(path, headers=AUTH)
            assert response.status in (200, 400, 404), (path, await response.text())
        body = json.dumps(
            {
                "subject_type": "actor",
                "subject_id": actor_id,
                "verdict": "benign",
                "labeler": text,
                "note": text,
            },
            ensure_ascii=True,
        )
        response = await client.post("/api/labels", headers=AUTH, data=body)
        assert response.status in (201, 400), await response.text()
        if response.status == 400:
            answer = await response.json()
            assert answer["error"]
            assert answer.get("reason", "invalid_value") in REASONS

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(actor_id=texts, text=texts)
    def check(actor_id: str, text: str) -> None:
        asyncio.run_coroutine_threadsafe(example(actor_id, text), loop).result(timeout=60)

    try:
        await asyncio.to_thread(check)
    finally:
        await client.close()
        store.close()
        if worker.store is not None:
            worker.store.close()


def worker_record(entity_id: str, text: str) -> dict[str, Any]:
    now = time.time()
    return {
        "schema_version": 1,
        "alert_id": entity_id,
        "detector": "actor_anomaly",
        "status": "firing",
        "severity": "warning",
        "entity": {"type": "actor", "id": entity_id},
        "ts": format_rfc3339(now),
        "window": {"start": format_rfc3339(now - 60), "end": format_rfc3339(now)},
        "score": 9.0,
        "threshold": 6.0,
        "summary": text,
        "evidence": {"text": text},
        "emitted_at": format_rfc3339(now),
    }
