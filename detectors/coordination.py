"""Coordinated behaviour: near-duplicate content campaigns, link campaigns and report brigades.

Groups are found as they happen, in three stages that share the windows of the rate signals:

1. `CoordinationCollector`, per input partition, turns each event into rows keyed by what
   groups it with others: a text into one row per LSH band of its MinHash signature (texts
   that agree on all `ROWS` values of a band share its bucket), a link into a row per
   domain, a report into a row keyed by the reported account.
2. `CoordinationIndex`, per partition of the repartitioned topic (rows are routed by key, so
   each bucket, domain and target lives in one place), keeps each key's rows for a sliding
   event-time window and, when a window closes, proposes every key touched in it that has
   enough distinct actors as a `Candidate`. Domains only count while they are new; a new
   domain also keeps its rows for hours, and is proposed over them when it gathers enough
   accounts too slowly for the sliding window (a slow campaign).
3. `Coordinator`, one for the whole topology (its input is a few candidates a window), waits
   until every index has closed a window, then folds candidates into campaigns (the bands of
   one cluster, and buckets sharing most members, are one campaign) and brigades (one per
   reported account, compared with the other recent brigades for the same reporters), and
   decides with explicit indicators whether they look coordinated.

A campaign is one `content_campaign` alert (entity `campaign`) that is updated as it grows;
a brigade is one `report_brigade` alert (entity `target`) that says whether it looks
coordinated (abuse by the reporters) or like an organic wave (review the reported content,
severity `info`).

Collision probability of two texts with Jaccard similarity J in at least one band:
1 - (1 - J^4)^8, so 0.98 at J = 0.8, 0.65 at 0.6 and 0.06 at 0.3.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Literal
from zlib import crc32

import msgspec
import numpy as np

from detectors import synchrony
from detectors.actor_features import domain_of
from detectors.alerts import Alert, alert_id, required
from detectors.events import ContentEvent, Event, ReportEvent, format_rfc3339
from detectors.synchrony import SCHEDULE
from detectors.text import shingles, similarities
from detectors.windows import close_windows, next_due

BANDS = 8
ROWS = 4  # signature bytes per band; BANDS * ROWS = the signature's 32 bytes
SAMPLE_CHARS = 120
SAMPLES = 3
SAMPLE_IDS = 5
MAX_LISTED = 50  # members or reporters listed in full in an alert
MAX_FOLDED = 100_000  # folded actor alerts remembered until they resolve
COMPARED = 16  # a bucket's most frequent texts, among which its reference text is chosen
COHERENT = 0.4  # estimated Jaccard similarity to the reference that keeps a text in a bucket
# Words and word pairs a text must share with a bucket's reference text to be kept: more than
# two short phrases of common words share ("going with the", "with the brand": 3).
MIN_SHARED = 4
DAY = 86400.0
# Share of reporters under `young_days` that is a cue: higher than for posters, because
# young accounts file many of the reports anywhere (about 30% of them in the simulator).
YOUNG_REPORTERS = 0.7
# Share of a group's accounts posting from a device another member also used: organic
# accounts each have their own, accounts run by one operator share a few.
SHARED_DEVICES = 0.3

CAMPAIGN = "content_campaign"
BRIGADE = "report_brigade"


@dataclass(frozen=True)
class CoordinationConfig:
    window_s: float = 60.0
    campaign_window_s: float = 1800.0  # how long a bucket or domain keeps its rows
    min_actors: int = 8  # distinct accounts in a bucket or new domain to propose a campaign
    campaign_threshold: float = 3.0
    young_days: float = 30.0
    tight_s: float = 600.0  # twice `min_actors` accounts within this span: tight timing
    new_domain_s: float = DAY  # a domain is new this long after it is first seen
    # How long a new domain keeps its rows for slow campaigns; at most `campaign_window_s`: off.
    domain_window_s: float = 7200.0
    domain_warmup_s: float = 3600.0  # domains seen this early on are taken as established
    brigade_window_s: float = 1800.0
    min_reporters: int = 15
    brigade_tight_s: float = 300.0
    lockstep_s: float = 7200.0  # how far back brigades are compared for shared reporters
    lockstep_overlap: float = 0.3
    cooldown_s: float = 1800.0  # a group resolves after this long without growing
    growth: float = 1.5  # an update when members reach this multiple of the last alert's
    member_overlap: float = 0.3  # share of a candidate's actors already in a campaign to join it
    organic_reporters: int = 30  # reporters for an alert on a wave that does not look coordinated
    max_keys: int = 200_000  # per index: buckets, domains and targets held
    max_rows: int = 500  # per key
    # Synchronised accounts (detectors/synchrony.py).
    synchrony_horizon_s: float = 10800.0  # how far back an author's activity times are kept
    synchrony_slot_s: float = 30.0  # times in one slot are taken as simultaneous
    synchrony_min_slots: int = 5  # distinct slots in the horizon for an author's schedule
    min_synchronised: int = 5  # accounts keeping one schedule to propose a group
    synchrony_similarity: float = 0.5  # Jaccard similarity of slots to the group's schedule
    synchrony_cooldown_s: float = 3600.0  # a group resolves after this long out of step
    max_schedules: int = 200_000  # per input partition: authors whose times are kept


# The kinds of rows: see `Row.kind`.
RowKind = Literal["text", "link", "report", "schedule"]
KINDS: tuple[RowKind, ...] = ("text", "link", "report", SCHEDULE)


class Row(msgspec.Struct, frozen=True, array_like=True, order=True, gc=False):
    """One event and the keys it is grouped by (all of them in stage 1; those an index owns
    once routed). One row object serves all its keys.

    A frozen msgspec struct, as `windows.Partial`: made for every event and routed key, and
    held by the index by the hundred thousand; an array of its fields on the wire and in
    checkpoints, as the named tuple it was (the same bytes). It holds only strings, numbers
    and tuples of strings, so the garbage collector need not track it."""

    # "text" (keys: LSH buckets), "link" (keys: domains), "report" (key: target) or "schedule"
    # (keys: LSH buckets of an author's activity slots, detectors/synchrony.py): a literal, so
    # that the rows read from the wire or a checkpoint share the one string
    kind: RowKind
    keys: tuple[str, ...]
    ts: float
    actor: str  # who posted, or who reported
    event_id: str
    created_at: float | None  # the actor's account creation, when known
    detail: str  # a text sample, the report's reason, or a schedule's times
    domains: tuple[str, ...] = ()
    sig: bytes = b""  # the text's signature
    device: str = ""  # the poster's device hash (`attrs.device_hash`), when given

    def routes(self) -> list[str]:
        """The routing keys: rows sharing one meet in the same index."""
        return [route(self.kind, key) for key in self.keys]

    def owners(self, partitions: int) -> Mapping[int, Sequence[str]]:
        """The indexes owning some of the row's keys, each with its keys."""
        # `index_for` of each route, without making the routes: this runs for every key of
        # every row, and the CRC of "kind:" is the same for all of a row's keys.
        kind, keys = self.kind, self.keys
        seed = _KIND_CRC.get(kind)
        if seed is None:
            seed = crc32(f"{kind}:".encode())
        if len(keys) == 1:
            return {crc32(keys[0].encode(), seed) % partitions: keys}
        owned: dict[int, list[str]] = {}
        for key in keys:
            partition = crc32(key.encode(), seed) % partitions
            found = owned.get(partition)
            if found is None:
                owned[partition] = [key]
            else:
                found.append(key)
        return owned


