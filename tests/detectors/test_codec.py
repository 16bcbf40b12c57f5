"""Checkpoints' encoding: every unit of state comes back and behaves as before; nothing but
the registered types comes out of it, whatever the bytes."""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import pickle
import random
import zlib
from collections import Counter, OrderedDict, defaultdict, deque
from typing import Any

import msgspec
import orjson
import pytest
from msgspec.structs import replace

from detectors import codec
from detectors.actor_model import ActorModel, ordinary
from detectors.actors import ActorConfig, ActorProcessor
from detectors.alerts import Alert
from detectors.coordination import (
    Candidate,
    CoordinationConfig,
    CoordinationIndex,
    Coordinator,
    Row,
    held_rows,
)
from detectors.events import Event, parse_event
from detectors.pipeline import DetectionConfig
from detectors.spike import HORIZON, SpikeDetector
from detectors.stages import OfflinePipeline
from detectors.windows import GroupClock, Watermark
from simulator import Labeler, LabelerConfig, SimConfig, generate, truth
from streams.files import TOPIC_KEYS, partition_for

PARTITIONS = 3
SPLIT_S = 6000.0  # the checkpoint: the baselines learnt, in the middle of the spam wave

CONFIG = SimConfig(
    seed=11,
    duration_s=3.5 * 3600.0,
    rate=2.0,
    actors=1500,
    scenarios=("spam_wave",),
    actor_scenarios=("bot_ring",),
    group_scenarios=("copy_paste_campaign",),
    first_attack_s=5400.0,
)


def round_trip(state: Any) -> Any:
    return codec.decode(codec.encode(state))


@pytest.fixture(scope="module")
def stream() -> list[tuple[str, int, Event]]:
    out = []
    for topic, value in generate(CONFIG):
        if topic == "labels":
            continue
        key = value[TOPIC_KEYS[topic]].encode()
        out.append((topic, partition_for(key, PARTITIONS), parse_event(topic, orjson.dumps(value))))
    return out


def pipeline_of(stream: list[tuple[str, int, Event]], model: str) -> OfflinePipeline:
    sources: dict[str, set[int]] = {}
    for topic, partition, _ in stream:
        sources.setdefault(topic, set()).add(partition)
    config = DetectionConfig()
    return OfflinePipeline(
        config,
        sources,
        ActorConfig(window_s=config.window_s, warmup=100, model=model),
        PARTITIONS,
        lambda key, n: partition_for(key.encode(), n),
    )


def feed(pipeline: OfflinePipeline, events: list[tuple[str, int, Event]]) -> list[bytes]:
    """The alert messages of these events, fed in batches of 400 per partition."""
    out = []
    for i in range(0, len(events), 400):
        batches: dict[tuple[str, int], list[Event]] = {}
        for topic, partition, event in events[i : i + 400]:
            batches.setdefault((topic, partition), []).append(event)
        for (topic, partition), batch in batches.items():
            for alert in pipeline.feed(topic, partition, batch):
                out.append(orjson.dumps(alert.to_record(emitted_at=0.0)))
    return out


def restored(pipeline: OfflinePipeline) -> OfflinePipeline:
    """The pipeline with each unit of state through a checkpoint, as the worker saves them:
    one per input partition, one per stage-2 partition, partition 0's with the coordinator
    and the label gate."""
    twin = copy.copy(pipeline)
    twin.ingest = {key: round_trip(unit) for key, unit in pipeline.ingest.items()}
    first, twin.coordinator, twin.gate = round_trip(
        [pipeline.detect[0], pipeline.coordinator, pipeline.gate]
    )
    twin.detect = [first, *map(round_trip, pipeline.detect[1:])]
    twin.outcomes = Counter(pipeline.outcomes)
    return twin


