"""The worker against a real Kafka-protocol broker: events in, alerts and dead letters out."""

from __future__ import annotations

import asyncio
import base64
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client.parser import text_string_to_metric_families

from detectors.alerts import Alert
from detectors.events import Label, ReportEvent, format_rfc3339, parse_event
from detectors.labels import LabelGate
from simulator import Labeler, LabelerConfig
from streams.evaluate import evaluate
from streams.kafka import ensure_input_topics, produce, replay
from streams.store import open_store
from tests.conftest import assert_valid

pytestmark = pytest.mark.integration


async def read_topic(bootstrap: str, topic: str, until: Any, timeout_s: float) -> list[bytes]:
    """Read `topic` from the start until `until(values)` holds or the time is up."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while not until(values) and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                values.extend(m.value for m in messages if m.value is not None)
    finally:
        await consumer.stop()
    assert_valid(topic, values)  # what the worker publishes is what its schema says
    return values


def comparable(record: dict[str, Any]) -> bytes:
    """An alert without the one field a replay may change."""
    return orjson.dumps(
        {k: v for k, v in record.items() if k != "emitted_at"}, option=orjson.OPT_SORT_KEYS
    )


def settled_alerts(bootstrap: str, topic: str, expected: int) -> Counter[bytes]:
    """The alerts topic once it holds `expected` messages, read again from the start a few
    seconds longer than needed, so a late repeat shows too; each alert with its count."""
    asyncio.run(read_topic(bootstrap, topic, lambda v: len(v) >= expected, 120))
    got = asyncio.run(read_topic(bootstrap, topic, lambda v: len(v) > expected, 5))
    return Counter(comparable(orjson.loads(v)) for v in got)


def sample_metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


# The simulated hours are few and the population small: actor alerts may start after 100
# ordinary actors per stage-2 partition rather than the default 500.
ACTORS_WARM = 100


def test_stream_alerts_equal_evaluate(broker: Any, start_worker: Any, simulated: Path) -> None:
    worker = start_worker(actor_warmup=ACTORS_WARM)
    settings = worker.settings
    expected = evaluate(simulated, settings).alerts
    assert expected, "the simulated attacks should raise alerts"
    truth = [
        orjson.loads(line)
        for line in Path(f"{simulated}.truth.jsonl").read_bytes().split(b"\n")
        if line
    ]
    attackers = {a for t in truth if not t.get("decoy") for a in t["actors"]}
    actor_alerts = [a for a in expected if a["detector"] == "actor_anomaly"]
    assert actor_alerts, "the simulated bot ring and account takeover should raise actor alerts"
    assert {a["entity"]["id"] for a in actor_alerts} <= attackers
    # The copy-paste and link campaigns and the brigade ring: groups of attackers only.
    groups = [a for a in expected if a["detector"] in ("content_campaign", "report_brigade")]
    assert {a["detector"] for a in groups} == {"content_campaign", "report_brigade"}
    for alert in groups:
        members = alert["evidence"].get("members") or alert["evidence"]["reporters"]
        assert set(members) <= attackers, alert["summary"]
    want = Counter(comparable(a) for a in expected)

    asyncio.run(replay(simulated, settings))
    got = settled_alerts(broker.bootstrap, settings.alerts_topic, len(expected))
    assert got - want == Counter(), f"published twice or not expected\n{worker.log()}"
    assert want - got == Counter(), f"missing\n{worker.log()}"

    # The probes say it is live and ready, and the metrics tell the same story.
    probe = worker.metrics_url.removesuffix("/metrics")
    for path in ("/healthz", "/readyz"):
        assert urllib.request.urlopen(probe + path, timeout=5).status == 200
    text = worker.metrics_text()
    consumed = sample_metric(text, "abusemon_events_consumed_total")
    processed = sample_metric(text, "abusemon_events_processed_total")
    dead = sample_metric(text, "abusemon_events_dead_lettered_total")
    lines = sum(1 for _ in simulated.open())
    assert consumed == lines and processed + dead == consumed
    firing = sum(1 for a in expected if a["status"] == "firing")
    assert sample_metric(text, "abusemon_alerts_total", status="firing") == firing
    assert sample_metric(text, "abusemon_signal_expected_rate", signal="content") > 0
    assert sample_metric(text, "abusemon_detector_score_count", detector="volume_spike") > 0
    assert sample_metric(text, "abusemon_windows_closed_total", group="content") > 0
    assert sample_metric(text, "abusemon_actors_tracked") > 0
    assert sample_metric(text, "abusemon_actor_score_count") > 0
    # The coordination gauges are set by the 5-second timer: its next tick, on a busy machine.
    deadline = time.monotonic() + 15
    while sample_metric(text, "abusemon_coordination_keys") == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
        text = worker.metrics_text()
    assert sample_metric(text, "abusemon_coordination_keys") > 0
    assert sample_metric(text, "abusemon_coordination_rows") > 0
    assert sample_metric(text, "abusemon_alerts_total", detector="content_campaign") > 0
    assert sample_metric(text, "abusemon_alerts_total", detector="actor_anomaly") == len(
        actor_alerts
    )


MALFORMED = [
    (b"not json", "invalid_json"),
    (b"\xff\xfe\xfa", "invalid_json"),
    (b"[1, 2]", "not_an_object"),
    (b'{"event_id": "x", "actor_id": "a", "kind": "post"}', "missing_field"),
    (
        b'{"event_id": 5, "ts": "2026-11-24T00:00:00Z", "actor_id": "a", "kind": "post"}',
        "wrong_type",
    ),
    (b'{"event_id": "x", "ts": "yesterday", "actor_id": "a", "kind": "post"}', "invalid_value"),
    (
        b'{"event_id": "x", "ts": "2026-11-24T00:00:00Z", "actor_id": "'
        + b"a" * 300
        + b'", "kind": "post"}',
        "invalid_value",
    ),
    (
        b'{"event_id": "x", "ts": "2026-11-24T00:00:00Z", "actor_id": "a", "kind": "post", "text": "'
        + b"x" * (1024 * 1024)
        + b'"}',
        "too_large",
    ),
]


def test_malformed_messages_go_to_the_dead_letter_topic(broker: Any, start_worker: Any) -> None:
    worker = start_worker()
    settings = worker.settings
    good = {
        "event_id": "ok-1",
        "ts": "2026-11-24T00:00:00Z",
        "actor_id": "a1",
        "kind": "post",
    }

    async def send() -> None:
        from aiokafka import AIOKafkaProducer

        await ensure_input_topics(settings)
        producer = AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap, max_request_size=4 * 1024 * 1024
        )
        await producer.start()
        try:
            for raw, _ in MALFORMED:
                await producer.send_and_wait(settings.content_topic, raw, key=b"k")
        finally:
            await producer.stop()
        await produce(settings, [("content-events", good)])

    asyncio.run(send())
    dead = asyncio.run(
        read_topic(
            broker.bootstrap,
            f"{settings.content_topic}.dlq",
            lambda v: len(v) >= len(MALFORMED),
            60,
        )
    )
    records = [orjson.loads(v) for v in dead]
    assert [r["reason"] for r in records] == [reason for _, reason in MALFORMED]
    for record, (raw, _) in zip(records, MALFORMED, strict=True):
        assert base64.b64decode(record["value_base64"]) == raw
        assert record["topic"] == settings.content_topic
        assert record["detail"]
    offsets = sorted(r["offset"] for r in records)
    assert len(set(offsets)) == len(MALFORMED)

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = worker.metrics_text()
        consumed = sample_metric(
            text, "abusemon_events_consumed_total", topic=settings.content_topic
        )
        if consumed == len(MALFORMED) + 1:
            break
        time.sleep(0.5)
    processed = sample_metric(text, "abusemon_events_processed_total", topic=settings.content_topic)
    dead_count = sample_metric(
        text, "abusemon_events_dead_lettered_total", topic=settings.content_topic
    )
    assert (consumed, processed, dead_count) == (len(MALFORMED) + 1, 1, len(MALFORMED))
    for _, reason in MALFORMED:
        assert (
            sample_metric(
                text,
                "abusemon_events_dead_lettered_total",
                topic=settings.content_topic,
                reason=reason,
            )
            >= 1
        )


def assigned(worker: Any, topic: str) -> float:
    return sample_metric(worker.metrics_text(), "abusemon_assigned_partitions", topic=topic)


def test_two_workers_raise_the_same_alerts_as_one(
    broker: Any, start_worker: Any, simulated: Path
) -> None:
    first = start_worker(actor_warmup=ACTORS_WARM)
    second = start_worker(like=first)
    settings = first.settings
    topics = (settings.content_topic, settings.report_topic, settings.signal_topic)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the group has settled with both members
        shares = [[assigned(w, t) for t in topics] for w in (first, second)]
        totals = [a + b for a, b in zip(*shares, strict=True)]
        if all(x > 0 for share in shares for x in share) and totals == [3, 3, 3]:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"the group did not settle: {shares}\n{first.log()}\n{second.log()}")

    expected = Counter(comparable(a) for a in evaluate(simulated, settings).alerts)
    asyncio.run(replay(simulated, settings))
    got = settled_alerts(broker.bootstrap, settings.alerts_topic, expected.total())
    assert got - expected == Counter(), "published twice, or not expected"
    assert expected - got == Counter(), "missing"
    consumed = sum(
        sample_metric(w.metrics_text(), "abusemon_events_consumed_total") for w in (first, second)
    )
    assert consumed == sum(1 for _ in simulated.open())


def test_simulated_analysts_labels_drive_precision_and_the_store(
    broker: Any, start_worker: Any, simulated: Path, tmp_path: Path
) -> None:
    """The simulator's analysts label the worker's alerts from the ground truth; the worker
    reads their verdicts from the labels topic: precision per detector and agreement as
    metrics, and alerts and labels in the store, as the same gate offline computes them."""
    store_url = f"sqlite:///{tmp_path}/alerts.db"
    worker = start_worker(actor_warmup=ACTORS_WARM, alert_store=store_url)
    settings = worker.settings
    expected = evaluate(simulated, settings).alerts
    truth = [
        orjson.loads(line) for line in Path(f"{simulated}.truth.jsonl").read_bytes().splitlines()
    ]
    labels = Labeler(truth, LabelerConfig(noise=0.1, audit_rate=0.3)).labels(expected)
    gate = LabelGate(settings.labelling())
    for record in expected:
        gate.admit(Alert.from_record(record))
    for label in labels:
        parsed = parse_event("labels", orjson.dumps(label))
        assert isinstance(parsed, Label)
        gate.label(parsed)
    precision = gate.precision()
    assert len(precision) >= 3 and any(ratio < 1 for ratio, _ in precision.values())
    assert gate.agreement(), "the audit should give pairs of verdicts"

    asyncio.run(replay(simulated, settings))
    asyncio.run(
        read_topic(broker.bootstrap, settings.alerts_topic, lambda v: len(v) >= len(expected), 120)
    )
    asyncio.run(produce(settings, [("labels", label) for label in labels]))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = worker.metrics_text()
        if sample_metric(text, "abusemon_labels_total") == len(labels):
            break
        time.sleep(0.5)
    assert sample_metric(text, "abusemon_labels_total") == len(labels), worker.log()
    for detector, (ratio, n) in precision.items():
        got = sample_metric(text, "abusemon_label_precision_ratio", detector=detector)
        assert got == pytest.approx(ratio), detector
        assert sample_metric(text, "abusemon_label_verdicts_in_window", detector=detector) == n
    for policy, kappa in gate.agreement().items():
        assert sample_metric(text, "abusemon_label_agreement_kappa", policy=policy) == (
            pytest.approx(kappa)
        )
    assert sample_metric(text, "abusemon_alert_priority_count") == sum(
        1 for a in expected if a["status"] == "firing"
    )
    store = open_store(store_url)
    try:
        assert {a["alert_id"] for a in store.alerts(limit=10_000)} == {
            a["alert_id"] for a in expected
        }
        assert {l["label_id"] for l in store.labels(limit=10_000)} == {  # noqa: E741
            label["label_id"] for label in labels
        }
    finally:
        store.close()


def test_a_synchronised_campaign_through_the_worker(
    broker: Any, start_worker: Any, tmp_path: Path
) -> None:
    """Accounts keeping one schedule for hours, spread over the input partitions by author:
    the worker raises the synchronised campaign `evaluate` raises, and only it."""
    from tests.detectors.test_synchrony import traffic

    events, ring = traffic(ring=12, in_step=True)
    path = tmp_path / "synchronised.jsonl"
    # A report a minute: the worker waits for both topics' watermarks.
    reports = [
        ReportEvent(
            event_id=f"r{i}",
            ts=format_rfc3339(events[0].ts + 60 * i + 30),
            reporter_id=f"u{i % 97}",
            target_actor_id=f"u{i % 89 + 100}",
            reason="spam",
        )
        for i in range(int(events[-1].ts - events[0].ts) // 60)
    ]
    with path.open("wb") as out:
        for event in sorted([*events, *reports], key=lambda e: e.ts):
            topic = "report-events" if isinstance(event, ReportEvent) else "content-events"
            value = event.model_dump(mode="json", exclude_none=True)
            value["ts"] = format_rfc3339(event.ts)  # as the contract writes times
            out.write(orjson.dumps({"topic": topic, "value": value}) + b"\n")
    worker = start_worker(actor_warmup=ACTORS_WARM)
    settings = worker.settings
    expected = evaluate(path, settings).alerts
    campaigns = [a for a in expected if a["evidence"].get("campaign_kind") == "synchronised"]
    assert campaigns and {m for a in campaigns for m in a["evidence"]["members"]} <= ring
    want = Counter(comparable(a) for a in expected)

    asyncio.run(replay(path, settings))
    got = settled_alerts(broker.bootstrap, settings.alerts_topic, len(expected))
    assert got - want == Counter(), f"published twice or not expected\n{worker.log()}"
    assert want - got == Counter(), f"missing\n{worker.log()}"
