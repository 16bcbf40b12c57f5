"""Checkpoints: the detectors' state in changelog-backed Faust tables.

The worker's state comes in units: one per input partition (its open windows, coordination
rows and the event ids it has seen) and one per partition of the signal topic (the series and
their spike detectors, the actors' baselines and population model, the coordination index, and
on partition 0 the coordinator, the label gate and the alerts recently published). Every
`checkpoint_s`, each unit is saved whole with the offset of the first message it has not
seen: the state encoded by `detectors.codec` in chunks, then a header naming them, as records of a Faust table
written to the changelog partition of the unit's own partition. The worker that gets that
partition next, after a crash, a restart or a rebalance, has it back through Faust's table
recovery (from RocksDB and the changelog's tail in production, from the changelog in tests).

The worker commits its input offsets itself, each time a checkpoint has been flushed to the
broker, to that checkpoint's offset (Faust's acknowledgements are off for those topics). So
the committed offset never passes the checkpoint: a worker resuming a partition skips the
messages its checkpoint holds and processes the rest again, which gives the same outputs
again. Those are idempotent where they land (partial counts per source and window,
coordination rows per event id, candidates per route, labels per label id); alerts are
dropped by the dedup on publish (`Published`).

Headers and chunks alternate between two slots, so a checkpoint cut short by a crash leaves
the previous one whole.

Whoever can write to the changelog topics can write a checkpoint: `detectors.codec` builds
only the types it lists, and a checkpoint it refuses, like one that is not whole, leaves its
unit empty, logged and counted (`abusemon_state_refused_total`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import faust
import orjson
import prometheus_client
from faust.streams import _current_event  # the event whose partition a table write goes to
from faust.types import EventT

from detectors import codec

log = logging.getLogger("abuse_monitor")

CHUNK_BYTES = 256 * 1024  # well under a topic's default 1 MiB record limit
MAX_CHUNKS = codec.MAX_BYTES // CHUNK_BYTES  # a header naming more is refused
PUBLISHED_PREFIX = b"published/"
PUBLISHED_MAX = 50_000  # alert messages remembered for dedup on publish


@dataclass
class Unit:
    """Bookkeeping of one unit of state: where its state and its last checkpoint are."""

    stage: str  # ingest or signals: which table holds its checkpoints
    key: bytes
    topic: str
    partition: int  # of the unit's topic, and so of the table's changelog
    state: Any = None
    position: int = 0  # offset of the first message the state has not seen
    saved: int = 0  # the same, for the last checkpoint flushed
    committed: int = 0  # the offset this worker last committed for the partition
    slot: int = 0  # of the last checkpoint
    due: float = 0.0  # wall clock of the next checkpoint
    busy: bool = False  # a message is being processed: the state is not whole
    saving: asyncio.Future[None] | None = None  # a checkpoint's writing, not yet acknowledged
    resuming: bool = False  # restored or reassigned: the next new message is at `position`
    rewinds: int = 0  # reads of the partition again from `position`, while resuming
    rewind_due: float = 0.0  # monotonic time after which another rewind may be asked for
    last: EventT[Any] | None = None  # the last message processed, for the changelog partition


class Published:
    """Alert messages recently published, so that a replay does not publish them again.

    The memory is part of partition 0's checkpoint; messages published since, which a
    replay from that checkpoint would produce again, are kept as table records until the
    next checkpoint.
    """

    def __init__(self) -> None:
        self.keys: OrderedDict[bytes, None] = OrderedDict()
        self.since_checkpoint: list[bytes] = []

    @staticmethod
    def key(alert_id: str, status: str, ts: float) -> bytes:
        return f"{alert_id}/{status}/{ts!r}".encode()

    def __contains__(self, key: bytes) -> bool:
        return key in self.keys

    def add(self, key: bytes) -> None:
        self.keys[key] = None
        while len(self.keys) > PUBLISHED_MAX:
            self.keys.popitem(last=False)
        self.since_checkpoint.append(key)


def _published_put(published: Published, values: list[Any]) -> None:
    (keys,) = values
    if type(keys) is not OrderedDict:
        raise codec.CodecError("Published: its keys are not an OrderedDict")
    published.keys, published.since_checkpoint = keys, []


# Those published since a checkpoint are in the table, not in the checkpoint.
codec.register(codec.Type("Published", Published, 1, ("keys",), lambda p: [p.keys], _published_put))


@contextlib.contextmanager
def attributed_to(event: EventT[Any]) -> Iterator[None]:
    """Table writes go to the changelog partition (and the RocksDB) of `event`'s partition,
    also when written outside the task that read it (a checkpoint taken by the timer)."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


