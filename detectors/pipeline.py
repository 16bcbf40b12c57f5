"""Stage 2 of the rate signals.

`SignalProcessor` holds the series of the signals routed to it (one per partition of the
repartitioned signal topic). It adds up the partial counts of every source partition, closes
a window once its group's watermark passes it, runs each series' spike detector on the
window, and turns flags into alert episodes. `detectors.stages` puts it in the pipeline.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field

import msgspec

from detectors import accumulate
from detectors.accumulate import Accumulator, Population
from detectors.alerts import Alert, Episode, EpisodePolicy, required, severity_for
from detectors.events import ContentEvent, Event, ReportEvent, format_rfc3339
from detectors.shift import ShiftDetector
from detectors.signals import (
    CORE_SIGNALS,
    content_signals,
    family,
    group,
    is_per_account,
    report_signals,
)
from detectors.spike import HORIZON, SpikeDetector, Verdict
from detectors.windows import (
    SAMPLE_IDS,
    GroupClock,
    Partial,
    PartitionCounter,
    Watermark,
    close_windows,
    next_due,
)

DETECTOR = "volume_spike"
# The core series outlive quiet nights and weekends, but not a stream that stopped for good:
# after a week without an event they expire, so a gap of years is not stepped window by window.
CORE_SERIES_TTL_S = 7 * 86400.0
GROUP_TOPICS = {"content": "content-events", "reports": "report-events"}
# Dense series also judged over a horizon for sustained moderate shifts (detectors/shift.py).
SHIFT_FAMILIES = ("content", "content.surface", "content.kind")


@dataclass(frozen=True)
class DetectionConfig:
    """Everything that shapes what is detected; settings map onto it one to one."""

    window_s: float = 60.0
    lateness_s: float = 30.0
    spike_threshold: float = 6.0
    spike_min_count: float = 5.0
    warmup_windows: int = 30
    cooldown_s: float = 600.0
    update_every: int = 10
    account_series_ttl_s: float = 3600.0
    dimension_series_ttl_s: float = 86400.0
    max_series: int = 50_000
    dedup_horizon_s: float = 3600.0
    dedup_max_ids: int = 200_000
    # Accumulated evidence (detectors/accumulate.py): distinct accounts turning to one account.
    accumulate_horizon_s: float = 3600.0
    accumulate_min: float = 15.0
    accumulate_ratio: float = 4.0
    accumulate_ttl_s: float = 86400.0
    accumulate_long_horizon_s: float = 10800.0  # the longer span judged too (0: none)
    # Sustained shifts of dense series (detectors/shift.py).
    shift_horizon_s: float = 1800.0
    shift_threshold: float = 5.0
    shift_ratio: float = 1.3


def rate_detector(
    config: DetectionConfig, sparse: bool, warmup: int | None = None
) -> SpikeDetector:
    """The spike detector of one rate series, as configured for dense or per-account series.

    Dense series learn a daily profile; sparse per-account series start from a level of 0,
    so one busy first window does not become their norm.
    """
    return SpikeDetector(
        window_s=config.window_s,
        threshold=config.spike_threshold,
        min_count=config.spike_min_count,
        warmup=config.warmup_windows if warmup is None else warmup,
        season_slots=0 if sparse else 96,
        prior_level=0.0 if sparse else None,
        horizon=0 if sparse else HORIZON,
    )


def shift_detector(config: DetectionConfig) -> ShiftDetector:
    """The sustained-shift detector of a dense series, whose score is on the spike's scale."""
    return ShiftDetector(
        window_s=config.window_s,
        horizon_s=config.shift_horizon_s,
        threshold=config.shift_threshold,
        ratio=config.shift_ratio,
        score_scale=config.spike_threshold,
    )


