"""The contract's default signal set: which rate series an event counts towards.

Each signal id is one rate series. Signals fall in two groups, `content` and `reports`, fed by
the two input topics; a group's windows close on that group's event-time watermark alone.

>>> from detectors.events import ReportEvent
>>> ev = ReportEvent(event_id="r1", ts="2026-11-24T10:00:00Z", reporter_id="u1",
...                  target_actor_id="u2", reason="spam")
>>> report_signals(ev)
('reports', 'reports.reason:spam', 'reports.target:u2')
>>> family("reports.target:u2"), group("reports.target:u2"), is_per_account("reports.target:u2")
('reports.target', 'reports', True)
"""

from __future__ import annotations

from detectors.events import ContentEvent, ReportEvent

NEW_ACTOR_SECONDS = 7 * 86400.0

# Signals whose series exist from the start and never expire.
CORE_SIGNALS = ("content", "content.new_actors", "reports")
# Families with one series per account, created on demand and kept out of metric labels. The
# last two count distinct accounts (detectors/accumulate.py), added in stage 1.
PER_ACCOUNT_FAMILIES = ("content.target", "reports.target", "content.contacts", "reports.reporters")


def content_signals(event: ContentEvent) -> tuple[str, ...]:
    signals = ["content", f"content.surface:{event.surface}", f"content.kind:{event.kind}"]
    created = event.actor_created_at
    if created is not None and event.ts - created < NEW_ACTOR_SECONDS:
        signals.append("content.new_actors")
    if event.target_id is not None:
        signals.append(f"content.target:{event.target_id}")
    return tuple(signals)


def report_signals(event: ReportEvent) -> tuple[str, ...]:
    return (
        "reports",
        f"reports.reason:{event.reason}",
        f"reports.target:{event.target_actor_id}",
    )


def family(signal: str) -> str:
    """`content.surface:feed` -> `content.surface`; `content` -> `content`."""
    return signal.partition(":")[0]


def group(signal: str) -> str:
    """`content` or `reports`: the input the signal is counted from."""
    return signal.partition(".")[0].partition(":")[0]


def is_per_account(signal: str) -> bool:
    return family(signal) in PER_ACCOUNT_FAMILIES
