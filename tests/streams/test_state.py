"""Checkpoints of units of state, over a plain dict in place of the Faust table."""

from __future__ import annotations

import hashlib
import pickle
import random
import zlib
from pathlib import Path
from typing import Any, cast

import faust
import orjson
from prometheus_client import CollectorRegistry, Counter

from detectors import codec
from detectors.pipeline import DetectionConfig, SignalProcessor
from detectors.windows import Partial, Watermark
from streams.state import CHUNK_BYTES, PUBLISHED_MAX, Checkpoints, Published, Unit


class Event:
    """Stands for the Faust event whose partition the writes go to."""


def checkpoints() -> tuple[Checkpoints, dict[bytes, bytes]]:
    table: dict[bytes, bytes] = {}
    return Checkpoints(cast(faust.Table[bytes, bytes], table)), table


def saved(store: Checkpoints, unit: Unit, state: Any, position: int) -> None:
    unit.position = position
    store.save(unit, state, cast(Any, Event()))


def test_a_state_larger_than_a_chunk_comes_back_whole_with_its_offset() -> None:
    store, table = checkpoints()
    rng = random.Random(1)
    state = {"noise": rng.randbytes(3 * CHUNK_BYTES), "n": 7}  # does not compress
    saved(store, Unit("signals", b"signals/0", "signals", 0), state, 1234)
    assert sum(key.startswith(b"signals/0#") for key in table) == 4

    restored = Unit("signals", b"signals/0", "signals", 0)
    assert store.load(restored) == state
    assert (restored.position, restored.saved) == (1234, 1234)


def test_a_checkpoint_cut_short_leaves_the_previous_one() -> None:
    store, table = checkpoints()
    unit = Unit("ingest", b"ingest/t/1", "t", 1)
    saved(store, unit, "first", 10)
    header = table[b"ingest/t/1"]
    saved(store, unit, "second", 20)
    table[b"ingest/t/1"] = header  # the crash came before the new header was written
    restored = Unit("ingest", b"ingest/t/1", "t", 1)
    assert store.load(restored) == "first"
    assert restored.position == 10


def test_a_damaged_checkpoint_starts_the_unit_empty() -> None:
    store, table = checkpoints()
    saved(store, Unit("ingest", b"ingest/t/0", "t", 0), list(range(1000)), 5)
    del table[next(key for key in table if b"#" in key)]
    restored = Unit("ingest", b"ingest/t/0", "t", 0)
    assert store.load(restored) is None
    assert restored.position == 0
    assert store.load(Unit("ingest", b"ingest/t/9", "t", 9)) is None  # never saved


def test_published_messages_since_the_checkpoint_are_kept_in_the_table() -> None:
    store, _ = checkpoints()
    published = Published()
    key = Published.key("a1", "firing", 60.0)
    published.add(key)
    store.remember(key, cast(Any, Event()))
    assert store.published_since() == [key]
    copy = codec.decode(codec.compress(store.pack(published)))
    assert key in copy and copy.since_checkpoint == []
    store.forget(published.since_checkpoint, cast(Any, Event()))
    assert store.published_since() == []
    assert Published.key("a1", "firing", 60.0) != Published.key("a1", "resolved", 60.0)


def test_published_memory_is_bounded() -> None:
    published = Published()
    for n in range(PUBLISHED_MAX + 10):
        published.add(b"%d" % n)
    assert len(published.keys) == PUBLISHED_MAX
    assert b"0" not in published and b"%d" % (PUBLISHED_MAX + 9) in published


def reports(processor: SignalProcessor, minutes: range, rng: random.Random) -> list[object]:
    """Windows of report counts with a burst against one account at minute 70; what closes."""
    out: list[object] = []
    for minute in minutes:
        counts = {"reports": 20 + rng.randrange(10), "reports.reason:spam": 5 + rng.randrange(5)}
        if minute == 70:
            counts["reports.target:u7"] = 60
        for signal, count in counts.items():
            processor.add_partial(Partial("report-events:0", signal, minute * 60.0, count, ()))
        watermark = Watermark("reports", "report-events:0", 1, (minute + 1) * 60.0)
        closed = processor.add_watermark(watermark)
        out += [(r.signal, r.window_start, r.verdict) for r in closed.results]
        out += [a.to_record(emitted_at=0.0) for a in closed.alerts]
    return out


def test_a_signal_processor_survives_a_round_trip() -> None:
    config = DetectionConfig(warmup_windows=20)
    store, _ = checkpoints()
    processor = SignalProcessor(config)
    processor.add_watermark(Watermark("reports", "report-events:0", 1, 0.0))
    reports(processor, range(60), random.Random(1))
    saved(store, Unit("signals", b"signals/1", "signals", 1), processor, 3)
    restored = store.load(Unit("signals", b"signals/1", "signals", 1))
    assert isinstance(restored, SignalProcessor)

    after = reports(processor, range(60, 90), random.Random(2))
    assert reports(restored, range(60, 90), random.Random(2)) == after
    assert any(isinstance(x, dict) and x["status"] == "firing" for x in after)
    fresh = SignalProcessor(config)
    fresh.add_watermark(Watermark("reports", "report-events:0", 1, 3600.0))
    assert reports(fresh, range(60, 90), random.Random(2)) != after, "the state mattered"


class Payload:
    """A pickle that writes a file when loaded: what a writer of the changelog could send."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def test_a_checkpoint_that_is_no_state_starts_the_unit_empty_and_runs_nothing(
    tmp_path: Path,
) -> None:
    registry = CollectorRegistry()
    refused = Counter("refused", "", ["stage", "reason"], registry=registry)
    table: dict[bytes, bytes] = {}
    store = Checkpoints(cast(faust.Table[bytes, bytes], table), refused)
    marker = tmp_path / "ran"
    blob = zlib.compress(pickle.dumps(Payload(str(marker))))
    key = b"signals/0"

    def written(header: dict[str, Any], blob: bytes = blob) -> Any:
        table[key] = orjson.dumps(header)
        table[key + b"#1#0"] = blob
        unit = Unit("signals", key, "signals", 0)
        state = store.load(unit)
        assert unit.position == (0 if state is None else 9)
        return state

    digest = hashlib.sha256(blob).hexdigest()
    # As the checkpoints of earlier versions were: pickles, with no format in the header.
    assert written({"offset": 9, "slot": 1, "chunks": 1, "sha256": digest}) is None
    # The same bytes claiming the format: the codec refuses them.
    header = {"offset": 9, "slot": 1, "chunks": 1, "sha256": digest, "format": codec.FORMAT}
    assert written(header) is None
    assert written({**header, "chunks": 10**12}) is None
    assert written({**header, "slot": "1"}) is None
    assert not marker.exists()
    count = registry.get_sample_value
    assert count("refused_total", {"stage": "signals", "reason": "format"}) == 1
    assert count("refused_total", {"stage": "signals", "reason": "refused"}) == 1
    assert count("refused_total", {"stage": "signals", "reason": "damaged"}) == 2
    # And a real one, for contrast.
    good = codec.encode({"n": 1})
    good_header = {**header, "sha256": hashlib.sha256(good).hexdigest()}
    assert written(good_header, good) == {"n": 1}