def accumulator(config: DetectionConfig, elapsed: int) -> Accumulator:
    """The detector of a per-account series of first contacts, created `elapsed` windows
    after its group's first. Created once the first horizon and one more have passed, the
    series' account had no such contact for `accumulate_ttl_s` (or it would have a series,
    unless the cap on series dropped it): its baseline starts from that. Created earlier,
    its history is unknown: it learns a horizon of baseline before it flags."""
    horizon = max(1, round(config.accumulate_horizon_s / config.window_s))
    cold = elapsed < 2 * horizon
    return Accumulator(
        window_s=config.window_s,
        horizon_s=horizon * config.window_s,
        min_total=config.accumulate_min,
        ratio=config.accumulate_ratio,
        threshold=config.spike_threshold,
        warmup=2 * horizon - elapsed if cold else 0,
        prior_windows=0 if cold else round(config.accumulate_ttl_s / config.window_s),
        long_horizon_s=config.accumulate_long_horizon_s,
    )


class WindowResult(msgspec.Struct, frozen=True, gc=False):
    signal: str
    window_start: float
    verdict: Verdict


@dataclass
class Closed:
    """What closing windows produced: one result per series per window, and alerts."""

    results: list[WindowResult] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    windows: int = 0
    late: int = 0  # events in partials for windows already closed
    expired: int = 0  # idle series dropped
    evicted: int = 0  # series dropped to stay under the cap


@dataclass
class _Series:
    detector: SpikeDetector | Accumulator
    ttl: float
    last_active: float
    next_window: float  # the window the detector expects next
    episode: Episode | None = None
    sample_ids: tuple[str, ...] = ()
    shift: ShiftDetector | None = None  # of a dense series of `SHIFT_FAMILIES`
    accumulated: bool = False  # the last verdict is the shift's, over its horizon


@dataclass
class _Pending:
    count: int
    sample_ids: tuple[str, ...]
    sources: set[str]


@dataclass
class _Group:
    clock: GroupClock
    anchor: float | None = None  # the first window this group closes
    closed_until: float = -math.inf
    pending: dict[float, dict[str, _Pending]] = field(default_factory=dict)
    # Aggregate series, stepped every window.
    dense: dict[str, _Series] = field(default_factory=dict)
    # Per-account series, mostly idle: stepped when they have events or an open alert, their
    # zero windows caught up then. Ordered by last activity, so the idle ones come first.
    sparse: OrderedDict[str, _Series] = field(default_factory=OrderedDict)
    open_sparse: set[str] = field(default_factory=set)  # of `sparse` and `lasting`
    # Per-account first-contact series (detectors/accumulate.py), as `sparse` but kept a day,
    # with their baselines; apart, so that each dict expires from its front.
    lasting: OrderedDict[str, _Series] = field(default_factory=OrderedDict)
    # How busy the hour is for the first-contact series.
    population: Population | None = None

    def per_account(self, signal: str) -> OrderedDict[str, _Series]:
        """The dict of a per-account series."""
        return self.lasting if signal.startswith(accumulate.FAMILIES) else self.sparse


