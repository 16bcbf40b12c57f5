"""Per-actor behaviour: what an actor did in one window, and the features kept across windows.

Stage 1 (`ActivityCollector`, one per input partition) sums up each actor's `Activity` in each
event-time window: content created (kinds, surfaces, targets, text signatures, links) and
reports filed and received. When the partition's watermark passes a window, the summaries
leave as `ActorPartial`s for the partition that owns the actor, like the signal partials.
Summaries of one actor and window from several partitions merge in any order to the same
result, so the features do not depend on how partitions interleave.

Stage 2 keeps an `ActorState` per actor and updates it once per window the actor was active
in, in window order. The state is bounded whatever the actor does: event-time decayed counters,
short rings of per-window counts, and small sets of hashed recent targets, domains, reporters
and text signatures.

>>> from detectors.events import ContentEvent
>>> collector = ActivityCollector("content-events:0")
>>> from detectors.text import signature
>>> text = "win a free phone at prize.example now"
>>> for i in range(3):
...     collector.add(ContentEvent(event_id=f"e{i}", ts=f"1970-01-01T00:00:1{i}Z",
...         actor_id="u1", kind="message", target_id=f"u{10 + i}", text=text,
...         links=["https://prize.example/a"], actor_created_at="1970-01-01T00:00:00Z"),
...         0.0, signature(text)) is not None  # the text's signature, kept
True
True
True
>>> [partial] = collector.close(60.0)
>>> partial.actor, partial.activity.events, partial.activity.targets
('u1', 3, ['u10', 'u11', 'u12'])
>>> state = ActorState()
>>> state.update(0.0, 60.0, partial.activity)
>>> f = state.features(60.0)
>>> f["events_10m"], f["new_targets_10m"], round(f["dup_share"], 2), round(f["age_days"], 4)
(3.0, 3.0, 0.36, 0.0007)
"""

from __future__ import annotations

import functools
import heapq
import math
import operator
import sys
import zlib
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

import msgspec

from detectors.events import ContentEvent, Event, ReportEvent
from detectors.text import similarity

# Per window and actor, at most this many of each are carried to stage 2.
MAX_TIMES = 64
MAX_TARGETS = 64
MAX_TEXTS = 8
MAX_DOMAINS = 8
MAX_REPORTERS = 32
SAMPLE_IDS = 5

# Per actor, across windows.
RECENT_TARGETS = 32
RECENT_DOMAINS = 8
RECENT_REPORTERS = 16
RECENT_TEXTS = 4
RING_S = 600.0  # the "last 10 minutes" of the summaries and features
# The "last hour": the ten-minute block of the clock the window is in and the five before it
# (50 to 60 minutes), counted per block.
HOUR_BLOCKS = 6
NEAR_DUPLICATE = 0.5  # estimated Jaccard similarity at which two texts are near-identical
SHARE_ALPHA = 0.1  # learning rate per event of the share features
DUP_ALPHA = 0.2  # per text: four near-identical texts in a row make a share over one half
GAP_ALPHA = 0.1
MAX_GAP_S = 3600.0  # longer pauses are breaks between sessions, not gaps
HOUR, DAY = 3600.0, 86400.0
KINDS = ("post", "comment", "message", "share")
FEATURES = (
    "events_10m",  # events in the last 10 minutes
    "events_1h",  # events in the last hour
    "events_24h",  # events, decaying over a day
    "gap_cv",  # variation of the gaps between events: ~1 at random, ~0 on a schedule
    "new_targets_10m",  # accounts addressed for the first time in the last 10 minutes
    "new_targets_1h",  # accounts addressed for the first time in the last hour
    "new_target_share",  # share of addressed events going to accounts not seen before
    "dup_share",  # share of recent texts near-identical to one of the few before
    "link_share",  # share of recent events with links
    "new_domains_1h",  # link domains not seen before, decaying over an hour
    "age_days",  # account age at event time
    "reporters_24h",  # distinct accounts that reported it, decaying over a day
    "reports_filed_1h",  # reports it filed, decaying over an hour
    "message_share",  # kind mix of recent events
    "share_share",
    "comment_share",
    "blocks_1h",  # ten-minute blocks of the last hour with events: the hourly gate's, not scored
)