@pytest.mark.parametrize("model", ["quantile", "hst", "svm"])
def test_every_unit_of_state_resumes_as_if_never_stopped(
    stream: list[tuple[str, int, Event]], model: str
) -> None:
    start = stream[0][2].ts
    before = [x for x in stream if x[2].ts < start + SPLIT_S]
    after = stream[len(before) :]
    pipeline = pipeline_of(stream, model)
    alerts = feed(pipeline, before)
    # Analysts' verdicts on the alerts so far: the label gate learns its priority model.
    verdicts = Labeler(truth(CONFIG), LabelerConfig()).labels(map(orjson.loads, alerts))
    assert verdicts, "the first attacks were alerted before the checkpoint"
    for label in verdicts:
        pipeline.feed("labels", 0, [parse_event("labels", orjson.dumps(label))])
    assert pipeline.gate.prioritiser.n > 0
    twin = restored(pipeline)

    expected = feed(pipeline, after)
    assert feed(twin, after) == expected
    assert twin.outcomes == pipeline.outcomes
    detectors = Counter(orjson.loads(a)["detector"] for a in expected)
    assert {"volume_spike", "actor_anomaly", "content_campaign"} <= set(detectors), detectors
    fresh = pipeline_of(stream, model)
    assert feed(fresh, after) != expected, "the state mattered"


def test_every_unit_of_state_can_be_saved_after_any_batch(
    stream: list[tuple[str, int, Event]],
) -> None:
    """A checkpoint comes when it is due, whatever the state holds then."""
    pipeline = pipeline_of(stream, "quantile")
    for i in range(0, len(stream), 400):
        feed(pipeline, stream[i : i + 400])
        units = [*pipeline.ingest.values(), *pipeline.detect, pipeline.coordinator, pipeline.gate]
        for unit in units:
            codec.encode(unit)


def test_a_coordinator_holding_actor_alerts_comes_back_with_them() -> None:
    """Actor alerts wait in the coordinator until every index has closed their window: in
    the worker, the indexes report at different times, and a checkpoint can come between."""
    config = CoordinationConfig()
    coordinator = Coordinator(config, sources=2)
    alert = Alert("a1", "actor_anomaly", "firing", "warning", "actor", "u\u202e1", 600.0,
                  540.0, 600.0, 7.5, 3.0, "an actor", {"events_10m": 40.0, "top": ["x", "y"]},
                  0.4)  # fmt: skip
    coordinator.add("index:0", [], 600.0, actor_alerts=[alert])
    assert coordinator.actor_alerts == {540.0: [alert]}, "held: index:1 has not reported"
    twin = round_trip(coordinator)
    assert twin.actor_alerts == {540.0: [alert]}
    closed = twin.add("index:1", [], 600.0)
    assert [a.alert_id for a in closed.alerts] == ["a1"]


@pytest.mark.parametrize("kind", ["quantile", "hst", "svm"])
def test_an_actor_model_resumes_identically(kind: str) -> None:
    rng = random.Random(3)
    model = ActorModel(model=kind, warmup=100)
    for _ in range(600):
        model.step(ordinary(rng))
    twin = round_trip(model)
    spammer = {**ordinary(rng), "events_10m": 140.0, "new_targets_10m": 131.0}
    spammer.update(new_target_share=0.95, dup_share=0.97, age_days=2.0)

    def verdicts(model: ActorModel) -> list[object]:
        rng = random.Random(9)
        return [model.step(dict(spammer) if i % 50 == 49 else ordinary(rng)) for i in range(300)]

    fresh = ActorModel(model=kind, warmup=100)
    expected = verdicts(model)
    assert verdicts(twin) == expected
    assert sum(v is not None for v in expected) > 20
    assert verdicts(fresh) != expected, "the state mattered"


def test_shared_objects_stay_shared() -> None:
    model = ActorModel(model="hst", warmup=10)
    rng = random.Random(1)
    for _ in range(100):
        model.step(ordinary(rng))
    twin = round_trip(model)
    assert twin.pipeline is not None
    trees = twin.pipeline._last_step_cached
    assert trees._tree_nodes[0][0] is trees.trees[0]
    scaler = twin.pipeline.steps["StandardScaler"]
    assert twin.pipeline._plan[0][1] is scaler
    state: dict[str, Any] = {"a": [1], "b": None}
    state["b"] = state["a"]
    state["self"] = state
    back = round_trip(state)
    assert back["a"] is back["b"] and back["self"] is back


