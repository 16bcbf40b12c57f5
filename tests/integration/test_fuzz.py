"""Ten thousand malformed messages through the live worker: no crash, no stall, and every
message processed or dead-lettered with a reason, the counts reconciling with the parser's
verdict on each message, computed here offline."""

from __future__ import annotations

import asyncio
import json
import random
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from detectors.events import REASONS, InvalidEvent, parse_event
from streams.kafka import ensure_input_topics
from tests.integration.test_worker import read_topic, sample_metric

pytestmark = pytest.mark.integration

FUZZED = 10_000
TS = "2026-11-24T00:00:00Z"
VALID = {
    "content-events": {"event_id": "e", "ts": TS, "actor_id": "a1", "kind": "post", "text": "hi"},
    "report-events": {
        "event_id": "r", "ts": TS, "reporter_id": "r1", "target_actor_id": "a1", "reason": "spam",
    },
    "labels": {
        "label_id": "l", "ts": TS, "subject_type": "actor", "subject_id": "a1",
        "verdict": "benign", "labeler": "ana",
    },
}  # fmt: skip
ODD_VALUES: list[Any] = [
    None, True, 0, -1, 1.5, 2**70, "", "x" * 300, [], {}, [1, [2, [3]]], {"a": {"b": None}},
    "1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-13-45T99:00:00Z",
    "\u0000", "\ud7ff\ue000", "NaN", "Infinity",
]  # fmt: skip


def mutations(rng: random.Random, topic: str, n: int) -> bytes:
    """A malformed (or odd but valid) variant of a valid message."""
    base = dict(VALID[topic])
    id_field = "label_id" if topic == "labels" else "event_id"
    base[id_field] = f"{topic}-{n}"
    kind = rng.randrange(12)
    if kind == 0:  # invalid UTF-8 inside an otherwise fine message
        return orjson.dumps(base)[:-2] + b"\xff\xfe" + b'"}'
    if kind == 1:  # truncated
        raw = orjson.dumps(base)
        return raw[: rng.randrange(len(raw))]
    if kind == 2:  # deeply nested
        depth = rng.choice([50, 300, 5000])
        return b'{"attrs":' * depth + b"1" + b"}" * depth
    if kind == 3:  # a required field missing
        del base[rng.choice(sorted(base))]
    elif kind == 4:  # a field of the wrong type or an odd value
        base[rng.choice(sorted(base))] = rng.choice(ODD_VALUES)
    elif kind == 5:  # a long string
        base[rng.choice(sorted(base))] = "z" * rng.choice([257, 5000, 200_000])
    elif kind == 6:  # timestamps far in the past or the future
        base["ts"] = rng.choice(
            ["1000-01-01T00:00:00Z", "2999-01-01T00:00:00Z", "1970-01-01T00:00:00.000001Z"]
        )
    elif kind == 7:  # NaN, infinities and huge numbers where JSON has none
        number = rng.choice(["NaN", "Infinity", "-1e999", "1e999"])
        return orjson.dumps(base)[:-1] + f', "n": {number}}}'.encode()
    elif kind == 8:  # a duplicate of an earlier id
        base[id_field] = f"{topic}-{rng.randrange(max(1, n))}"
    elif kind == 9:  # not an object
        return rng.choice([b"[]", b"null", b'"text"', b"42", b"", b" "])
    elif kind == 10:  # unknown fields and extra nesting, otherwise valid
        base["extra"] = {"deep": [rng.random() for _ in range(5)]}
    else:  # random bytes
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    return json.dumps(base).encode()


def fuzz(seed: int, n: int) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    topics = sorted(VALID)
    out = []
    for i in range(n):
        topic = topics[i % len(topics)]
        out.append((topic, mutations(rng, topic, i)))
    out += [  # a few too large for the contract, not for the broker
        ("content-events", orjson.dumps({**VALID["content-events"], "text": "y" * 1_100_000}))
        for _ in range(3)
    ]
    return out


def verdict(topic: str, raw: bytes, now: float, max_future_s: float) -> str:
    """`processed`, or the dead-letter reason the parser gives."""
    try:
        parse_event(topic, raw, now, max_future_s)
    except InvalidEvent as error:
        return error.reason
    return "processed"


async def produce_raw(
    bootstrap: str, messages: list[tuple[str, bytes]], names: dict[str, str]
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, max_request_size=4 * 1024 * 1024, linger_ms=5
    )
    await producer.start()
    try:
        for number, (topic, raw) in enumerate(messages):
            await producer.send(names[topic], raw, key=str(number % 7).encode())
        await producer.flush()
    finally:
        await producer.stop()


def wait_until(check: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return check()


def test_ten_thousand_malformed_messages_are_each_accounted_for(
    broker: Any, start_worker: Any
) -> None:
    worker = start_worker()
    settings = worker.settings
    names = {
        "content-events": settings.content_topic,
        "report-events": settings.report_topic,
        "labels": settings.labels_topic,
    }
    messages = fuzz(seed=2026, n=FUZZED)
    now = time.time()
    expected: dict[str, Counter[str]] = {topic: Counter() for topic in names}
    for topic, raw in messages:
        expected[topic][verdict(topic, raw, now, settings.max_future_s)] += 1
    dead_expected = {
        t: sum(v for k, v in c.items() if k != "processed") for t, c in expected.items()
    }
    assert all(c["processed"] and dead_expected[t] > 1000 for t, c in expected.items()), expected
    assert {reason for c in expected.values() for reason in c} - {"processed"} <= set(REASONS)

    asyncio.run(ensure_input_topics(settings))
    asyncio.run(produce_raw(broker.bootstrap, messages, names))

    def consumed() -> float:
        return sample_metric(worker.metrics_text(), "abusemon_events_consumed_total")

    assert wait_until(lambda: consumed() == len(messages), 180), (consumed(), worker.log())
    assert worker.process.poll() is None, worker.log()  # no crash
    text = worker.metrics_text()
    for topic, name in names.items():
        processed = sample_metric(text, "abusemon_events_processed_total", topic=name)
        dead = sample_metric(text, "abusemon_events_dead_lettered_total", topic=name)
        assert (processed, dead) == (expected[topic]["processed"], dead_expected[topic]), topic
        for reason, count in expected[topic].items():
            if reason != "processed":
                got = sample_metric(
                    text, "abusemon_events_dead_lettered_total", topic=name, reason=reason
                )
                assert got == count, (topic, reason)
        letters = asyncio.run(
            read_topic(
                broker.bootstrap, f"{name}.dlq", lambda v, n=dead_expected[topic]: len(v) >= n, 60
            )
        )
        assert len(letters) == dead_expected[topic], topic
        assert Counter(orjson.loads(v)["reason"] for v in letters) == Counter(
            {k: v for k, v in expected[topic].items() if k != "processed"}
        )
    # No stall: still live and ready, nothing left behind on the inputs.
    probe = worker.metrics_url.removesuffix("/metrics")
    assert urllib.request.urlopen(probe + "/readyz", timeout=5).status == 200
    assert wait_until(
        lambda: sample_metric(worker.metrics_text(), "abusemon_consumer_lag_messages") == 0, 30
    )
    assert "Traceback" not in worker.log(), worker.log()