class SignalProcessor:
    """Stage 2 of the rate signals for the series routed to it.

    `groups`, offline, names the groups that have sources: actor windows wait for each of
    them. Streaming (None), a group not heard from holds actor windows back for `idle_s` of
    wall-clock time after the first watermark, then stops holding them.
    """

    def __init__(
        self,
        config: DetectionConfig,
        idle_s: float | None = None,
        groups: set[str] | None = None,
    ) -> None:
        self.config = config
        self.idle_s = idle_s
        self.expected = groups
        self.born: float | None = None
        self.policy = EpisodePolicy(config.cooldown_s, config.update_every)
        self.groups = {name: _Group(GroupClock(idle_s)) for name in GROUP_TOPICS}

    def both_closed(self, now: float | None = None) -> tuple[float, float]:
        """(first, until): actor windows, which take both groups, start at the later of the
        groups' first windows and are closed until where both groups have closed."""
        firsts, marks = [], []
        for name, g in self.groups.items():
            if g.anchor is not None:
                firsts.append(g.anchor)
                marks.append(g.closed_until)
            elif self.expected is not None:
                if name in self.expected:
                    return -math.inf, -math.inf
            elif not self._silent_long_enough(now):
                return -math.inf, -math.inf
        if not marks:
            return -math.inf, -math.inf
        return max(firsts), min(marks)

    def _silent_long_enough(self, now: float | None) -> bool:
        """Streaming: whether a group never heard from may stop holding actor windows back."""
        if self.idle_s is None or self.born is None or now is None:
            return False
        return now - self.born >= self.idle_s

    def live_series(self) -> int:
        return sum(len(g.dense) + len(g.sparse) + len(g.lasting) for g in self.groups.values())

    def series_ids(self, group_name: str) -> set[str]:
        g = self.groups[group_name]
        return {*g.dense, *g.sparse, *g.lasting}

    def add_partial(self, partial: Partial) -> int:
        """Add one source's count; returns how many events came too late to be counted.

        Idempotent: a source sends one partial per signal and window, so one delivered
        again (a consumer re-reading after a rebalance) is ignored.
        """
        g = self.groups[group(partial.signal)]
        if partial.window_start + self.config.window_s <= g.closed_until:
            return partial.count  # its source had been taken as idle
        window = g.pending.get(partial.window_start)
        if window is None:  # not setdefault, which would make a dict each time
            window = g.pending[partial.window_start] = {}
        tally = window.get(partial.signal)
        if tally is None:
            window[partial.signal] = _Pending(partial.count, partial.sample_ids, {partial.source})
        elif partial.source not in tally.sources:
            tally.sources.add(partial.source)
            tally.count += partial.count
            tally.sample_ids = tuple(sorted({*tally.sample_ids, *partial.sample_ids})[:SAMPLE_IDS])
        return 0

    def register(self, mark: Watermark, now: float | None = None) -> None:
        """Take note of a source's watermark; the next `add_watermark` closes what it allows.
        A source's first watermark, which the windows start from, is noted so when it came
        in the same batch as later ones."""
        self.groups[mark.group].clock.update(mark, now)
        if self.born is None and now is not None:
            self.born = now

    def add_watermark(self, mark: Watermark, now: float | None = None) -> Closed:
        g = self.groups[mark.group]
        self.register(mark, now)
        target = g.clock.watermark(now)
        closed = Closed()
        if target == -math.inf or target <= g.closed_until:
            return closed
        if g.anchor is None:
            # Deterministic on every processor: no source emits a window before its first mark.
            g.anchor = min(g.clock.first.values())
            g.closed_until = g.anchor
            for start in [s for s in g.pending if s < g.anchor]:
                closed.late += sum(t.count for t in g.pending.pop(start).values())
        g.closed_until = close_windows(
            g.closed_until,
            target,
            self.config.window_s,
            lambda start, _: self._close(g, start, closed),
            lambda start: next_due(start, bool(g.dense or g.sparse or g.lasting), g.pending),
        )
        return closed

    # -- one window -----------------------------------------------------------------------
    def _close(self, g: _Group, start: float, closed: Closed) -> None:
        cfg = self.config
        end = start + cfg.window_s
        counts = g.pending.pop(start, {})
        closed.windows += 1
        contacts = 0
        for signal in counts:
            lasting = signal.startswith(accumulate.FAMILIES)
            if signal not in g.dense and signal not in (g.lasting if lasting else g.sparse):
                closed.evicted += self._create(g, signal, start)
            if lasting:
                contacts += counts[signal].count
        if g.population is None:
            horizon = max(1, round(cfg.accumulate_horizon_s / cfg.window_s))
            g.population = Population(horizon, memory=round(accumulate.DAY / cfg.window_s))
        scale = g.population.step(contacts)
        due = list(g.dense.items())
        for s in sorted(g.open_sparse.union(counts)):
            found = g.per_account(s).get(s)
            if found is not None:
                due.append((s, found))
        for signal, series in due:
            tally = counts.get(signal)
            if tally is not None:
                series.last_active = start
                series.sample_ids = tally.sample_ids
                if signal not in g.dense:
                    g.per_account(signal).move_to_end(signal)
            detector = series.detector
            count = tally.count if tally else 0
            if isinstance(detector, Accumulator):  # its idle windows at once
                detector.skip(round((start - series.next_window) / cfg.window_s), scale)
                verdict = detector.step(start, count, scale)
            else:
                idle, t = 0, series.next_window  # zero windows of an idle per-account series
                while t < start:
                    idle, t = idle + 1, t + cfg.window_s
                if idle:
                    detector.idle(series.next_window, idle)
                verdict = self._step_dense(signal, series, detector, start, count)
            series.next_window = end
            closed.results.append(WindowResult(signal, start, verdict))
            severity = severity_for(verdict.score, cfg.spike_threshold) if verdict.flagged else None
            previous = series.episode
            series.episode, action = self.policy.step(
                previous, DETECTOR, "signal", signal, start, end, verdict.score, severity
            )
            if action == "resolved":
                ended = required(previous, "the episode that resolved")
                closed.alerts.append(self._resolved(signal, ended, verdict, end))
            elif action is not None:
                closed.alerts.append(self._alert(signal, series, verdict, action, end))
            if signal not in g.dense:
                if series.episode is None:
                    g.open_sparse.discard(signal)
                else:
                    g.open_sparse.add(signal)
        closed.expired += self._expire(g, end)

    def _step_dense(
        self, signal: str, series: _Series, detector: SpikeDetector, start: float, count: int
    ) -> Verdict:
        """The spike detector's verdict on the window; for a series of `SHIFT_FAMILIES`, the
        shift detector's instead when only it flags (the profile read before the spike
        detector learns the window)."""
        shift = series.shift
        if shift is None and detector.season_slots and family(signal) in SHIFT_FAMILIES:
            shift = series.shift = shift_detector(self.config)
        if shift is None:
            return detector.step(start, count)
        factor = detector.profile(start)
        verdict = detector.step(start, count)
        shifted = shift.step(start, count, factor, detector.level or 0.0, verdict.flagged)
        series.accumulated = shifted.flagged and not verdict.flagged
        return shifted if series.accumulated else verdict

    def _expire(self, g: _Group, end: float) -> int:
        gone = [
            s
            for s, series in g.dense.items()
            if series.episode is None and end - series.last_active > series.ttl
        ]
        for signal in gone:
            del g.dense[signal]
        for per_account in (g.sparse, g.lasting):  # each in order of last activity
            while per_account:
                signal, series = next(iter(per_account.items()))
                if series.episode is not None or end - series.last_active <= series.ttl:
                    break
                del per_account[signal]
                gone.append(signal)
        return len(gone)

    def _create(self, g: _Group, signal: str, start: float) -> int:
        """Start a series for `signal`; returns how many least-recently-active were evicted."""
        cfg = self.config
        evicted = 0
        while len(g.dense) + len(g.sparse) + len(g.lasting) >= cfg.max_series:
            if g.sparse or g.lasting:  # the least recently active of the two
                fronts = [d for d in (g.sparse, g.lasting) if d]
                first = min(fronts, key=lambda d: next(iter(d.values())).last_active)
                oldest, _ = first.popitem(last=False)
                g.open_sparse.discard(oldest)
            else:
                oldest = next(s for s in g.dense if s not in CORE_SIGNALS)
                del g.dense[oldest]
            evicted += 1
        elapsed = int((start - required(g.anchor, "the group's first window")) / cfg.window_s)
        sparse = is_per_account(signal)
        detector: SpikeDetector | Accumulator
        if family(signal) in accumulate.FAMILIES:
            detector = accumulator(cfg, elapsed)
        else:
            detector = rate_detector(cfg, sparse, warmup=max(0, cfg.warmup_windows - elapsed))
        if signal in CORE_SIGNALS:
            ttl = max(CORE_SERIES_TTL_S, cfg.dimension_series_ttl_s)
        elif isinstance(detector, Accumulator):  # kept through a quiet night, with its baseline
            ttl = cfg.accumulate_ttl_s
        elif sparse:
            ttl = cfg.account_series_ttl_s
        else:
            ttl = cfg.dimension_series_ttl_s
        series = _Series(detector, ttl=ttl, last_active=start, next_window=start)
        (g.per_account(signal) if sparse else g.dense)[signal] = series
        return evicted

    def _alert(
        self, signal: str, series: _Series, verdict: Verdict, action: str, end: float
    ) -> Alert:
        episode = required(series.episode, "the series' episode")
        cfg = self.config
        ratio = verdict.observed / verdict.expected if verdict.expected > 0 else None
        evidence = {
            "signal": signal,
            "signal_family": family(signal),
            "window_seconds": cfg.window_s,
            "observed": verdict.observed,
            "expected": round(verdict.expected, 2),
            "band": {"lower": round(verdict.lower, 2), "upper": round(verdict.upper, 2)},
            "ratio": round(ratio, 2) if ratio is not None else None,
            "peak_score": round(episode.peak_score, 4),
            "windows_flagged": episode.flagged_windows,
            "baseline_windows": series.detector.learned_windows,
            "sample_event_ids": list(series.sample_ids),
        }
        horizon_s = cfg.accumulate_horizon_s
        if isinstance(series.detector, Accumulator):  # observed and expected: over the horizon
            horizon_s = series.detector.judged_s  # or the longer span, when only it flagged
            evidence["horizon_seconds"] = horizon_s
        shift = series.shift
        if series.accumulated and shift is not None:  # as well
            evidence["horizon_seconds"] = shift.horizon * cfg.window_s
            evidence["baseline_windows"] = shift.learned_windows
            evidence["accumulated"] = {
                "windows": shift.horizon,
                "ratio": evidence["ratio"],
                "began": format_rfc3339(required(shift.began, "the shift's onset")),
            }
            summary = summarize_shift(signal, verdict, end, shift)
        else:
            summary = summarize(signal, verdict, end, cfg.window_s, horizon_s)
        return Alert(
            alert_id=episode.alert_id,
            detector=DETECTOR,
            status=action,
            severity=episode.severity,
            entity_type="signal",
            entity_id=signal,
            ts=end,
            window_start=episode.start,
            window_end=episode.end,
            score=verdict.score,
            threshold=cfg.spike_threshold,
            summary=summary,
            evidence=evidence,
        )

    def _resolved(self, signal: str, last: Episode, verdict: Verdict, end: float) -> Alert:
        minutes = (last.end - last.start) / 60.0
        return Alert(
            alert_id=last.alert_id,
            detector=DETECTOR,
            status="resolved",
            severity=last.severity,
            entity_type="signal",
            entity_id=signal,
            ts=end,
            window_start=last.start,
            window_end=last.end,
            score=last.peak_score,
            threshold=self.config.spike_threshold,
            summary=(
                f"{describe(signal)} is back within its normal range after "
                f"{minutes:.0f} min of elevated volume (peak score {last.peak_score:.1f})."
            ),
            evidence={
                "signal": signal,
                "signal_family": family(signal),
                "expected": round(verdict.expected, 2),
                "observed": verdict.observed,
                "peak_score": round(last.peak_score, 4),
                "windows_flagged": last.flagged_windows,
            },
        )