class Checkpoints:
    """Save and load units of state as records of one Faust table."""

    def __init__(
        self, table: faust.Table[bytes, bytes], refused: prometheus_client.Counter | None = None
    ) -> None:
        self.table = table
        self.refused = refused  # by stage and reason

    @staticmethod
    def pack(state: Any) -> bytes:
        """The state as bytes, as it is now: the part of a checkpoint that reads the state."""
        return codec.pack(state)

    @staticmethod
    def seal(packed: bytes) -> tuple[bytes, str]:
        """`pack`'s bytes compressed, and their digest. It reads no Python object, and zlib
        and hashlib let other threads run while they work: it may run beside the event loop."""
        blob = codec.compress(packed)
        return blob, hashlib.sha256(blob).hexdigest()

    def save(self, unit: Unit, state: Any, event: EventT[Any]) -> int:
        """Write `state` as of `unit.position`; returns its size. The caller flushes the
        producer before it takes the checkpoint as saved."""
        return self.write(unit, unit.position, *self.seal(self.pack(state)), event)

    def write(self, unit: Unit, offset: int, blob: bytes, digest: str, event: EventT[Any]) -> int:
        """Write a sealed checkpoint of the unit's state as of `offset`; returns its size."""
        slot = 1 - unit.slot
        chunks = [blob[i : i + CHUNK_BYTES] for i in range(0, len(blob), CHUNK_BYTES)] or [b""]
        header = {
            "offset": offset,
            "slot": slot,
            "chunks": len(chunks),
            "format": codec.FORMAT,
            "sha256": digest,
        }
        with attributed_to(event):
            for i, chunk in enumerate(chunks):
                self.table[self._chunk(unit.key, slot, i)] = chunk
            self.table[unit.key] = orjson.dumps(header)
        unit.slot = slot
        return len(blob)

    def load(self, unit: Unit) -> Any | None:
        """The unit's last checkpoint, with `unit` set to its offset and slot; None if there
        is none, or if it is not one to restore (logged and counted: the unit starts empty, as
        on first start): not whole, of another format, or refused by the codec."""
        raw = self.table.get(unit.key)
        if raw is None:
            return None
        name = unit.key.decode(errors="replace")
        try:
            header = orjson.loads(raw)
            slot, n, digest = header["slot"], header["chunks"], header["sha256"]
            if type(slot) is not int or type(n) is not int or not 0 <= n <= MAX_CHUNKS:
                raise ValueError("slot or chunks out of range")
            offset = header["offset"]
            if type(offset) is not int or offset < 0:
                raise ValueError("offset out of range")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            return self._refuse(unit, "damaged", f"checkpoint {name}: a bad header ({e})")
        if header.get("format") != codec.FORMAT:
            return self._refuse(
                unit,
                "format",
                f"checkpoint {name} is of format {header.get('format')!r}, not {codec.FORMAT}",
            )
        parts = [self.table.get(self._chunk(unit.key, slot, i)) for i in range(n)]
        blob = b"".join(part for part in parts if part is not None)
        if None in parts or hashlib.sha256(blob).hexdigest() != digest:
            return self._refuse(unit, "damaged", f"checkpoint {name} is not whole")
        try:
            state = codec.decode(blob)
        except codec.CodecError as e:
            return self._refuse(unit, "refused", f"checkpoint {name} refused: {e}")
        unit.position = unit.saved = offset
        unit.slot = slot
        return state

    def _refuse(self, unit: Unit, reason: str, message: str) -> Any | None:
        log.error("%s: starting it empty", message)
        if self.refused is not None:
            self.refused.labels(unit.stage, reason).inc()
        return None

    def remember(self, key: bytes, event: EventT[Any]) -> None:
        with attributed_to(event):
            self.table[PUBLISHED_PREFIX + key] = b""

    def forget(self, keys: list[bytes], event: EventT[Any]) -> None:
        with attributed_to(event):
            for key in keys:
                self.table.pop(PUBLISHED_PREFIX + key, None)

    def published_since(self) -> list[bytes]:
        """Alert messages published after partition 0's last checkpoint."""
        return [
            key[len(PUBLISHED_PREFIX) :]
            for key in list(self.table.keys())
            if key.startswith(PUBLISHED_PREFIX)
        ]

    @staticmethod
    def _chunk(key: bytes, slot: int, i: int) -> bytes:
        return b"%s#%d#%d" % (key, slot, i)