def domain_of(link: str) -> str:
    """The host of a URL, or the link itself when it is a bare domain.

    >>> domain_of("https://WWW.Example.com/a?b=1"), domain_of("spam.example")
    ('example.com', 'spam.example')
    """
    host = urlsplit(link if "//" in link else f"//{link}").hostname or link.lower()
    return host.removeprefix("www.")


def _union(a: list[str], b: list[str], limit: int) -> list[str]:
    return sorted(set(a).union(b))[:limit]


def _add_count(counts: dict[str, int], key: str, n: int = 1) -> None:
    counts[key] = counts.get(key, 0) + n


@dataclass(slots=True)
class Activity:
    """One actor's activity in one window, as seen by one or more partitions."""

    events: int = 0
    times: list[float] = field(default_factory=list)  # sorted; the earliest MAX_TIMES
    kinds: dict[str, int] = field(default_factory=dict)
    surfaces: dict[str, int] = field(default_factory=dict)
    targeted: int = 0  # events addressed to an account
    targets: list[str] = field(default_factory=list)  # distinct, sorted; at most MAX_TARGETS
    texts: list[tuple[str, bytes]] = field(default_factory=list)  # (event_id, signature)
    linked: int = 0  # events with links
    domains: list[str] = field(default_factory=list)
    created_at: float | None = None
    reports_filed: int = 0
    reports_received: int = 0
    reporters: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)  # of the reports received
    sample_ids: list[str] = field(default_factory=list)  # the smallest event ids

    def merge(self, other: Activity) -> None:
        """Add another partition's summary of the same actor and window; order-independent."""
        self.events += other.events
        self.times = list(heapq.merge(self.times, other.times))[:MAX_TIMES]
        for key, n in other.kinds.items():
            _add_count(self.kinds, key, n)
        for key, n in other.surfaces.items():
            _add_count(self.surfaces, key, n)
        self.targeted += other.targeted
        self.targets = _union(self.targets, other.targets, MAX_TARGETS)
        self.texts = sorted({*self.texts, *other.texts})[:MAX_TEXTS]
        self.linked += other.linked
        self.domains = _union(self.domains, other.domains, MAX_DOMAINS)
        if other.created_at is not None:
            self.created_at = (
                other.created_at
                if self.created_at is None
                else min(self.created_at, other.created_at)
            )
        self.reports_filed += other.reports_filed
        self.reports_received += other.reports_received
        self.reporters = _union(self.reporters, other.reporters, MAX_REPORTERS)
        for key, n in other.reasons.items():
            _add_count(self.reasons, key, n)
        self.sample_ids = _union(self.sample_ids, other.sample_ids, SAMPLE_IDS)

    @classmethod
    def from_wire(cls, data: list[Any]) -> Activity:
        """An activity as the internal topic's JSON messages of the version before held it
        (its signatures in hex)."""
        (events, times, kinds, surfaces, targeted, targets, texts, linked, domains, created_at,
         filed, received, reporters, reasons, sample_ids) = data  # fmt: skip
        return cls(
            events=int(events),
            times=[float(t) for t in times],
            kinds={str(k): int(v) for k, v in kinds.items()},
            surfaces={str(k): int(v) for k, v in surfaces.items()},
            targeted=int(targeted),
            targets=[str(t) for t in targets],
            texts=[(str(eid), bytes.fromhex(sig)) for eid, sig in texts],
            linked=int(linked),
            domains=[str(d) for d in domains],
            created_at=None if created_at is None else float(created_at),
            reports_filed=int(filed),
            reports_received=int(received),
            reporters=[str(r) for r in reporters],
            reasons={str(k): int(v) for k, v in reasons.items()},
            sample_ids=[str(s) for s in sample_ids],
        )


# Activity's fields in order, as the internal topic carries them (streams/records.py): a tuple
# typed field by field, which its decoder checks, and from which `Activity(*fields)` rebuilds it.
ActivityFields = tuple[
    int, list[float], dict[str, int], dict[str, int], int, list[str], list[tuple[str, bytes]],
    int, list[str], float | None, int, int, list[str], dict[str, int], list[str],
]  # fmt: skip
activity_fields: Callable[[Activity], ActivityFields] = operator.attrgetter(
    *(f.name for f in fields(Activity))
)