def held_rows(found: Row | list[Row]) -> list[Row]:
    """The rows of a key of the index: its one row, or its list."""
    return found if isinstance(found, list) else [found]


def route(kind: str, key: str) -> str:
    """The routing key of one of a row's keys."""
    return f"{kind}:{key}"


def index_for(route: str, partitions: int) -> int:
    """The index (partition of the repartitioned topic) that owns a routing key. Rows are
    many, so a cheap hash rather than Kafka's murmur2: any stable function would do."""
    return crc32(route.encode()) % partitions


# The CRC of each kind's route prefix, which `Row.owners` continues over the key.
_KIND_CRC = {kind: crc32(f"{kind}:".encode()) for kind in KINDS}


def bands(sig: bytes) -> list[str]:
    """The LSH bucket keys of a signature, one per band.

    >>> bands(bytes(range(32)))[:2]
    ['0:00010203', '1:04050607']
    """
    digits = sig.hex()
    return [f"{b}:{digits[i:j]}" for b, i, j in _BAND_DIGITS]


# Each band and where its hex digits are in the signature's.
_BAND_DIGITS = tuple((b, 2 * ROWS * b, 2 * ROWS * (b + 1)) for b in range(BANDS))


class CoordinationCollector:
    """Stage 1 for one input partition: the rows of each open window."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.open: dict[float, list[Row]] = {}

    def add(self, event: Event, window_start: float, sig: bytes | None) -> None:
        """Add one counted event; `sig` is its text's signature, when it has one."""
        rows = self.open.get(window_start)
        if rows is None:
            rows = self.open[window_start] = []
        if isinstance(event, ContentEvent):
            links, attrs = event.links, event.attrs
            domains = tuple(sorted({domain_of(link) for link in links}))[:4] if links else ()
            if sig is None and not domains:
                return
            ts, actor, event_id, created = (
                event.ts, event.actor_id, event.event_id, event.actor_created_at
            )  # fmt: skip
            device = attrs.get("device_hash", "") if attrs else ""
            if sig is not None:
                sample = " ".join((event.text or "").split())[:SAMPLE_CHARS]
                keys = tuple(bands(sig))
                rows.append(
                    Row("text", keys, ts, actor, event_id, created, sample, domains, sig, device)
                )
            if domains:
                rows.append(Row("link", domains, ts, actor, event_id, created, "", (), b"", device))
        elif isinstance(event, ReportEvent):
            rows.append(
                Row(
                    "report",
                    (event.target_actor_id,),
                    event.ts,
                    event.reporter_id,
                    event.event_id,
                    event.reporter_created_at,
                    event.reason,
                )
            )

    def close(self, closed_until: float) -> list[tuple[float, Row]]:
        """(window start, row) of every window ending at or before `closed_until`."""
        out: list[tuple[float, Row]] = []
        for start in sorted(s for s in self.open if s < closed_until):
            out.extend((start, row) for row in self.open.pop(start))
        return out


def schedule_rows(
    closed: list[tuple[float, tuple[str, synchrony.Active, list[int]]]], slot_s: float
) -> list[tuple[float, Row]]:
    """The rows of the schedules a stage-1 close found (`Schedules.close`): their slots'
    signatures in one vectorised step."""
    sigs = synchrony.signatures([times for _, (_, _, times) in closed], slot_s) if closed else []
    out = []
    for (start, (author, last, times)), sig in zip(closed, sigs, strict=True):
        event_id, created_at, device = last
        row = Row(SCHEDULE, synchrony.bands(sig), float(times[-1]), author, event_id,
                  created_at, synchrony.encode(times), (), sig, device)  # fmt: skip
        out.append((start, row))
    return out


def _kind(value: Any) -> RowKind:
    for kind in KINDS:
        if value == kind:
            return kind
    raise ValueError(f"not a kind of row: {value!r}")


def row_from_wire(data: list[Any]) -> tuple[float, Row]:
    """A row as the internal topic's JSON messages of the version before held it."""
    start, kind, keys, ts, actor, event_id, created, detail, domains, sig, device = data
    created_at = None if created is None else float(created)
    row = Row(_kind(kind), tuple(str(k) for k in keys), float(ts), str(actor), str(event_id),
              created_at, str(detail), tuple(str(d) for d in domains), bytes.fromhex(sig),
              str(device))  # fmt: skip
    return float(start), row


@dataclass(frozen=True)
class Candidate:
    """A key with enough distinct actors in its sliding window, as one index saw it."""

    kind: str
    key: str
    window_start: float
    actors: tuple[str, ...]  # distinct, sorted
    young: tuple[str, ...]  # those whose accounts were younger than `young_days`
    aged: int  # actors whose account age is known
    shared_devices: int  # actors posting from a device another member also posted from
    recent: int  # actors with rows in the last `tight_s` of the window
    events: int
    first_ts: float
    last_ts: float
    span_s: float  # from the 10th to the 90th percentile of the rows' times
    sample_ids: tuple[str, ...]
    samples: tuple[str, ...]  # texts (text) or nothing
    domains: dict[str, int]  # rows carrying each domain (text and link)
    reasons: dict[str, int]  # rows per reason (report)
    schedule: tuple[float, ...] = ()  # the times most members acted at (schedule)
    # How long the index had watched before most of the rows (their 10th percentile): a span
    # is only tight if the quiet before it was seen.
    watched_s: float = math.inf

    @property
    def route(self) -> str:
        return f"{self.kind}:{self.key}"

    def to_wire(self) -> list[Any]:
        return [self.kind, self.key, self.window_start, list(self.actors), list(self.young),
                self.aged, self.shared_devices, self.recent, self.events, self.first_ts, self.last_ts, self.span_s,
                list(self.sample_ids), list(self.samples), self.domains, self.reasons,
                list(self.schedule), self.watched_s]  # fmt: skip

    @classmethod
    def from_wire(cls, data: list[Any]) -> Candidate:
        (kind, key, start, actors, young, aged, shared, recent, events, first, last, span,
         ids, samples, domains, reasons, *more) = data  # fmt: skip
        # Absent from candidates sent before each was.
        schedule = more[0] if more else ()
        watched = more[1] if len(more) > 1 else math.inf
        return cls(
            kind=str(kind),
            key=str(key),
            window_start=float(start),
            actors=tuple(str(a) for a in actors),
            young=tuple(str(a) for a in young),
            aged=int(aged),
            shared_devices=int(shared),
            recent=int(recent),
            events=int(events),
            first_ts=float(first),
            last_ts=float(last),
            span_s=float(span),
            sample_ids=tuple(str(i) for i in ids),
            samples=tuple(str(s) for s in samples),
            domains={str(k): int(v) for k, v in domains.items()},
            reasons={str(k): int(v) for k, v in reasons.items()},
            schedule=tuple(float(t) for t in schedule),
            watched_s=float(watched),
        )


