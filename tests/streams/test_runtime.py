"""The garbage collector's settings for the long-running commands."""

from __future__ import annotations

import gc

from prometheus_client import CollectorRegistry

from streams.metrics import Metrics
from streams.runtime import GC_THRESHOLDS, gc_tuned, time_collections


def test_gc_tuned_sets_the_thresholds_and_restores_them() -> None:
    before = gc.get_threshold()
    with gc_tuned():
        assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_threshold() == before


def test_each_collection_is_timed_by_generation_until_stopped() -> None:
    registry = CollectorRegistry()
    pauses = Metrics(registry).gc_pause
    stop = time_collections(pauses)

    def count(generation: int) -> float:
        found = registry.get_sample_value(
            "abusemon_gc_pause_seconds_count", {"generation": str(generation)}
        )
        return found or 0.0

    try:
        # A container in a cycle, which only the collector frees: the full collection takes time.
        held = [[] for _ in range(50_000)]
        for inner in held:
            inner.append(inner)
        del held, inner
        before = count(2)
        gc.collect(2)
        gc.collect(0)
        assert count(2) >= before + 1 and count(0) >= 1
        total = registry.get_sample_value("abusemon_gc_pause_seconds_sum", {"generation": "2"})
        assert total is not None and total > 0
    finally:
        stop()
    after = count(2)
    gc.collect(2)
    assert count(2) == after, "stopped"
