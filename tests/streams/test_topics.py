"""Which partition counts the worker can work with, and the fix it names for the others."""

from __future__ import annotations

import pytest

from streams.settings import Settings
from streams.topics import GrowError, grow_plan, mismatches, missing_inputs

SETTINGS = Settings(input_partitions=8, partitions=6)
INPUTS = ["content-events", "report-events", "labels"]
INGEST = "abuse-monitor-ingest-state-changelog"
SIGNALS = "abuse-monitor-signal-partials"
SIGNAL_STATE = "abuse-monitor-signal-state-changelog"


def cluster(**counts: int) -> dict[str, int]:
    found = dict.fromkeys(INPUTS, 8) | {INGEST: 8, SIGNALS: 6, SIGNAL_STATE: 6}
    return found | {name.replace("_", "-"): count for name, count in counts.items()}


def test_a_cluster_as_set_has_no_mismatch() -> None:
    assert mismatches(SETTINGS, cluster()) == []
    assert mismatches(SETTINGS, {}) == []  # nothing made yet: the worker makes them
    # The alerts and dead-letter topics may have any count.
    assert mismatches(SETTINGS, cluster(alerts=3) | {"labels.dlq": 1}) == []


def test_inputs_made_by_the_broker_with_its_own_count() -> None:
    found = {name: 4 for name in INPUTS}
    assert mismatches(SETTINGS, found) == [
        "topics content-events, report-events, labels have 4 partitions but "
        "ABUSEMON_INPUT_PARTITIONS is 8; fix: set ABUSEMON_INPUT_PARTITIONS=4, or add "
        "partitions: abuse-monitor topics grow --partitions 8"
    ]
    # More than the setting: partitions cannot be removed, the setting follows.
    assert mismatches(SETTINGS, {name: 12 for name in INPUTS} | {INGEST: 12}) == [
        f"topics content-events, report-events, labels, {INGEST} have 12 partitions but "
        "ABUSEMON_INPUT_PARTITIONS is 8; fix: set ABUSEMON_INPUT_PARTITIONS=12"
    ]


def test_an_input_unlike_its_changelog_is_grown() -> None:
    assert mismatches(SETTINGS, cluster(content_events=4)) == [
        "topic content-events has 4 partitions but report-events has 8 "
        "(ABUSEMON_INPUT_PARTITIONS is 8); fix: abuse-monitor topics grow --partitions 8"
    ]
    # Grown past the setting: the rest follow, and the setting too.
    assert mismatches(SETTINGS, cluster(labels=16)) == [
        f"topics content-events, report-events, {INGEST} have 8 partitions but labels has 16 "
        "(ABUSEMON_INPUT_PARTITIONS is 8); fix: abuse-monitor topics grow --partitions 16, "
        "then set ABUSEMON_INPUT_PARTITIONS=16"
    ]


def test_the_signal_topic_and_its_changelog() -> None:
    assert mismatches(SETTINGS, cluster(abuse_monitor_signal_partials=4)) == [
        f"topic {SIGNALS} has 4 partitions but {SIGNAL_STATE} has 6 (ABUSEMON_PARTITIONS is 6); "
        f"fix: kafka-topics.sh --bootstrap-server localhost:9092 --alter --topic {SIGNALS} "
        "--partitions 6"
    ]
    both = cluster(abuse_monitor_signal_partials=4, abuse_monitor_signal_state_changelog=4)
    assert mismatches(SETTINGS, both) == [
        f"topics {SIGNALS}, {SIGNAL_STATE} have 4 partitions but ABUSEMON_PARTITIONS is 6; "
        "fix: set ABUSEMON_PARTITIONS=4"
    ]


def test_missing_inputs() -> None:
    assert missing_inputs(SETTINGS, {"labels": 8}) == ["content-events", "report-events"]


def test_the_inputs_and_their_changelog_grow_together() -> None:
    assert grow_plan(SETTINGS, cluster(), 12) == [*INPUTS, INGEST]
    assert grow_plan(SETTINGS, cluster(labels=12), 12) == [*INPUTS[:2], INGEST]
    assert grow_plan(SETTINGS, dict.fromkeys(INPUTS, 4), 8) == INPUTS  # no changelog yet
    assert grow_plan(SETTINGS, cluster(), 8) == []


def test_growing_cannot_shrink_or_make_topics() -> None:
    with pytest.raises(GrowError, match="topic labels has 13 partitions, more than 12: "):
        grow_plan(SETTINGS, cluster(labels=13), 12)
    with pytest.raises(GrowError, match="topic content-events does not exist"):
        grow_plan(SETTINGS, {"labels": 8}, 12)