def test_containers_and_numbers_come_back_as_they_were() -> None:
    from array import array

    state = {
        (1, "a"): [float("inf"), -float("inf"), 0.5, None, True, b"\x00\xff", "é"],
        "sets": ({1, 2}, frozenset({"x"})),
        "ordered": OrderedDict([("b", 1), ("a", 2)]),
        "counter": Counter("abca"),
        "default": defaultdict(float, {"x": 1.0}),
        "recent": deque([1, 2, 3], maxlen=5),
        "ring": array("I", [1, 2, 3]),
        "big": 2**63 + 1,
    }
    back = round_trip(state)
    assert back == state
    assert type(back["ordered"]) is OrderedDict and back["recent"].maxlen == 5
    assert back["default"]["y"] == 0.0 and back["ring"].typecode == "I"
    assert round_trip(float("nan")) != round_trip(float("nan"))  # nan, still


def test_a_change_of_layout_must_be_declared() -> None:
    detector = SpikeDetector()
    detector.extra = 1  # type: ignore[attr-defined]
    with pytest.raises(codec.CodecError, match="new version"):
        codec.encode(detector)
    index = CoordinationIndex(CoordinationConfig())  # packed as a table, checked the same
    index.extra = 1  # type: ignore[attr-defined]
    with pytest.raises(codec.CodecError, match="new version"):
        codec.encode(index)
    with pytest.raises(codec.CodecError, match="no encoding of"):
        codec.encode({"f": lambda: 0})


def test_a_type_of_an_older_version_is_migrated() -> None:
    """Version 1 of SpikeDetector (tests/detectors/test_spike.py resumes one)."""
    detector = SpikeDetector()
    for m in range(50):
        detector.step(m * 60.0, 100.0)
    state = dict(vars(detector), two_sided=True, calibrate=0.01, evidence=None, evidence_sq=None)
    layout = codec.TYPES["SpikeDetector"].layouts[1]
    tree = ["SpikeDetector", 1, *codec.Encoder().items([state[f] for f in layout])]
    resumed = codec.decode(packed(tree))
    assert vars(resumed).keys() == vars(detector).keys()
    assert resumed.n == 50 and resumed.horizon == HORIZON and len(resumed.tails) == 5
    assert vars(round_trip(detector)).keys() == vars(detector).keys()  # version 2: as it is


def test_a_coordinator_of_one_clock_comes_back_with_both_at_its_mark() -> None:
    """Version 1 of Coordinator took each source's actor alerts with its candidates."""
    coordinator = Coordinator(CoordinationConfig(), sources=2)
    alert = Alert("a1", "actor_anomaly", "firing", "warning", "actor", "u1", 600.0, 540.0,
                  600.0, 7.5, 3.0, "an actor", {})  # fmt: skip
    coordinator.add("index:0", [], 600.0, actor_alerts=[alert])
    coordinator.add("index:1", [], 540.0)
    state = vars(coordinator)
    layout = codec.TYPES["Coordinator"].layouts[1]
    tree = ["Coordinator", 1, *codec.Encoder().items([state[f] for f in layout])]
    resumed = codec.decode(packed(tree))
    assert resumed.actor_marks == {"index:0": 600.0, "index:1": 540.0}
    assert resumed.folded_until == resumed.closed_until == 540.0
    closed = resumed.add("index:1", [], 600.0)
    assert [a.alert_id for a in closed.alerts] == ["a1"]


def test_a_group_clock_of_version_1_has_not_resumed() -> None:
    """A clock checkpointed before the group's silences restarted its sources' reads back as
    one that has not resumed since: its sources' silences count from their last messages."""
    clock = GroupClock(idle_s=120.0)
    clock.update(Watermark("content", "a", 2, 600.0), now=0.0)
    clock.update(Watermark("content", "b", 2, 300.0), now=100.0)
    state = vars(clock)
    layout = codec.TYPES["GroupClock"].layouts[1]
    tree = ["GroupClock", 1, *codec.Encoder().items([state[f] for f in layout])]
    resumed = codec.decode(packed(tree))
    assert resumed.resumed == float("-inf")
    assert resumed.watermark(now=119.0) == 300.0
    assert resumed.watermark(now=121.0) == 300.0  # a idle: b's 300 s holds alone
    assert vars(codec.decode(codec.encode(clock))) == vars(clock)