def describe(signal: str) -> str:
    """The series in words, for summaries.

    >>> describe("reports.target:u42")
    'Reports against account u42'
    """
    fam, _, value = signal.partition(":")
    return {
        "content": "All content",
        "content.new_actors": "Content from accounts younger than 7 days",
        "content.surface": f"Content on surface {value}",
        "content.kind": f"Content of kind {value}",
        "content.target": f"Content addressed to account {value}",
        "reports": "All reports",
        "reports.reason": f"Reports for reason {value}",
        "reports.target": f"Reports against account {value}",
        "content.contacts": f"Accounts addressing account {value} (each counted once)",
        "reports.reporters": f"Accounts reporting account {value} (each counted once)",
    }.get(fam, signal)


def summarize(
    signal: str, verdict: Verdict, end: float, window_s: float, horizon_s: float = 3600.0
) -> str:
    """One sentence for on-call; `horizon_s` is the span of accumulated evidence.

    >>> v = Verdict(observed=467, expected=249.2, lower=111, upper=387.4, score=9.0, flagged=True)
    >>> summarize("content", v, 2460.0, 60.0)
    'All content: 467 events in the 60 s to 00:41 UTC, 1.9x the expected 249 (normal up to 387).'
    >>> v = Verdict(observed=27, expected=1.6, lower=0, upper=15, score=10.8, flagged=True)
    >>> summarize("content.contacts:u7", v, 2460.0, 60.0)
    'Accounts addressing account u7 (each counted once): 27 in the 60 min to 00:41 UTC, usually 2 (alert line 15).'
    """
    clock = format_rfc3339(end)[11:16]
    if family(signal) in accumulate.FAMILIES:
        return (
            f"{describe(signal)}: {int(verdict.observed)} in the {horizon_s / 60:.0f} min to "
            f"{clock} UTC, usually {verdict.expected:.0f} (alert line {verdict.upper:.0f})."
        )
    head = (
        f"{describe(signal)}: {int(verdict.observed)} events in the {window_s:.0f} s to {clock} UTC"
    )
    if verdict.expected >= 1:
        ratio = verdict.observed / verdict.expected
        return f"{head}, {ratio:.1f}x the expected {verdict.expected:.0f} (normal up to {verdict.upper:.0f})."
    return f"{head}, expected about {verdict.expected:.0f} (normal up to {verdict.upper:.0f})."


