"""Interpreter settings for the long-running commands (the worker, `evaluate`).

The cyclic garbage collector's default thresholds (700, 10, 10) suit small programs. The
worker allocates several container objects per event and holds many (actor summaries,
coordination rows, decoded partials), so young collections ran every few events and full
collections, which traverse all of that state, every few seconds: about a quarter of the
worker's own CPU time over simulator events. Nearly all of it is freed by reference counting
anyway; the rare cycles are still collected, only later.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import Histogram

# Container allocations (net of deallocations) between young collections; young collections
# per middle one; middle ones per full one (which CPython also holds back until the objects
# that survived since the last full collection number a quarter of those that had). A young
# collection costs more with more young objects but far less than in proportion (it also
# traverses the young containers that hold much, a window's pending rows): over an hour of
# simulated traffic through `evaluate`, 200,000 spent 0.3 s collecting where 50,000 spent 0.8.
GC_THRESHOLDS = (200_000, 20, 10)


def tune_gc() -> None:
    """For a process that runs the worker from here on: collect what start-up left, keep the
    objects alive now (modules, the app, its settings) out of every later collection, and
    collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


@contextlib.contextmanager
def gc_tuned() -> Iterator[None]:
    """Collect less often inside the block; the thresholds before it are restored after."""
    before = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def time_collections(pauses: Histogram) -> Callable[[], None]:
    """Observe how long each collection of the cyclic garbage collector holds the process,
    by generation, into `pauses` (a histogram labelled `generation`); returns what stops it.
    The event loop waits while it runs: a full collection traverses every container held."""
    children = [pauses.labels(str(generation)) for generation in range(3)]
    started = 0.0

    def callback(phase: str, info: dict[str, Any]) -> None:
        nonlocal started
        if phase == "start":
            started = time.perf_counter()
        else:
            children[info["generation"]].observe(time.perf_counter() - started)

    gc.callbacks.append(callback)
    return lambda: gc.callbacks.remove(callback)