def test_an_actor_processor_of_version_2_has_watched_for_ever() -> None:
    """Version 2 of ActorProcessor did not keep its first window: it resumes telling first
    contacts apart at once, as it did then."""
    processor = ActorProcessor(ActorConfig())
    processor.close(600.0, 720.0)
    assert processor.first == 600.0
    state = vars(processor)
    layout = codec.TYPES["ActorProcessor"].layouts[2]
    assert "first" not in layout and "hourly" in layout
    tree = ["ActorProcessor", 2, *codec.Encoder().items([state[f] for f in layout])]
    resumed = codec.decode(packed(tree))
    assert resumed.first == -math.inf and resumed.closed_until == processor.closed_until
    assert round_trip(processor).first == 600.0


def test_a_candidate_of_version_2_was_watched_for_ever() -> None:
    """Version 2 of Candidate did not say how long its index had watched: its timing is
    judged as it was then."""
    candidate = Candidate("report", "x", 600.0, ("a", "b"), (), 2, 0, 2, 2, 590.0, 595.0, 5.0,
                          ("r1",), (), {}, {"spam": 2}, (), watched_s=30.0)  # fmt: skip
    state = vars(candidate)
    layout = codec.TYPES["Candidate"].layouts[2]
    assert "watched_s" not in layout and "schedule" in layout
    tree = ["Candidate", 2, *codec.Encoder().items([state[f] for f in layout])]
    resumed = codec.decode(packed(tree))
    assert resumed == dataclasses.replace(candidate, watched_s=math.inf)
    assert round_trip(candidate) == candidate
    assert Candidate.from_wire(candidate.to_wire()[:-1]) == resumed  # from an older worker


def index_with_rows() -> CoordinationIndex:
    """An index whose rows are held by several keys, by a new domain and by an open window,
    one route of which holds two events."""
    index = CoordinationIndex(CoordinationConfig(domain_window_s=7200.0))
    shared = Row("text", ("0:aa", "1:bb"), 30.0, "u1", "c1", None, "buy now", (), b"\x01", "d1")
    link = Row("link", ("new.example",), 40.0, "u2", "c2", 5.0, "", (), b"", "")
    index.keys["text:0:aa"] = shared  # a key's one row is held alone
    index.keys["text:1:bb"] = [shared, replace(shared, event_id="c3", actor="u3")]
    index.new_domains["link:new.example"] = [link]
    index.domains_seen["new.example"] = 0.0
    index.pending[60.0] = {"text:0:aa": replace(shared, ts=61.0, event_id="c4")}
    index.pending[60.0]["link:new.example"] = {"c2": link, "c5": replace(link, event_id="c5")}
    index.closed_until, index.first = 60.0, 0.0
    return index


def test_an_index_comes_back_with_its_rows_shared_as_they_were() -> None:
    index = index_with_rows()
    twin = round_trip(index)
    for name in ("keys", "new_domains", "pending", "domains_seen"):
        assert getattr(twin, name) == getattr(index, name), name
    assert type(twin.keys) is OrderedDict and list(twin.keys) == list(index.keys)
    assert twin.keys["text:0:aa"] is twin.keys["text:1:bb"][0]  # one row, as before
    assert type(twin.pending[60.0]["text:0:aa"]) is Row
    assert (twin.closed_until, twin.first, twin.config) == (60.0, 0.0, index.config)