def summarize_shift(signal: str, verdict: Verdict, end: float, shift: ShiftDetector) -> str:
    """One sentence for on-call on a sustained shift.

    >>> shift = ShiftDetector(horizon_s=1800.0)
    >>> shift.began = 1200.0
    >>> v = Verdict(observed=1450, expected=760, lower=0, upper=1100, score=9.0, flagged=True)
    >>> summarize_shift("content.surface:groups", v, 2460.0, shift)
    'Content on surface groups: 1450 events in the 30 min to 00:41 UTC, 1.9x the expected 760 (alert line 1100): a sustained shift since about 00:20 UTC.'
    """
    clock = format_rfc3339(end)[11:16]
    began = format_rfc3339(required(shift.began, "the shift's onset"))[11:16]
    ratio = verdict.observed / verdict.expected if verdict.expected > 0 else math.inf
    return (
        f"{describe(signal)}: {int(verdict.observed)} events in the {shift.horizon_s / 60:.0f} "
        f"min to {clock} UTC, {ratio:.1f}x the expected {verdict.expected:.0f} (alert line "
        f"{verdict.upper:.0f}): a sustained shift since about {began} UTC."
    )


def signals_of(event: Event) -> tuple[str, ...]:
    if isinstance(event, ContentEvent):
        return content_signals(event)
    if isinstance(event, ReportEvent):
        return report_signals(event)
    return ()


TOPIC_GROUPS = {topic: name for name, topic in GROUP_TOPICS.items()}


def new_counter(
    config: DetectionConfig, topic: str, partition: int, sources: int
) -> PartitionCounter:
    return PartitionCounter(
        group=TOPIC_GROUPS[topic],
        source=f"{topic}:{partition}",
        sources=sources,
        window_s=config.window_s,
        lateness_s=config.lateness_s,
        dedup_horizon_s=config.dedup_horizon_s,
        dedup_max_ids=config.dedup_max_ids,
    )