@dataclass
class IndexClosed:
    candidates: list[Candidate] = field(default_factory=list)
    windows: int = 0
    late: int = 0
    evicted: int = 0


class CoordinationIndex:
    """Stage 2: the keys routed to one partition, each with its recent rows."""

    def __init__(self, config: CoordinationConfig) -> None:
        self.config = config
        # Each key's rows in time order; least recently touched keys first. Most keys only
        # ever hold one row: that row alone, with no list (a list a key was half of all the
        # objects the garbage collector traversed); a list from the second row on. Lists, not
        # deques: an empty deque alone takes over 600 bytes.
        self.keys: OrderedDict[str, Row | list[Row]] = OrderedDict()
        self.domains_seen: OrderedDict[str, float] = OrderedDict()  # domain -> first seen
        # Each new domain's rows for `domain_window_s` by route, least recently touched first.
        self.new_domains: OrderedDict[str, list[Row]] = OrderedDict()
        # Each open window's rows by route: the row, or rows by event id when several events
        # share the route in the window (a bucket most often holds one event a window, and a
        # row alone costs no allocation where a (route, event id) key would).
        self.pending: dict[float, dict[str, Row | dict[str, Row]]] = {}
        self.closed_until = -math.inf
        self.first = -math.inf

    def __len__(self) -> int:
        return len(self.keys)

    def rows_held(self) -> int:
        held = chain(self.keys.values(), self.new_domains.values())
        return sum(len(found) if isinstance(found, list) else 1 for found in held)

    def rows(self, route: str) -> list[Row]:
        """The rows a key holds, oldest first."""
        return held_rows(self.keys.get(route, []))

    def add(self, start: float, row: Row, keys: Sequence[str] | None = None) -> int:
        """Add one row of a window under `keys` (those this index owns; all by default);
        returns 1 if the window had closed. Idempotent."""
        if start + self.config.window_s <= self.closed_until:
            return 1
        pending = self.pending.get(start)
        if pending is None:
            pending = self.pending[start] = {}
        prefix, event_id = f"{row.kind}:", row.event_id
        for key in row.keys if keys is None else keys:
            route = prefix + key
            found = pending.setdefault(route, row)  # most routes: the row is the first
            if found is row:
                continue
            if isinstance(found, dict):
                found[event_id] = row
            elif found.event_id == event_id:
                pending[route] = row
            else:
                pending[route] = {found.event_id: found, event_id: row}
        return 0

    def close(self, first: float, until: float) -> IndexClosed:
        """Close every window from `first` that ends by `until`, as the actor windows close."""
        closed = IndexClosed()
        window_s = self.config.window_s
        if until == -math.inf:
            return closed
        if self.closed_until == -math.inf:
            self.closed_until = self.first = first
        for start in [s for s in self.pending if s < self.closed_until]:
            closed.late += sum(_rows(found) for found in self.pending.pop(start).values())
        self.closed_until = close_windows(
            self.closed_until,
            until,
            window_s,
            lambda a, b: self._close(a, b, closed),
            lambda start: next_due(start, bool(self.keys or self.new_domains), self.pending),
        )
        return closed

    def _close(self, start: float, end: float, closed: IndexClosed) -> None:
        cfg = self.config
        closed.windows += 1
        rows = self.pending.pop(start, {})
        keys, max_keys, max_rows = self.keys, cfg.max_keys, cfg.max_rows
        slow = cfg.domain_window_s > cfg.campaign_window_s
        # The routes come in order: the keys touched, in order, with no set to sort. Nearly
        # all are new keys with one row, too few for a candidate: those are added at once, in
        # order, and not looked at again; the loop takes the others. (When keys would be
        # evicted, the loop takes them all, so that each eviction is of the same key.)
        touched: list[str] = []
        single = {kind: self._wanted(kind) > 1 for kind in KINDS}
        ordered = sorted(rows)
        quiet = {kind for kind, needs_more in single.items() if needs_more and kind != "link"}
        held_now = rows.keys() & keys.keys()
        added: list[tuple[str, Row]] = []
        others: list[str] = []
        for route in ordered:
            found = rows[route]
            if route not in held_now and isinstance(found, Row) and found.kind in quiet:
                added.append((route, found))
            else:
                others.append(route)
        if len(keys) + len(added) < max_keys:
            keys.update(added)
            ordered = others
        for route in ordered:
            found = rows[route]
            for row in [found[i] for i in sorted(found)] if isinstance(found, dict) else (found,):
                if row.kind == "link":
                    if not self._new_domain(route[5:], start):
                        continue
                    if slow:
                        self._keep_domain_row(route, row)
                held = keys.get(route)
                if held is None:
                    if len(keys) >= max_keys:
                        closed.evicted += self._make_room()
                    keys[route] = row
                    if single[row.kind] and not (slow and row.kind == "link"):
                        continue
                elif isinstance(held, list):
                    keys.move_to_end(route)
                    held.append(row)
                    if len(held) > 2 * max_rows:
                        del held[:-max_rows]
                else:
                    keys.move_to_end(route)
                    keys[route] = [held, row]
                if not touched or touched[-1] != route:
                    touched.append(route)
        # Rows are kept for `brigade_window_s` (reports) or `campaign_window_s` (the others).
        brigade_from, campaign_from = end - cfg.brigade_window_s, end - cfg.campaign_window_s
        for route in touched:
            entry = keys.get(route)
            if entry is None:
                continue  # evicted for a key that came after it in this window
            held = held_rows(entry)
            report = held[0].kind == "report"
            horizon = brigade_from if report else campaign_from
            if held[0].ts < horizon:
                held = [row for row in held if row.ts >= horizon]
                keys[route] = held[0] if len(held) == 1 else held
            # `_candidate` wants as many rows: most keys hold one, so ask it only then.
            candidate = None
            if held and len(held) >= self._wanted(held[0].kind):
                candidate = self._candidate(route, held[-max_rows:], start)
            if candidate is None and slow and held and held[0].kind == "link":
                candidate = self._over_hours(route, start, end - cfg.domain_window_s)
            if candidate is not None:
                closed.candidates.append(candidate)
        expired = []
        for route, entry in keys.items():
            last = entry if not isinstance(entry, list) else entry[-1] if entry else None
            if last is not None:
                horizon = brigade_from if last.kind == "report" else campaign_from
                if last.ts >= horizon:
                    break
            expired.append(route)
        for route in expired:
            del keys[route]
        domain_from = end - cfg.domain_window_s
        expired = []
        for route, held in self.new_domains.items():
            if held and held[-1].ts >= domain_from:
                break
            expired.append(route)
        for route in expired:
            del self.new_domains[route]

    def _keep_domain_row(self, route: str, row: Row) -> None:
        """Keep a new domain's row for `domain_window_s` too."""
        held = self.new_domains.get(route)
        if held is None:
            while len(self.new_domains) >= self.config.max_keys:
                self.new_domains.popitem(last=False)
            self.new_domains[route] = [row]
            return
        self.new_domains.move_to_end(route)
        held.append(row)
        if len(held) > 2 * self.config.max_rows:
            del held[: -self.config.max_rows]

    def _over_hours(self, route: str, start: float, since: float) -> Candidate | None:
        """A new domain's candidate over the rows it kept since `since`: accounts sharing it
        too slowly for the sliding window. The coordinator tells it by its first row."""
        held = self.new_domains.get(route)
        if held is None:
            return None
        if held[0].ts < since:
            held[:] = [row for row in held if row.ts >= since]
        if len(held) < self.config.min_actors:
            return None
        return self._candidate(route, held[-self.config.max_rows :], start)

    def _make_room(self) -> int:
        evicted = 0
        while len(self.keys) >= self.config.max_keys:
            self.keys.popitem(last=False)
            evicted += 1
        return evicted

    def _new_domain(self, domain: str, start: float) -> bool:
        cfg = self.config
        first = self.domains_seen.pop(domain, start)
        self.domains_seen[domain] = first  # most recently seen last
        while len(self.domains_seen) > cfg.max_keys:
            self.domains_seen.popitem(last=False)
        return first >= self.first + cfg.domain_warmup_s and start - first <= cfg.new_domain_s

    def _wanted(self, kind: str) -> int:
        """Distinct accounts a key needs to propose a group."""
        cfg = self.config
        if kind == "report":
            return cfg.min_reporters
        return cfg.min_synchronised if kind == SCHEDULE else cfg.min_actors

    def _candidate(self, route: str, held: list[Row], start: float) -> Candidate | None:
        cfg = self.config
        kind = held[0].kind
        wanted = self._wanted(kind)
        if len(held) < wanted or len({row.actor for row in held}) < wanted:
            return None
        schedule: tuple[float, ...] = ()
        if kind == "text":
            rows = self._coherent(held)
        elif kind == SCHEDULE:
            rows, schedule = self._synchronised(held)
        else:
            rows = held
        created: dict[str, float | None] = {}
        for row in rows:
            if created.get(row.actor) is None:
                created[row.actor] = row.created_at
        if len(created) < wanted:
            return None
        young = tuple(
            sorted(
                actor
                for actor, at in created.items()
                if at is not None and start - at < cfg.young_days * DAY
            )
        )
        # A schedule's rows are its members' latest: the group's times are those it keeps.
        times = list(schedule) if schedule else sorted(row.ts for row in rows)
        samples: list[str] = []
        for row in sorted(rows, key=lambda r: r.event_id):
            if kind == "text" and row.detail not in samples and len(samples) < SAMPLES:
                samples.append(row.detail)
        key = route.split(":", 1)[1]
        domains: Counter[str] = Counter()
        if kind == "link":
            domains[key] = len(rows)
        else:
            domains.update(d for row in rows for d in row.domains)
        reasons = Counter(row.detail for row in rows) if kind == "report" else Counter()
        users: dict[str, set[str]] = {}
        for row in rows:
            if row.device:
                users.setdefault(row.device, set()).add(row.actor)
        shared = set().union(*(actors for actors in users.values() if len(actors) > 1))
        return Candidate(
            kind=kind,
            key=key,
            window_start=start,
            actors=tuple(sorted(created)),
            young=young,
            aged=sum(1 for at in created.values() if at is not None),
            shared_devices=len(shared),
            recent=len({row.actor for row in rows if row.ts >= start + cfg.window_s - cfg.tight_s}),
            events=len(rows),
            first_ts=times[0],
            last_ts=times[-1],
            span_s=_span(times),
            sample_ids=tuple(sorted(row.event_id for row in rows)[:SAMPLE_IDS]),
            samples=tuple(samples),
            domains=dict(domains.most_common(5)),
            reasons=dict(sorted(reasons.items())),
            schedule=schedule[-synchrony.MAX_LISTED :],
            watched_s=times[len(times) // 10] - self.first,
        )

    def _synchronised(self, held: list[Row]) -> tuple[list[Row], tuple[float, ...]]:
        """The accounts keeping the bucket's most typical schedule, each by its latest row,
        and the schedule they share (detectors/synchrony.py).

        Sharing a bucket is evidence, not proof: accounts active in the same busy minutes can
        share a band by chance. So their slots are compared whole, against the schedule most
        similar to the others among the most recent.
        """
        cfg, slot_s = self.config, self.config.synchrony_slot_s
        latest = {row.actor: row for row in sorted(held, key=lambda r: (r.ts, r.event_id))}
        rows = sorted(latest.values(), key=lambda r: r.actor)
        times = {row.actor: synchrony.decode(row.detail) for row in rows}
        slots = {actor: synchrony.elements(ts, slot_s) for actor, ts in times.items()}
        recent = sorted(rows, key=lambda r: (-r.ts, r.actor))[:COMPARED]
        reference = max(
            (row.actor for row in recent),
            key=lambda a: (sum(synchrony.similar(slots[a], s) for s in slots.values()), a),
        )
        near = [
            row
            for row in rows
            if synchrony.similar(slots[reference], slots[row.actor]) >= cfg.synchrony_similarity
        ]
        return near, tuple(synchrony.shared([times[row.actor] for row in near], slot_s))

    def _coherent(self, rows: list[Row]) -> list[Row]:
        """The rows whose text is near-identical to the bucket's most typical text.

        Sharing one band is evidence, not proof: short texts of common words can share a
        band by chance. So the texts are compared whole, against the one most similar to
        the others among the most frequent. And as the similarity of short texts rests on
        few words, a text is kept only if it shares at least `MIN_SHARED` words and word
        pairs with the reference: a short text is kept when it is the reference's, not when
        a few of its words are (at a busy platform's rates, "going with the" and "with the
        brand" are posted by enough accounts a minute). The words shared are counted
        exactly when both samples are whole (most short texts are), and estimated from the
        similarity otherwise.
        """
        common = [sig for sig, _ in Counter(row.sig for row in rows).most_common(COMPARED)]
        # Each text's similarities to the others summed in order, as `sum` would add them.
        totals = np.cumsum(similarities(common, common), axis=1)[:, -1].tolist()
        reference = max(zip(totals, common, strict=True))[1]
        samples = {row.sig: row.detail for row in rows}  # a text sample of each signature
        distinct = list(samples)
        theirs = shingles(samples[reference])
        whole = len(samples[reference]) < SAMPLE_CHARS
        near = set()
        for sig, j in zip(distinct, similarities([reference], distinct)[0].tolist(), strict=True):
            if j < COHERENT:
                continue
            ours = shingles(samples[sig])
            if whole and len(samples[sig]) < SAMPLE_CHARS:
                shared: float = len(theirs & ours)
            else:  # J |A ∪ B|, and |A ∪ B| = (|A| + |B|) / (1 + J)
                shared = j * (len(theirs) + len(ours)) / (1 + j)
            if shared >= MIN_SHARED:
                near.add(sig)
        return [row for row in rows if row.sig in near]


def _rows(found: Row | dict[str, Row]) -> int:
    """The rows of a route in a pending window."""
    return len(found) if isinstance(found, dict) else 1


def _span(times: list[float]) -> float:
    """From the 10th to the 90th percentile of sorted times: the spread of most of a group."""
    n = len(times)
    return times[min(n - 1, (9 * n) // 10)] - times[n // 10]


# -- stage 3 ----------------------------------------------------------------------------------
@dataclass
class _Group:
    """A campaign or a brigade: what its candidates have shown so far."""

    ident: str
    # "campaign", "synchronised" (a campaign of accounts keeping one schedule) or "brigade"
    kind: str
    started: float  # the window of its first candidate
    latest: dict[str, Candidate] = field(default_factory=dict)  # by route
    members: dict[str, bool] = field(default_factory=dict)  # actor -> young
    aged: set[str] = field(default_factory=set)
    also: set[str] = field(default_factory=set)  # brigades: other targets of the same reporters
    touched: float = -math.inf
    flagged: set[str] = field(default_factory=set)  # members whose own alerts were folded in
    fired: str | None = None  # the alert id, once raised
    severity: str = "info"
    emitted_members: int = 0
    emitted_also: int = 0

    def absorb(self, c: Candidate) -> None:
        self.latest[c.route] = c
        young = set(c.young)
        for actor in c.actors:
            self.members[actor] = self.members.get(actor, False) or actor in young
        # An actor's age is known when some row carried it: young ones always did.
        self.aged.update(c.young)
        if c.aged == len(c.actors):
            self.aged.update(c.actors)
        self.touched = c.window_start


@dataclass
class CoordinatorClosed:
    alerts: list[Alert] = field(default_factory=list)
    windows: int = 0
    late: int = 0
    folded: int = 0  # actor alerts folded into the campaign of their account


@dataclass(frozen=True)
class Assessment:
    score: float
    indicators: tuple[str, ...]
    coordinated: bool


class Coordinator:
    """Stage 3: candidates from every index in, campaigns and brigades out.

    `sources` stage-2 partitions report to it, each with two clocks: how far its coordination
    index has closed (with the candidates of those windows) and how far its actor windows have
    (with their actor alerts). A window's campaigns are assessed once every index has closed
    it; its actor alerts are then folded into them, or passed on, once every partition's actor
    windows have closed it too. A partition closes its index before its actor windows, the
    slower part of a close, so the campaigns do not wait for those. Windows are taken in order,
    each assessed only after the actor alerts of the one before were folded: the same
    campaigns, folds and alerts, in the same order, however the two clocks interleave.
    """

    def __init__(self, config: CoordinationConfig, sources: int) -> None:
        self.config = config
        self.sources = sources
        self.marks: dict[str, float] = {}  # of each source's index
        self.actor_marks: dict[str, float] = {}  # of each source's actor windows
        self.pending: dict[float, dict[str, Candidate]] = {}
        self.closed_until = -math.inf  # windows before it are assessed
        self.folded_until = -math.inf  # and those before it folded: one window behind at most
        self.groups: dict[str, _Group] = {}  # open campaigns and brigades by id
        self.owner: dict[str, str] = {}  # route -> campaign id
        self.recent: deque[tuple[float, str, frozenset[str]]] = deque()  # brigades' reporters
        self.actor_alerts: dict[float, list[Alert]] = {}  # by window start
        self.folded: set[str] = set()  # ids of actor alerts folded into campaigns

    def __len__(self) -> int:
        return len(self.groups)

    def add(
        self,
        source: str,
        candidates: Iterable[Candidate],
        closed_until: float,
        actor_alerts: Iterable[Alert] = (),
        actors_closed_until: float | None = None,
    ) -> CoordinatorClosed:
        """Take one source's candidates of the windows its index closed, up to
        `closed_until`, and its actor alerts of the windows its actor windows closed, up to
        `actors_closed_until` (the same as `closed_until` when not given). Actor alerts pass
        through once their window is taken, unless their account is a member of a campaign
        already raised: then they are folded into it.

        A source sends a window's candidates and alerts before its marks pass the window, so
        any for a window already taken were taken before: a replay sends them again. They
        are counted as late and dropped, alerts too, so that one folded the first time is not
        published the second."""
        closed = CoordinatorClosed()
        for alert in actor_alerts:
            start = alert.ts - self.config.window_s
            if start < self.folded_until:
                closed.late += 1
            else:
                self.actor_alerts.setdefault(start, []).append(alert)
        for c in candidates:
            if c.window_start + self.config.window_s <= self.closed_until:
                closed.late += 1
            else:
                self.pending.setdefault(c.window_start, {})[c.route] = c
        if actors_closed_until is None:
            actors_closed_until = closed_until
        self.marks[source] = max(self.marks.get(source, -math.inf), closed_until)
        self.actor_marks[source] = max(self.actor_marks.get(source, -math.inf), actors_closed_until)
        if len(self.marks) < self.sources:
            return closed
        until = min(self.marks.values())
        if until == -math.inf:
            return closed
        folding = min(self.actor_marks.values())
        window_s = self.config.window_s
        if self.closed_until == -math.inf:
            self.closed_until = self.folded_until = min([*self.pending, *self.actor_alerts, until])
        if self.folded_until < self.closed_until <= folding:  # the window assessed last time
            self._fold(self.folded_until, self.closed_until, closed)

        def close(start: float, end: float) -> None:
            self._assess(start, end, closed)
            if end <= folding:
                self._fold(start, end, closed)

        # A window is assessed once the one before it is folded: up to one past `folding`.
        self.closed_until = close_windows(
            self.closed_until,
            min(until, folding + window_s),
            window_s,
            close,
            lambda start: next_due(
                start, bool(self.groups or self.recent), chain(self.pending, self.actor_alerts)
            ),
        )
        self.folded_until = max(self.folded_until, min(self.closed_until, folding))
        return closed

    def _assess(self, start: float, end: float, closed: CoordinatorClosed) -> None:
        """A window's candidates into campaigns and brigades, and the alerts they raise."""
        closed.windows += 1
        window = self.pending.pop(start, {})
        touched: set[str] = set()
        joined: dict[str, set[str]] | None = None  # each account's open campaigns
        for route in sorted(window):
            c = window[route]
            if c.kind == "report":
                touched.update(self._brigade(c))
                continue
            if joined is None:
                joined = self._joined()
            touched.add(
                self._campaign(c, "synchronised" if c.kind == SCHEDULE else "campaign", joined)
            )
        for ident in sorted(touched):
            alert = self._judge(self.groups[ident], end)
            if alert is not None:
                closed.alerts.append(alert)

    def _fold(self, start: float, end: float, closed: CoordinatorClosed) -> None:
        """A window's actor alerts, folded into the campaigns raised or passed on; then the
        groups quiet for their cooldown resolve."""
        self._fold_alerts(self.actor_alerts.pop(start, []), closed)
        cfg = self.config
        for ident in sorted(self.groups):
            group = self.groups[ident]
            if end - group.touched - cfg.window_s >= self._cooldown(group):
                if group.fired is not None:
                    closed.alerts.append(self._resolved(group, end))
                del self.groups[ident]
                for route in group.latest:
                    if self.owner.get(route) == ident:
                        del self.owner[route]

    def _cooldown(self, group: _Group) -> float:
        """How long a group stays open without a candidate. A schedule may keep a slot an
        hour; a slow campaign's domain may gather too few accounts for a while, and come
        back within the hours it keeps them: the same campaign, not a new one."""
        cfg = self.config
        if group.kind == "synchronised":
            return cfg.synchrony_cooldown_s
        if group.kind == "campaign" and all(self.over_hours(c) for c in group.latest.values()):
            return max(cfg.cooldown_s, cfg.domain_window_s)
        return cfg.cooldown_s

    def _fold_alerts(self, alerts: list[Alert], closed: CoordinatorClosed) -> None:
        raised = [g for g in self.groups.values() if g.kind == "campaign" and g.fired is not None]
        for alert in sorted(alerts, key=lambda a: (a.entity_id, a.alert_id, a.status)):
            if alert.alert_id in self.folded:
                if alert.status == "resolved":
                    self.folded.discard(alert.alert_id)
                closed.folded += 1
                continue
            home = next((g for g in raised if alert.entity_id in g.members), None)
            if home is None or alert.status != "firing":
                closed.alerts.append(alert)
                continue
            home.flagged.add(alert.entity_id)
            if len(self.folded) < MAX_FOLDED:
                self.folded.add(alert.alert_id)
            closed.folded += 1

    # -- campaigns --------------------------------------------------------------------------
    def _joined(self) -> dict[str, set[str]]:
        """Each account's open campaigns (of both kinds): what `_overlapping` looks up, kept
        up to date by `_campaign` through a window's candidates."""
        joined: dict[str, set[str]] = {}
        for ident, group in self.groups.items():
            if group.kind != "brigade":
                for actor in group.members:
                    found = joined.get(actor)
                    if found is None:
                        joined[actor] = {ident}
                    else:
                        found.add(ident)
        return joined

    def _campaign(self, c: Candidate, kind: str, joined: dict[str, set[str]]) -> str:
        """Fold a candidate into the campaign of its kind that it belongs to, or a new one;
        `joined` is each account's open campaigns (`_joined`), brought up to date."""
        ident = self.owner.get(c.route)
        if ident is None:
            ident = self._overlapping(c, kind, joined)
        if ident is None:
            digest = hashlib.sha256(f"{c.route}\x1f{c.window_start}".encode()).hexdigest()
            ident = f"cmp-{digest[:12]}"
            self.groups[ident] = _Group(ident, kind, c.window_start)
        self.groups[ident].absorb(c)
        self.owner[c.route] = ident
        for actor in c.actors:
            joined.setdefault(actor, set()).add(ident)
        return ident

    def _overlapping(self, c: Candidate, kind: str, joined: dict[str, set[str]]) -> str | None:
        """The open campaign of `kind` sharing the most of the candidate's actors (the first
        by ident of those sharing as many), if it shares enough: the same accounts posting
        several texts, or one text (or schedule) split over buckets. Failing that, the first
        by ident whose schedule is the candidate's: other accounts of one scheduler, in
        another bucket."""
        cfg = self.config
        most = max(3.0, cfg.member_overlap * len(c.actors))
        shared = Counter(ident for actor in c.actors for ident in joined.get(actor, ()))
        best = min(
            (
                (-n, ident)
                for ident, n in shared.items()
                if n >= most and self.groups[ident].kind == kind
            ),
            default=None,
        )
        if best is not None:
            return best[1]
        slots = synchrony.elements(c.schedule, cfg.synchrony_slot_s)
        if slots:
            for ident in sorted(self.groups):
                group = self.groups[ident]
                if group.kind == kind and self._same_schedule(group, slots):
                    return ident
        return None

    def _same_schedule(self, group: _Group, slots: set[int]) -> bool:
        """Whether a synchronised group's latest schedule is the one of these slots."""
        latest = max(group.latest.values(), key=lambda c: (c.window_start, c.route))
        theirs = synchrony.elements(latest.schedule, self.config.synchrony_slot_s)
        return synchrony.similar(slots, theirs) >= self.config.synchrony_similarity

    def campaign_assessment(self, group: _Group) -> Assessment:
        cfg = self.config
        now = [c for c in group.latest.values() if c.window_start == group.touched]
        burst = max(len(c.actors) for c in now) / cfg.min_actors
        indicators = []
        aged = [actor for actor in group.members if actor in group.aged]
        young = sum(1 for actor in aged if group.members[actor])
        if aged and len(aged) >= len(group.members) / 2 and young >= len(aged) / 2:
            indicators.append("young_accounts")
        if any(c.shared_devices >= max(3, SHARED_DEVICES * len(c.actors)) for c in now):
            indicators.append("shared_devices")
        if any(c.kind == "link" for c in now):
            indicators.append("new_domain")
        elif any(c.domains and max(c.domains.values()) >= c.events / 2 for c in now):
            indicators.append("shared_link")
        # Tight: twice the minimum of accounts within `tight_s`, a pace no meme keeps up.
        if any(c.recent >= 2 * cfg.min_actors for c in now):
            indicators.append("tight_timing")
        score = burst * (1 + len(indicators))
        # Many accounts posting one text, and nothing else, is what a popular meme looks like.
        coordinated = bool(indicators) and score >= cfg.campaign_threshold
        # A new domain that gathered its accounts over hours may be a story that travels: it
        # takes young accounts as well (the accounts, then, counted over those hours).
        if all(self.over_hours(c) for c in now):
            coordinated = coordinated and "young_accounts" in indicators
        return Assessment(score, tuple(indicators), coordinated)

    def over_hours(self, c: Candidate) -> bool:
        """Whether a candidate is a new domain's over the hours it keeps its rows (its first
        row before the sliding window of the others)."""
        cfg = self.config
        return (
            c.kind == "link" and c.first_ts < c.window_start + cfg.window_s - cfg.campaign_window_s
        )

    def synchrony_assessment(self, group: _Group) -> Assessment:
        """A group of accounts keeping one schedule: coordinated by what it is, found only
        once enough of them kept it for hours; the cues of a campaign raise its score."""
        cfg = self.config
        now = [c for c in group.latest.values() if c.window_start == group.touched]
        indicators = ["shared_schedule"]
        aged = [actor for actor in group.members if actor in group.aged]
        young = sum(1 for actor in aged if group.members[actor])
        if aged and len(aged) >= len(group.members) / 2 and young >= len(aged) / 2:
            indicators.append("young_accounts")
        if any(c.shared_devices >= max(3, SHARED_DEVICES * len(c.actors)) for c in now):
            indicators.append("shared_devices")
        score = len(group.members) / cfg.min_synchronised * len(indicators)
        return Assessment(score, tuple(indicators), True)

    # -- brigades ---------------------------------------------------------------------------
    def _brigade(self, c: Candidate) -> list[str]:
        """Fold a brigade candidate in; returns the brigades it touched (its own and those of
        other targets hit by the same reporters)."""
        cfg = self.config
        ident = f"brigade:{c.key}"
        group = self.groups.get(ident)
        if group is None:
            group = self.groups[ident] = _Group(ident, "brigade", c.window_start)
        group.absorb(c)
        reporters = frozenset(c.actors)
        while self.recent and self.recent[0][0] < c.window_start - cfg.lockstep_s:
            self.recent.popleft()
        touched = [ident]
        for _, target, others in self.recent:
            if target == c.key:
                continue
            shared = len(reporters & others)
            if shared >= max(3, cfg.lockstep_overlap * min(len(reporters), len(others))):
                group.also.add(target)
                other = self.groups.get(f"brigade:{target}")
                if other is not None and c.key not in other.also:
                    other.also.add(c.key)
                    touched.append(other.ident)
        self.recent.append((c.window_start, c.key, reporters))
        return touched

    def brigade_assessment(self, group: _Group) -> Assessment:
        cfg = self.config
        c = max(group.latest.values(), key=lambda x: x.window_start)
        indicators = []
        if c.aged >= len(c.actors) / 2 and len(c.young) >= YOUNG_REPORTERS * c.aged:
            indicators.append("young_reporters")
        if max(c.reasons.values()) >= 0.9 * c.events:
            indicators.append("one_reason")
        # Tight only where the index saw the quiet before: reports that kept coming since it
        # started watching fall in a span no longer than it has watched.
        if c.span_s <= cfg.brigade_tight_s and c.watched_s >= cfg.brigade_tight_s:
            indicators.append("tight_timing")
        if group.also:
            indicators.append("same_reporters_other_targets")
        coordinated = bool(group.also) or len(indicators) >= 2
        score = len(c.actors) / cfg.min_reporters * (1 + len(indicators))
        return Assessment(score, tuple(indicators), coordinated)

    # -- alerts -----------------------------------------------------------------------------
    def _judge(self, group: _Group, end: float) -> Alert | None:
        cfg = self.config
        if group.kind == "campaign":
            verdict = self.campaign_assessment(group)
            if not verdict.coordinated:
                return None
            critical = verdict.score >= 2 * cfg.campaign_threshold
            severity = "critical" if critical else "warning"
        elif group.kind == "synchronised":
            verdict = self.synchrony_assessment(group)
            severity = "critical" if verdict.score >= 4 else "warning"
        else:
            verdict = self.brigade_assessment(group)
            if not verdict.coordinated:
                now = max(group.latest.values(), key=lambda c: c.window_start)
                if group.fired is None and len(now.actors) < cfg.organic_reporters:
                    return None  # what some accounts get every day: the spike detector watches
                severity = "info"
            elif group.also or len(verdict.indicators) >= 3:
                severity = "critical"
            else:
                severity = "warning"
        members = len(group.members)
        if group.fired is None:
            status = "firing"
            detector = BRIGADE if group.kind == "brigade" else CAMPAIGN
            entity = _entity(group)
            group.fired = alert_id(detector, entity[0], entity[1], group.started)
        elif (
            _rank(severity) > _rank(group.severity)
            or members >= cfg.growth * group.emitted_members
            or len(group.also) > group.emitted_also
        ):
            status = "update"
        else:
            return None
        group.severity = max(severity, group.severity, key=_rank)
        group.emitted_members = members
        group.emitted_also = len(group.also)
        return self._alert(group, verdict, status, end)

    def _alert(self, group: _Group, verdict: Assessment, status: str, end: float) -> Alert:
        fired = required(group.fired, "the group's alert id")
        entity_type, entity_id = _entity(group)
        latest = sorted(group.latest.values(), key=lambda c: (c.window_start, c.route))
        first = min(c.first_ts for c in latest)
        last = max(c.last_ts for c in latest)
        evidence: dict[str, Any]
        if group.kind == "campaign":
            detector, threshold = CAMPAIGN, self.config.campaign_threshold
            evidence, summary = self._campaign_evidence(group, latest, verdict, first, last)
        elif group.kind == "synchronised":
            detector, threshold = CAMPAIGN, 1.0
            evidence, summary = self._synchrony_evidence(group, latest, verdict)
        else:
            detector, threshold = BRIGADE, 1.0
            evidence, summary = self._brigade_evidence(group, latest[-1], verdict)
        return Alert(
            alert_id=fired,
            detector=detector,
            status=status,
            severity=group.severity,
            entity_type=entity_type,
            entity_id=entity_id,
            ts=end,
            window_start=group.started,
            window_end=end,
            score=verdict.score,
            threshold=threshold,
            summary=summary,
            evidence=evidence,
        )

    def _campaign_evidence(
        self,
        group: _Group,
        latest: list[Candidate],
        verdict: Assessment,
        first: float,
        last: float,
    ) -> tuple[dict[str, Any], str]:
        members = sorted(group.members)
        aged = [actor for actor in members if actor in group.aged]
        young = sum(1 for actor in aged if group.members[actor])
        domains: Counter[str] = Counter()
        for c in latest:
            for domain, n in c.domains.items():
                domains[domain] = max(domains[domain], n)
        samples = list(dict.fromkeys(s for c in latest for s in c.samples))[:SAMPLES]
        links = sorted(c.key for c in latest if c.kind == "link")
        evidence = {
            "campaign_kind": "link" if links and not samples else "content",
            "members": members,
            "member_count": len(members),
            "account_age": {"known": len(aged), "younger_than_30_days": young},
            "accounts_sharing_devices": max(c.shared_devices for c in latest),
            "first_seen": format_rfc3339(first),
            "last_seen": format_rfc3339(last),
            "indicators": list(verdict.indicators),
            "sample_texts": samples,
            "shared_domains": dict(domains.most_common(5)),
            "new_domains": links,
            "sample_event_ids": sorted({i for c in latest for i in c.sample_ids})[:SAMPLE_IDS],
            "keys": len(latest),
            "members_flagged_individually": sorted(group.flagged),
        }
        minutes = max(1.0, (last - first) / 60)
        what = (
            f"shared the new domain {links[0]}"
            if links and not samples
            else "posted near-identical text"
        )
        ages = ""
        if aged:
            share = "all" if young == len(aged) else f"{young} of {len(aged)}"
            ages = f" ({share} under 30 days old)" if young else " (none under 30 days old)"
        summary = (
            f"Campaign {group.ident}: {len(members)} accounts{ages} {what} in {minutes:.0f} min"
        )
        top = domains.most_common(1)
        if top and samples:
            summary += f", linking to {top[0][0]}"
        if samples:
            summary += f': "{samples[0][:60]}"'
        return evidence, summary + "."

    def _synchrony_evidence(
        self, group: _Group, latest: list[Candidate], verdict: Assessment
    ) -> tuple[dict[str, Any], str]:
        members = sorted(group.members)
        aged = [actor for actor in members if actor in group.aged]
        young = sum(1 for actor in aged if group.members[actor])
        # The schedule of the candidate with the most members in the latest window.
        now = max(latest, key=lambda c: (c.window_start, len(c.actors), c.route))
        times = list(now.schedule)
        every = synchrony.period(times)
        evidence = {
            "campaign_kind": "synchronised",
            "members": members,
            "member_count": len(members),
            "account_age": {"known": len(aged), "younger_than_30_days": young},
            "accounts_sharing_devices": max(c.shared_devices for c in latest),
            "first_seen": format_rfc3339(min(c.first_ts for c in latest)),
            "last_seen": format_rfc3339(max(c.last_ts for c in latest)),
            "indicators": list(verdict.indicators),
            "sample_texts": [],
            "shared_domains": {},
            "new_domains": [],
            "sample_event_ids": sorted({i for c in latest for i in c.sample_ids})[:SAMPLE_IDS],
            "keys": len(latest),
            "members_flagged_individually": sorted(group.flagged),
            "schedule": {
                "times": [format_rfc3339(t) for t in times],
                "period_seconds": None if every is None else round(every),
                "slot_seconds": self.config.synchrony_slot_s,
            },
        }
        ages = ""
        if aged:
            share = "all" if young == len(aged) else f"{young} of {len(aged)}"
            ages = f" ({share} under 30 days old)" if young else " (none under 30 days old)"
        hours = (times[-1] - times[0]) / 3600 if times else 0.0
        pace = f", about every {every / 60:.0f} min" if every is not None else ""
        last = format_rfc3339(times[-1])[11:16] if times else "?"
        summary = (
            f"Campaign {group.ident}: {len(members)} accounts{ages} acting in the same "
            f"{self.config.synchrony_slot_s:.0f} s, {len(times)} times in {hours:.1f} h{pace} "
            f"(last at {last} UTC)."
        )
        return evidence, summary

    def _brigade_evidence(
        self, group: _Group, c: Candidate, verdict: Assessment
    ) -> tuple[dict[str, Any], str]:
        pattern = "coordinated" if verdict.coordinated else "organic"
        evidence = {
            "pattern": pattern,
            "reporters": list(c.actors[:MAX_LISTED]),
            "reporter_count": len(c.actors),
            "reports": c.events,
            "reasons": c.reasons,
            "reporter_age": {"known": c.aged, "younger_than_30_days": len(c.young)},
            "span_seconds": round(c.span_s, 1),
            "indicators": list(verdict.indicators),
            "same_reporters_also_targeted": sorted(group.also),
            "sample_event_ids": list(c.sample_ids),
        }
        minutes = max(1.0, (c.last_ts - c.first_ts) / 60)
        top, n = max(c.reasons.items(), key=lambda kv: (kv[1], kv[0]))
        reasons = f"all for {top}" if n == c.events else f"{len(c.reasons)} reasons, mostly {top}"
        head = (
            f"Account {c.key} reported by {len(c.actors)} accounts in {minutes:.0f} min, {reasons}"
        )
        if verdict.coordinated:
            cues = {
                "young_reporters": f"{len(c.young)} of {c.aged} reporters under 30 days old",
                "one_reason": "one reason",
                "tight_timing": "tight timing",
                "same_reporters_other_targets": "the same reporters also hit "
                + ", ".join(sorted(group.also)[:5]),
            }
            why = "; ".join(cues[i] for i in verdict.indicators)
            return evidence, f"{head}; looks coordinated ({why})."
        return evidence, f"{head}; looks like an organic wave: review the reported content."

    def _resolved(self, group: _Group, end: float) -> Alert:
        fired = required(group.fired, "the group's alert id")
        entity_type, entity_id = _entity(group)
        detector = BRIGADE if group.kind == "brigade" else CAMPAIGN
        synchronised = group.kind == "synchronised"
        cfg = self.config
        quiet = self._cooldown(group) / 60
        threshold = 1.0 if synchronised or detector == BRIGADE else cfg.campaign_threshold
        what = "acted in step" if synchronised else "grown"
        return Alert(
            alert_id=fired,
            detector=detector,
            status="resolved",
            severity=group.severity,
            entity_type=entity_type,
            entity_id=entity_id,
            ts=end,
            window_start=group.started,
            window_end=group.touched + self.config.window_s,
            score=0.0,
            threshold=threshold,
            summary=f"{_entity_words(group)} has not {what} for {quiet:.0f} min.",
            evidence={
                "members": sorted(group.members),
                "member_count": len(group.members),
                "members_flagged_individually": sorted(group.flagged),
            },
        )


def _entity(group: _Group) -> tuple[str, str]:
    if group.kind != "brigade":
        return "campaign", group.ident
    return "target", group.ident.removeprefix("brigade:")


def _entity_words(group: _Group) -> str:
    if group.kind != "brigade":
        return f"Campaign {group.ident}"
    return f"The reports against account {group.ident.removeprefix('brigade:')}"


def _rank(severity: str) -> int:
    return ("info", "warning", "critical").index(severity)