def test_an_index_of_rows_one_by_one_is_read_into_its_table() -> None:
    """Version 2 of CoordinationIndex held each row as a node of the tree."""
    index = index_with_rows()
    # Version 2 held every key's rows in a list.
    state = {**vars(index), "keys": OrderedDict((r, held_rows(v)) for r, v in index.keys.items())}
    layout = codec.TYPES["CoordinationIndex"].layouts[2]
    encoder = codec.Encoder()
    encoder.seen[id(index)] = 0  # the index is the tree's first object: references count it
    tree = ["CoordinationIndex", 2, *encoder.items([state[f] for f in layout])]
    resumed = codec.decode(packed(tree))
    for name in ("keys", "new_domains", "pending", "domains_seen"):
        assert getattr(resumed, name) == getattr(index, name), name
    assert resumed.keys["text:0:aa"] is resumed.keys["text:1:bb"][0]


ROW = Row("text", ("0:aa",), 30.0, "u1", "c1", None, "buy now")
NONE: list[list[Any]] = [[], [], []]  # no routes


def index_table(rows: list[Any], keys: list[list[Any]]) -> bytes:
    return msgspec.msgpack.encode([rows, keys, NONE, [], []])


@pytest.mark.parametrize(
    "table",
    [
        b"not msgpack",
        index_table([], [["text:0:aa"], [1], [0]]),  # a position beyond the table
        index_table([ROW], [["text:0:aa"], [1], [-1]]),  # one from its end
        index_table([["text", "not a tuple"]], NONE),
        index_table([ROW], [["text:0:aa"], [2], [0]]),  # more rows held than positions
        index_table([ROW], [["text:0:aa", "text:1:bb"], [1], [0]]),  # a route without its count
        "a table of no bytes",
    ],
    ids=[
        "not msgpack",
        "beyond the table",
        "from its end",
        "a row of wrong types",
        "counts beyond positions",
        "a route without a count",
        "no bytes",
    ],
)
def test_an_index_table_that_is_not_one_is_refused(table: Any) -> None:
    config = codec.Encoder().tree(CoordinationConfig())
    tree = ["CoordinationIndex", 3, 0.0, config, 0.0, table]
    with pytest.raises(codec.CodecError, match="CoordinationIndex"):
        codec.decode(packed(tree))


class Payload:
    """What a writer of the changelog could put in a pickle: a call, on loading."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def packed(tree: Any) -> bytes:
    return zlib.compress(msgspec.msgpack.encode(tree))


def test_what_is_not_a_registered_state_is_refused_without_running_anything(
    tmp_path: Any,
) -> None:
    marker = str(tmp_path / "ran")
    crafted = [
        ["os.system", 1, "touch " + marker],
        ["posix.system", 1, "touch " + marker],
        ["SpikeDetector", 99],  # a version this code does not read
        ["SpikeDetector", 2, 1.0],  # too few fields
        ["dd", "os.system", "k", 1],  # a factory not among FACTORIES
        ["dd", ["partial", "eval", "1"], "k", 1],
        ["dd", ["partial", "tuple", ["l", ["river.Zeros", 1, 0.0]]], "k", 1],  # no objects
        ["river.RsQuantile", 1, ["l"], b"\x00" * 3],  # a Rust state of the wrong size
        ["a", "O", b"x"],
        ["@", 5],
        {"t": "SpikeDetector", "v": 2},  # a map is no node
        msgspec.msgpack.Ext(1, b"x"),
    ]
    for tree in crafted:
        with pytest.raises(codec.CodecError):
            codec.decode(packed(tree))
    for blob in (pickle.dumps(Payload(marker)), zlib.compress(pickle.dumps(Payload(marker)))):
        with pytest.raises(codec.CodecError):
            codec.decode(blob)
    assert not os.path.exists(marker)
    with pytest.raises(codec.CodecError, match=r"unknown type 'os\.system'"):
        codec.decode(packed(crafted[0]))


def test_damaged_bytes_give_a_codec_error_and_nothing_else() -> None:
    rng = random.Random(4)
    model = ActorModel(model="hst", warmup=10)
    for _ in range(50):
        model.step(ordinary(rng))
    raw = bytearray(msgspec.msgpack.encode(codec.Encoder().tree([model, SpikeDetector()])))
    refused = 0
    for _ in range(300):
        damaged = bytearray(raw)
        for _ in range(rng.randrange(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        try:
            codec.decode(zlib.compress(bytes(damaged)))
        except codec.CodecError:
            refused += 1
    assert refused
