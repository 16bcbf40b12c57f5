"""The garbage collector's settings for the long-running commands."""

from __future__ import annotations

import gc

from streams.runtime import GC_THRESHOLDS, gc_tuned


def test_gc_tuned_sets_the_thresholds_and_restores_them() -> None:
    before = gc.get_threshold()
    with gc_tuned():
        assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_threshold() == before