class ActorPartial(msgspec.Struct, frozen=True):
    """One partition's summary of one actor in one closed window (a frozen msgspec struct,
    as `windows.Partial`)."""

    source: str
    actor: str
    window_start: float
    activity: Activity


class ActivityCollector:
    """Stage 1 for one input partition: each actor's activity per open window."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.open: dict[float, dict[str, Activity]] = {}

    def _activity(self, window_start: float, actor: str) -> Activity:
        actors = self.open.get(window_start)
        if actors is None:  # not setdefault, which would make a dict each time
            actors = self.open[window_start] = {}
        activity = actors.get(actor)
        if activity is None:
            activity = actors[actor] = Activity()
        return activity

    def add(self, event: Event, window_start: float, sig: bytes | None = None) -> bytes | None:
        """Count one event (already deduplicated, not late) in the window starting there.

        `sig` is the signature of a content event's text (`detectors.text.signatures`, made
        for a whole batch at once), None when it has none. Returns it when the actor's
        window keeps it: at most `MAX_TEXTS` texts of an actor's window are compared."""
        if isinstance(event, ContentEvent):
            return self._content(event, window_start, sig)
        if isinstance(event, ReportEvent):
            self._activity(window_start, event.reporter_id).reports_filed += 1
            received = self._activity(window_start, event.target_actor_id)
            received.reports_received += 1
            reporters = received.reporters
            if len(reporters) < MAX_REPORTERS and event.reporter_id not in reporters:
                reporters.append(event.reporter_id)
            _add_count(received.reasons, event.reason)
            _sample(received.sample_ids, event.event_id)
        return None

    def _content(self, event: ContentEvent, window_start: float, sig: bytes | None) -> bytes | None:
        a = self._activity(window_start, event.actor_id)
        a.events += 1
        if len(a.times) < MAX_TIMES:
            a.times.append(event.ts)
        kinds, surfaces = a.kinds, a.surfaces  # _add_count, inlined
        kinds[event.kind] = kinds.get(event.kind, 0) + 1
        surfaces[event.surface] = surfaces.get(event.surface, 0) + 1
        if event.target_id is not None:
            a.targeted += 1
            if len(a.targets) < MAX_TARGETS and event.target_id not in a.targets:
                a.targets.append(event.target_id)
        if sig is not None:
            if len(a.texts) >= MAX_TEXTS:
                sig = None
            else:
                a.texts.append((event.event_id, sig))
        if event.links:
            a.linked += 1
            for link in event.links:
                domain = domain_of(link)
                if len(a.domains) < MAX_DOMAINS and domain not in a.domains:
                    a.domains.append(domain)
        if event.actor_created_at is not None and a.created_at is None:
            a.created_at = event.actor_created_at
        _sample(a.sample_ids, event.event_id)
        return sig

    def close(self, closed_until: float) -> list[ActorPartial]:
        """The summaries of every window ending at or before `closed_until`, in window order."""
        out = []
        for start in sorted(s for s in self.open if s < closed_until):
            for actor, activity in sorted(self.open.pop(start).items()):
                activity.times.sort()
                activity.targets.sort()
                activity.domains.sort()
                activity.reporters.sort()
                activity.texts.sort()
                out.append(ActorPartial(self.source, actor, start, activity))
        return out


def _sample(ids: list[str], event_id: str) -> None:
    if len(ids) < SAMPLE_IDS:
        ids.append(event_id)
        ids.sort()
    elif event_id < ids[-1]:
        ids[-1] = event_id
        ids.sort()


def _hash(value: str) -> int:
    return zlib.crc32(value.encode())


def _remember(recent: bytes | None, values: list[str], limit: int) -> tuple[bytes | None, int]:
    """Add the values' hashes to a bounded ring of recent ones, kept as the bytes of an
    array('I') (smaller than the array) and made on first use (most actors never need one);
    returns the ring and how many values were not in it."""
    if not values:
        return recent, 0
    hashes = array("I", recent or b"")
    new = 0
    for value in values:
        hashed = _hash(value)
        if hashed not in hashes:
            new += 1
            hashes.append(hashed)
            if len(hashes) > limit:
                del hashes[0]
    return hashes.tobytes(), new


