"""Keeping CPython's cyclic garbage collector from pausing the worker for long.

A worker holds many long-lived objects: each customer's state is five to forty
objects the collector tracks. A full (generation 2) collection scans every tracked
object, so its pause grows with the customers a worker holds (~95 ms at 100 000
small states on this machine), and CPython runs one each time the long-lived
population has grown by a quarter. Every event that arrives meanwhile waits.

The worker also raises the allocation count that starts a young collection
(``gc_young_threshold``; CPython's default is 700). Each event replaces its
customer's state with a new one (copied, so a failure half-way leaves the old
intact) and makes a few short-lived objects: with 700, a young collection ran
every ~25 events and cost a third of the worker's time, though reference
counting had freed nearly everything it would have found. Fewer, larger young
collections find the same survivors.

And the worker freezes what is tracked every ``gc_freeze_interval_s``
(``gc.freeze()``, which moves the lists and scans nothing): frozen objects are never
scanned, and a young collection looks only at what was made since the last freeze.
It does not collect first: measured on the throughput benchmark, every young
collection in steady state found nothing (the states are acyclic; reference
counting frees them) and cost 50 to 120 ms, up to a tenth of the worker's time and
its worst pauses. Reference counting still frees a frozen object the moment it is
no longer used; only a reference cycle that dies frozen waits, for the full
collection that runs every ``gc_full_collection_interval_s`` (unfreeze, collect
everything, freeze again).
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import Histogram

__all__ = ["CollectorPauses", "collect_everything", "freeze_survivors", "set_young_threshold"]


class CollectorPauses:
    """Times every collection into ``histogram`` (label ``generation``) via ``gc.callbacks``."""

    def __init__(self, histogram: Histogram) -> None:
        self._by_generation = [histogram.labels(generation=str(g)) for g in range(3)]
        self._started = 0.0

    def install(self) -> None:
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def uninstall(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._by_generation[info["generation"]].observe(time.perf_counter() - self._started)


def set_young_threshold(allocations: int) -> None:
    """Run a young collection every ``allocations`` net container allocations (0: default)."""
    if allocations:
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(allocations, older, oldest)


def freeze_survivors() -> None:
    """Move every object tracked now out of the collector's scans (no collection first)."""
    gc.freeze()


def collect_everything() -> int:
    """Unfreeze, run a full collection, freeze what survives; returns what was collected."""
    gc.unfreeze()
    collected = gc.collect()
    gc.freeze()
    return collected
