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
>>> for i in range(3):
...     collector.add(ContentEvent(event_id=f"e{i}", ts=f"1970-01-01T00:00:1{i}Z",
...         actor_id="u1", kind="message", target_id=f"u{10 + i}",
...         text="win a free phone at prize.example now", links=["https://prize.example/a"],
...         actor_created_at="1970-01-01T00:00:00Z"), 0.0) is not None  # the text's signature
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

import heapq
import math
import operator
import zlib
from array import array
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from detectors.events import ContentEvent, Event, ReportEvent
from detectors.text import signature, similarity

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
NEAR_DUPLICATE = 0.5  # estimated Jaccard similarity at which two texts are near-identical
SHARE_ALPHA = 0.1  # learning rate per event of the share features
DUP_ALPHA = 0.2  # per text: four near-identical texts in a row make a share over one half
GAP_ALPHA = 0.1
MAX_GAP_S = 3600.0  # longer pauses are breaks between sessions, not gaps
HOUR, DAY = 3600.0, 86400.0
KINDS = ("post", "comment", "message", "share")
FEATURES = (
    "events_10m",  # events in the last 10 minutes
    "events_24h",  # events, decaying over a day
    "gap_cv",  # variation of the gaps between events: ~1 at random, ~0 on a schedule
    "new_targets_10m",  # accounts addressed for the first time in the last 10 minutes
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

    def to_wire(self) -> list[Any]:
        return [
            self.events,
            self.times,
            self.kinds,
            self.surfaces,
            self.targeted,
            self.targets,
            [[eid, sig.hex()] for eid, sig in self.texts],
            self.linked,
            self.domains,
            self.created_at,
            self.reports_filed,
            self.reports_received,
            self.reporters,
            self.reasons,
            self.sample_ids,
        ]

    @classmethod
    def from_wire(cls, data: list[Any]) -> Activity:
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


@dataclass(frozen=True)
class ActorPartial:
    """One partition's summary of one actor in one closed window."""

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
        actors = self.open.setdefault(window_start, {})
        activity = actors.get(actor)
        if activity is None:
            activity = actors[actor] = Activity()
        return activity

    def add(self, event: Event, window_start: float) -> bytes | None:
        """Count one event (already deduplicated, not late) in the window starting there;
        returns the signature of its text, when it has one that was computed."""
        if isinstance(event, ContentEvent):
            return self._content(event, window_start)
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

    def _content(self, event: ContentEvent, window_start: float) -> bytes | None:
        a = self._activity(window_start, event.actor_id)
        a.events += 1
        if len(a.times) < MAX_TIMES:
            a.times.append(event.ts)
        _add_count(a.kinds, event.kind)
        _add_count(a.surfaces, event.surface)
        if event.target_id is not None:
            a.targeted += 1
            if len(a.targets) < MAX_TARGETS and event.target_id not in a.targets:
                a.targets.append(event.target_id)
        sig = None
        if event.text and len(a.texts) < MAX_TEXTS:
            sig = signature(event.text)
            if sig is not None:
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


def _remember(
    recent: array[int] | None, values: list[str], limit: int
) -> tuple[array[int] | None, int]:
    """Add the values' hashes to a bounded ring of recent ones, made on first use (most actors
    never need one); returns the ring and how many values were not in it."""
    if not values:
        return recent, 0
    if recent is None:
        recent = array("I")
    new = 0
    for value in values:
        hashed = _hash(value)
        if hashed not in recent:
            new += 1
            recent.append(hashed)
            if len(recent) > limit:
                del recent[0]
    return recent, new


_ARRAY_SLOTS = {  # the typecode of each array slot of ActorState
    "kind_shares": "d",
    "recent_domains": "I",
    "recent_reporters": "I",
    "recent_targets": "I",
    "ring_events": "I",
    "ring_targets": "I",
}


class ActorState:
    """What stage 2 keeps about one actor between windows: bounded, and cheap to update.

    Counters decay in event time; the "last 10 minutes" figures come from a ring of
    per-window counts, so summaries can say exact numbers.
    """

    __slots__ = (
        "created_at",
        "dup_share",
        "episode",
        "events_total",
        "first_t",
        "gap_mean",
        "gap_sq",
        "gaps",
        "kind_shares",
        "last_event",
        "last_t",
        "link_share",
        "new_domains_1h",
        "new_target_share",
        "rate_24h",
        "reasons",
        "recent_domains",
        "recent_reporters",
        "recent_targets",
        "recent_texts",
        "reporters_24h",
        "reports_filed_1h",
        "ring_events",
        "ring_index",
        "ring_targets",
        "sample_ids",
        "surface",
    )

    def __init__(self) -> None:
        self.last_t = -math.inf  # end of the last window it was updated for
        self.first_t = math.inf
        self.events_total = 0
        self.rate_24h = 0.0
        self.ring_events: array[int] = array("I")
        self.ring_targets: array[int] = array("I")
        self.ring_index = 0  # window number of the newest ring slot
        self.last_event: float | None = None
        self.gaps = 0
        self.gap_mean = 0.0
        self.gap_sq = 0.0
        self.recent_targets: array[int] | None = None
        self.new_target_share = 0.0
        self.recent_texts = b""
        self.dup_share = 0.0
        self.link_share = 0.0
        self.recent_domains: array[int] | None = None
        self.new_domains_1h = 0.0
        self.created_at: float | None = None
        self.recent_reporters: array[int] | None = None
        self.reporters_24h = 0.0
        self.reasons: dict[str, int] | None = None  # of reports received; most get none
        self.reports_filed_1h = 0.0
        self.kind_shares = array("d", [0.0] * len(KINDS))
        self.surface = ""
        self.episode: Any = None  # the open alert episode, if any
        self.sample_ids: tuple[str, ...] = ()

    # Checkpoints pickle every actor's state: a flat tuple, arrays as their bytes, pickles
    # about three times faster than the default (a dict of slots, arrays by constructor).
    def __getstate__(self) -> list[Any]:
        values = list(_SLOT_VALUES(self))
        for i, _ in _ARRAY_INDEXES:
            if values[i] is not None:
                values[i] = values[i].tobytes()
        return values

    def __setstate__(self, state: list[Any]) -> None:
        for i, code in _ARRAY_INDEXES:
            if state[i] is not None:
                state[i] = array(code, state[i])
        for name, value in zip(self.__slots__, state, strict=True):
            setattr(self, name, value)

    # -- updating ------------------------------------------------------------------------
    def update(self, start: float, end: float, a: Activity) -> None:
        """Fold in the actor's activity of the window [start, end); windows come in order."""
        window_s = end - start
        elapsed = end - self.last_t if self.last_t > -math.inf else math.inf
        self.rate_24h = self.rate_24h * _decay(elapsed, DAY) + a.events
        self.new_domains_1h *= _decay(elapsed, HOUR)
        self.reporters_24h *= _decay(elapsed, DAY)
        self.reports_filed_1h = self.reports_filed_1h * _decay(elapsed, HOUR) + a.reports_filed
        self.first_t = min(self.first_t, start)
        self.last_t = end
        self.events_total += a.events
        if a.sample_ids:
            self.sample_ids = tuple(a.sample_ids)
        if a.created_at is not None:
            self.created_at = a.created_at

        self.recent_targets, new_targets = _remember(self.recent_targets, a.targets, RECENT_TARGETS)
        self._ring(start, window_s, a.events, new_targets)
        for t in a.times:
            if self.last_event is not None and 0 < t - self.last_event <= MAX_GAP_S:
                gap = t - self.last_event
                if self.gaps:
                    self.gap_mean += GAP_ALPHA * (gap - self.gap_mean)
                    self.gap_sq += GAP_ALPHA * (gap * gap - self.gap_sq)
                else:  # start from the first gap, so early estimates are not biased to zero
                    self.gap_mean, self.gap_sq = gap, gap * gap
                self.gaps += 1
            self.last_event = t
        if a.targeted:
            self.new_target_share = _blend(
                self.new_target_share, min(1.0, new_targets / a.targeted), a.targeted
            )
        for _, sig in a.texts:
            self.dup_share = _blend(self.dup_share, float(self._near_duplicate(sig)), 1, DUP_ALPHA)
        if a.events:
            self.link_share = _blend(self.link_share, a.linked / a.events, a.events)
            for i, kind in enumerate(KINDS):
                share = a.kinds.get(kind, 0) / a.events
                self.kind_shares[i] = _blend(self.kind_shares[i], share, a.events)
            if a.surfaces:
                self.surface = max(sorted(a.surfaces), key=a.surfaces.__getitem__)
        self.recent_domains, new_domains = _remember(self.recent_domains, a.domains, RECENT_DOMAINS)
        self.new_domains_1h += new_domains
        self.recent_reporters, new_reporters = _remember(
            self.recent_reporters, a.reporters, RECENT_REPORTERS
        )
        self.reporters_24h += new_reporters
        if a.reasons:
            reasons = self.reasons or {}
            for reason, n in a.reasons.items():
                _add_count(reasons, reason, n)
            # Keep the main reasons only.
            self.reasons = dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:4])

    def _ring(self, start: float, window_s: float, events: int, new_targets: int) -> None:
        size = max(1, math.ceil(RING_S / window_s))
        index = int(start // window_s)
        if not self.ring_events:
            self.ring_events = array("I", bytes(4 * size))
            self.ring_targets = array("I", bytes(4 * size))
        else:
            for step in range(self.ring_index + 1, min(index, self.ring_index + size) + 1):
                self.ring_events[step % size] = 0
                self.ring_targets[step % size] = 0
        self.ring_index = max(index, self.ring_index)
        self.ring_events[index % size] = events
        self.ring_targets[index % size] = new_targets

    def _near_duplicate(self, sig: bytes) -> bool:
        width = len(sig)
        texts = self.recent_texts
        duplicate = any(
            similarity(sig, texts[i : i + width]) >= NEAR_DUPLICATE
            for i in range(0, len(texts), width)
        )
        self.recent_texts = (texts + sig)[-RECENT_TEXTS * width :]
        return duplicate

    # -- reading -------------------------------------------------------------------------
    def ring_sum(self, ring: array[int], now: float, window_s: float) -> int:
        """The last 10 minutes' total of a ring, as of the window ending at `now`."""
        size = len(ring)
        if not size:
            return 0
        newest = int(now // window_s) - 1
        stale = newest - self.ring_index
        if stale >= size:
            return 0
        return sum(ring[(self.ring_index - i) % size] for i in range(size - max(stale, 0)))

    def gap_cv(self) -> float:
        """Coefficient of variation of the gaps between events: ~1 at random, ~0 scripted."""
        if self.gaps < 10 or self.gap_mean <= 0:  # fewer gaps say little about a rhythm
            return 1.0
        variance = max(0.0, self.gap_sq - self.gap_mean**2)
        return min(3.0, math.sqrt(variance) / self.gap_mean)

    def age_days(self, now: float) -> float | None:
        return None if self.created_at is None else max(0.0, (now - self.created_at) / DAY)

    def features(self, now: float, window_s: float = 60.0) -> dict[str, float]:
        """The behaviour features as of the window ending at `now`, in natural units."""
        age = self.age_days(now)
        kinds = dict(zip(KINDS, self.kind_shares, strict=True))
        return {
            "events_10m": float(self.ring_sum(self.ring_events, now, window_s)),
            "events_24h": self.rate_24h,
            "gap_cv": self.gap_cv(),
            "new_targets_10m": float(self.ring_sum(self.ring_targets, now, window_s)),
            "new_target_share": self.new_target_share,
            "dup_share": self.dup_share,
            "link_share": self.link_share,
            "new_domains_1h": self.new_domains_1h,
            "age_days": 1000.0 if age is None else age,
            "reporters_24h": self.reporters_24h,
            "reports_filed_1h": self.reports_filed_1h,
            "message_share": kinds["message"],
            "share_share": kinds["share"],
            "comment_share": kinds["comment"],
        }


_SLOT_VALUES = operator.attrgetter(*ActorState.__slots__)
_ARRAY_INDEXES = [(ActorState.__slots__.index(name), code) for name, code in _ARRAY_SLOTS.items()]


def _decay(elapsed: float, tau: float) -> float:
    return math.exp(-elapsed / tau) if elapsed < math.inf else 0.0


def _blend(share: float, value: float, n: int, alpha: float = SHARE_ALPHA) -> float:
    """An exponentially weighted share after `n` events whose mean is `value`."""
    keep = (1 - alpha) ** n
    return keep * share + (1 - keep) * value