# The numbers ActorState keeps, packed in one array('d'), its `numbers`: in slots of their own
# they would be a 24-byte float or 28-byte int object each. Each is also an attribute of its
# own name (the descriptors below); counts read back as ints, and None is kept as NaN.
(
    LAST_T,  # end of the last window it was updated for
    FIRST_T,
    EVENTS_TOTAL,
    RATE_24H,
    RING_INDEX,  # window number of the newest ring slot
    LAST_EVENT,  # time of the last event seen, or None
    GAPS,
    GAP_MEAN,
    GAP_SQ,
    NEW_TARGET_SHARE,
    DUP_SHARE,
    LINK_SHARE,
    NEW_DOMAINS_1H,
    CREATED_AT,  # or None
    REPORTERS_24H,
    REPORTS_FILED_1H,
    KIND_SHARES,  # the kind mix of recent events, one share per kind in KINDS order, last
) = range(17)
_SHARE_OF = {kind: KIND_SHARES + i for i, kind in enumerate(KINDS)}
_KIND_INDEXES = tuple(_SHARE_OF.values())
_INITIAL = array("d", [0.0] * (KIND_SHARES + len(KINDS)))
_INITIAL[LAST_T], _INITIAL[FIRST_T] = -math.inf, math.inf
_INITIAL[LAST_EVENT] = _INITIAL[CREATED_AT] = math.nan


class _Number:
    """One of the numbers of an ActorState, as an attribute."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __get__(self, state: ActorState, owner: type | None = None) -> float:
        return state.numbers[self.index]

    def __set__(self, state: ActorState, value: float) -> None:
        state.numbers[self.index] = value


class _Count(_Number):
    """A count: exact in a double up to 2**53."""

    def __get__(self, state: ActorState, owner: type | None = None) -> int:
        return int(state.numbers[self.index])


class _Optional(_Number):
    """A number or None, kept as NaN."""

    def __get__(self, state: ActorState, owner: type | None = None) -> float | None:  # type: ignore[override]
        value = state.numbers[self.index]
        return None if value != value else value  # NaN: None

    def __set__(self, state: ActorState, value: float | None) -> None:
        state.numbers[self.index] = math.nan if value is None else value


_ARRAY_SLOTS = {  # the typecode of each array slot of ActorState
    "numbers": "d",
    "ring": "I",
}


class ActorState:
    """What stage 2 keeps about one actor between windows: bounded, and cheap to update.

    Counters decay in event time; the "last 10 minutes" figures come from a ring of
    per-window counts and the "last hour" ones from a ring of per-ten-minute counts, so
    summaries can say exact numbers. An actor is held by many of these,
    so they are packed: the numbers in one array of doubles, the ring of counts in one array,
    the recent hashes as bytes, and whatever most actors never need is None.
    """

    __slots__ = (
        "episode",
        "numbers",
        "reasons",
        "recent_domains",
        "recent_reporters",
        "recent_targets",
        "recent_texts",
        "ring",
        "sample_ids",
        "surface",
    )

    last_t = _Number(LAST_T)
    first_t = _Number(FIRST_T)
    events_total = _Count(EVENTS_TOTAL)
    rate_24h = _Number(RATE_24H)
    ring_index = _Count(RING_INDEX)
    last_event = _Optional(LAST_EVENT)
    gaps = _Count(GAPS)
    gap_mean = _Number(GAP_MEAN)
    gap_sq = _Number(GAP_SQ)
    new_target_share = _Number(NEW_TARGET_SHARE)
    dup_share = _Number(DUP_SHARE)
    link_share = _Number(LINK_SHARE)
    new_domains_1h = _Number(NEW_DOMAINS_1H)
    created_at = _Optional(CREATED_AT)
    reporters_24h = _Number(REPORTERS_24H)
    reports_filed_1h = _Number(REPORTS_FILED_1H)

    def __init__(self) -> None:
        self.numbers: array[float] = _INITIAL[:]  # the named numbers above
        # Counts per window over the last RING_S, a ring of events and then one of new
        # targets, then the same per ten-minute block over the last hour (HOUR_BLOCKS each);
        # made on the first update.
        self.ring: array[int] | None = None
        self.recent_targets: bytes | None = None
        self.recent_texts = b""
        self.recent_domains: bytes | None = None
        self.recent_reporters: bytes | None = None
        self.reasons: dict[str, int] | None = None  # of reports received; most get none
        self.surface = ""
        self.episode: Any = None  # the open alert episode, if any
        self.sample_ids: tuple[str, ...] = ()

    @property
    def kind_shares(self) -> list[float]:
        return self.numbers[KIND_SHARES:].tolist()

    # A checkpoint holds every actor's state as this flat list, arrays as their bytes
    # (detectors/codec.py checks them before `__setstate__`).
    def __getstate__(self) -> list[Any]:
        values = list(_SLOT_VALUES(self))
        for i, _ in _ARRAY_INDEXES:
            if values[i] is not None:
                values[i] = values[i].tobytes()
        return values

    def __setstate__(self, state: list[Any]) -> None:
        for i, code in _ARRAY_INDEXES:
            if state[i] is not None:
                state[i] = array(code, state[i])[:]  # the copy is sized exactly
        for name, value in zip(self.__slots__, state, strict=True):
            setattr(self, name, value)

    # -- updating ------------------------------------------------------------------------
    def update(self, start: float, end: float, a: Activity) -> None:
        """Fold in the actor's activity of the window [start, end); windows come in order."""
        v = self.numbers  # by index rather than by name: the hot path
        window_s = end - start
        events = a.events
        if v[LAST_T] > -math.inf:  # decayed over a day and an hour since the last update
            elapsed = end - v[LAST_T]
            day, hour = math.exp(-elapsed / DAY), math.exp(-elapsed / HOUR)
        else:
            day = hour = 0.0
        v[RATE_24H] = v[RATE_24H] * day + events
        v[NEW_DOMAINS_1H] *= hour
        v[REPORTERS_24H] *= day
        v[REPORTS_FILED_1H] = v[REPORTS_FILED_1H] * hour + a.reports_filed
        if start < v[FIRST_T]:
            v[FIRST_T] = start
        v[LAST_T] = end
        v[EVENTS_TOTAL] += events
        if a.sample_ids:
            self.sample_ids = tuple(a.sample_ids)
        if a.created_at is not None:
            v[CREATED_AT] = a.created_at

        new_targets = 0
        if a.targets:
            self.recent_targets, new_targets = _remember(
                self.recent_targets, a.targets, RECENT_TARGETS
            )
        self._ring(start, window_s, events, new_targets)
        if a.times:
            self._gaps(a.times)
        if a.targeted:
            v[NEW_TARGET_SHARE] = _blend(
                v[NEW_TARGET_SHARE], min(1.0, new_targets / a.targeted), a.targeted
            )
        for _, sig in a.texts:  # _blend of one text, inlined
            duplicate = float(self._near_duplicate(sig))
            v[DUP_SHARE] = _DUP_KEEP * v[DUP_SHARE] + (1 - _DUP_KEEP) * duplicate
        if events:
            # _blend of each share, inlined: they all take `events` events.
            keep = (1 - SHARE_ALPHA) ** events
            v[LINK_SHARE] = keep * v[LINK_SHARE] + (1 - keep) * (a.linked / events)
            # Each kind's share: keep * share + (1 - keep) * its part of the events, whose
            # second term is 0.0 for a kind the window has not (most windows have one kind).
            for i in _KIND_INDEXES:
                v[i] = keep * v[i]
            for kind, n in a.kinds.items():
                slot = _SHARE_OF.get(kind)
                if slot is not None:
                    v[slot] = v[slot] + (1 - keep) * (n / events)
            surfaces = a.surfaces
            if len(surfaces) == 1:
                surface = next(iter(surfaces))
                if surface != self.surface:
                    self.surface = sys.intern(surface)
            elif surfaces:
                self.surface = sys.intern(max(sorted(surfaces), key=surfaces.__getitem__))
        if a.domains:
            self.recent_domains, new_domains = _remember(
                self.recent_domains, a.domains, RECENT_DOMAINS
            )
            v[NEW_DOMAINS_1H] += new_domains
        if a.reporters:
            self.recent_reporters, new_reporters = _remember(
                self.recent_reporters, a.reporters, RECENT_REPORTERS
            )
            v[REPORTERS_24H] += new_reporters
        if a.reasons:
            reasons = self.reasons or {}
            for reason, n in a.reasons.items():
                _add_count(reasons, reason, n)
            # Keep the main reasons only.
            self.reasons = dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:4])

    def _gaps(self, times: list[float]) -> None:
        """The running mean and mean square of the gaps between events."""
        v = self.numbers
        last, gaps, mean, square = self.last_event, int(v[GAPS]), v[GAP_MEAN], v[GAP_SQ]
        for t in times:
            if last is not None and 0 < t - last <= MAX_GAP_S:
                gap = t - last
                if gaps:
                    mean += GAP_ALPHA * (gap - mean)
                    square += GAP_ALPHA * (gap * gap - square)
                else:  # start from the first gap, so early estimates are not biased to zero
                    mean, square = gap, gap * gap
                gaps += 1
            last = t
        self.last_event, v[GAPS], v[GAP_MEAN], v[GAP_SQ] = last, gaps, mean, square

    def _ring(self, start: float, window_s: float, events: int, new_targets: int) -> None:
        size = max(1, math.ceil(RING_S / window_s))
        index = int(start // window_s)
        ring = self.ring
        newest = int(self.numbers[RING_INDEX])
        hours = 2 * size  # where the hour's blocks begin
        block = int(start // RING_S)  # the window's ten-minute block of the clock
        if ring is None:
            # Sized exactly, unlike from bytes.
            ring = self.ring = array("I", [0]) * (hours + 2 * HOUR_BLOCKS)
        else:  # the slots of the windows and blocks since the newest, at once if all are
            if index - newest >= size:  # most actors are back after a while, not each window
                ring[:hours] = _zeros(hours)
            else:
                for step in range(newest + 1, index + 1):
                    ring[step % size] = 0
                    ring[size + step % size] = 0
            last_block = int(newest * window_s // RING_S)
            if block - last_block >= HOUR_BLOCKS:
                ring[hours:] = _zeros(2 * HOUR_BLOCKS)
            else:
                for step in range(last_block + 1, block + 1):
                    ring[hours + step % HOUR_BLOCKS] = 0
                    ring[hours + HOUR_BLOCKS + step % HOUR_BLOCKS] = 0
        self.numbers[RING_INDEX] = max(index, newest)
        ring[index % size] = events
        ring[size + index % size] = new_targets
        ring[hours + block % HOUR_BLOCKS] += events
        ring[hours + HOUR_BLOCKS + block % HOUR_BLOCKS] += new_targets

    def _near_duplicate(self, sig: bytes) -> bool:
        width = len(sig)
        texts = self.recent_texts
        duplicate = False
        if texts:
            if len(texts) % width:
                raise ValueError("signatures of different lengths")
            # `similarity` of sig and each recent text, by the count of equal bytes it needs
            # (`_equal_needed`): one XOR for all of them, whose zero bytes are the equal ones.
            size = len(texts)
            equal = (
                int.from_bytes(texts, "big") ^ int.from_bytes(sig * (size // width), "big")
            ).to_bytes(size, "big")
            needed = _equal_needed(width)
            for i in range(0, size, width):
                if equal.count(0, i, i + width) >= needed:
                    duplicate = True
                    break
        self.recent_texts = (texts + sig)[-RECENT_TEXTS * width :]
        return duplicate

    # -- reading -------------------------------------------------------------------------
    def ring_sum(self, half: int, now: float, window_s: float) -> int:
        """The last 10 minutes' total of one half of the ring (0: events, 1: new targets),
        as of the window ending at `now`."""
        ring = self.ring
        if ring is None:
            return 0
        size = (len(ring) - 2 * HOUR_BLOCKS) // 2
        base = half * size
        newest = int(now // window_s) - 1
        ring_index = int(self.numbers[RING_INDEX])
        stale = newest - ring_index
        if stale >= size:
            return 0
        # The slots from the newest back, size - stale of them: one or two runs of the ring.
        last = base + ring_index % size + 1
        first = last - size + max(stale, 0)
        if first >= base:
            return sum(ring[first:last])
        return sum(ring[base:last]) + sum(ring[first + size : base + size])

    def gate_counts(self, start: float, window_s: float) -> tuple[int, int, int]:
        """The last 10 minutes' events, the last hour's, and its ten-minute blocks with
        events, right after `update` of the window starting at `start`: `ring_sum(0, ...)` and
        `hour(...)` as of its end, which have nothing stale to leave out then."""
        ring = self.ring
        if ring is None or int(self.numbers[RING_INDEX]) != int(start // window_s):
            end = start + window_s
            return (self.ring_sum(0, end, window_s), *self.hour(end, window_s)[::2])
        hours = len(ring) - 2 * HOUR_BLOCKS
        counts = ring[hours : hours + HOUR_BLOCKS]
        return sum(ring[: hours // 2]), sum(counts), HOUR_BLOCKS - counts.count(0)

    def hour(self, now: float, window_s: float) -> tuple[int, int, int]:
        """The last hour's events, new targets, and ten-minute blocks with events, as of the
        window ending at `now`: that window's ten-minute block of the clock and the five before
        it."""
        ring = self.ring
        if ring is None:
            return 0, 0, 0
        events = len(ring) - 2 * HOUR_BLOCKS
        targets = events + HOUR_BLOCKS
        block = int((int(now // window_s) - 1) * window_s // RING_S)
        newest = int(int(self.numbers[RING_INDEX]) * window_s // RING_S)
        if block <= newest:  # the usual case: updated for this window
            counts = ring[events:targets]
            return sum(counts), sum(ring[targets:]), HOUR_BLOCKS - counts.count(0)
        steps = [step % HOUR_BLOCKS for step in range(block - HOUR_BLOCKS + 1, newest + 1)]
        return (
            sum(ring[events + i] for i in steps),
            sum(ring[targets + i] for i in steps),
            sum(ring[events + i] > 0 for i in steps),
        )

    def gap_cv(self) -> float:
        """Coefficient of variation of the gaps between events: ~1 at random, ~0 scripted."""
        v = self.numbers
        mean = v[GAP_MEAN]
        if v[GAPS] < 10 or mean <= 0:  # fewer gaps say little about a rhythm
            return 1.0
        variance = max(0.0, v[GAP_SQ] - mean**2)
        return min(3.0, math.sqrt(variance) / mean)

    def age_days(self, now: float) -> float | None:
        created_at = self.created_at
        return None if created_at is None else max(0.0, (now - created_at) / DAY)

    def features(self, now: float, window_s: float = 60.0) -> dict[str, float]:
        """The behaviour features as of the window ending at `now`, in natural units."""
        age = self.age_days(now)
        v = self.numbers
        events_1h, new_targets_1h, blocks_1h = self.hour(now, window_s)
        return {
            "events_10m": float(self.ring_sum(0, now, window_s)),
            "events_1h": float(events_1h),
            "events_24h": v[RATE_24H],
            "gap_cv": self.gap_cv(),
            "new_targets_10m": float(self.ring_sum(1, now, window_s)),
            "new_targets_1h": float(new_targets_1h),
            "new_target_share": v[NEW_TARGET_SHARE],
            "dup_share": v[DUP_SHARE],
            "link_share": v[LINK_SHARE],
            "new_domains_1h": v[NEW_DOMAINS_1H],
            "age_days": 1000.0 if age is None else age,
            "reporters_24h": v[REPORTERS_24H],
            "reports_filed_1h": v[REPORTS_FILED_1H],
            "message_share": v[_SHARE_OF["message"]],
            "share_share": v[_SHARE_OF["share"]],
            "comment_share": v[_SHARE_OF["comment"]],
            "blocks_1h": float(blocks_1h),
        }


_SLOT_VALUES = operator.attrgetter(*ActorState.__slots__)
_ARRAY_INDEXES = [(ActorState.__slots__.index(name), code) for name, code in _ARRAY_SLOTS.items()]


@functools.cache
def _equal_needed(width: int) -> int:
    """The fewest equal bytes of two signatures of `width` bytes whose `similarity` is at
    least NEAR_DUPLICATE (width + 1 when none): the similarity grows with that count alone."""
    for equal in range(width + 1):
        if similarity(bytes(width), bytes(equal) + b"\x01" * (width - equal)) >= NEAR_DUPLICATE:
            return equal
    return width + 1


@functools.cache
def _zeros(n: int) -> array[int]:
    """n zero counts, to clear a run of ring slots in one assignment."""
    return array("I", [0]) * n


_DUP_KEEP = (1 - DUP_ALPHA) ** 1  # _blend's `keep` of one text


def _blend(share: float, value: float, n: int, alpha: float = SHARE_ALPHA) -> float:
    """An exponentially weighted share after `n` events whose mean is `value`."""
    keep = (1 - alpha) ** n
    return keep * share + (1 - keep) * value
