"""Frozen survivors, full collections, and the timing of collector pauses."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from app.runtime.garbage_collection import (
    CollectorPauses,
    collect_everything,
    freeze_survivors,
    set_young_threshold,
)
from app.runtime.metrics import Metrics


class Node:
    """An object that can sit in a reference cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    """Leave the interpreter's collector as the test found it: nothing frozen."""
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.collect()


def _dying_cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_freeze_survivors_moves_live_objects_out_of_the_scans() -> None:
    keep = Node()
    assert any(o is keep for o in gc.get_objects())
    freeze_survivors()
    assert not any(o is keep for o in gc.get_objects()), "a collection would not scan it"
    assert gc.get_freeze_count() > 0


def test_freeze_survivors_scans_nothing_so_a_dead_young_cycle_waits_frozen() -> None:
    gc.disable()  # no automatic collection may find the cycle first
    try:
        cycle = _dying_cycle()
        freeze_survivors()
        gc.collect()
        assert cycle() is not None, "frozen without a collection, so never scanned"
    finally:
        gc.enable()
    collect_everything()
    assert cycle() is None


def test_a_cycle_that_dies_frozen_waits_for_collect_everything() -> None:
    a, b = Node(), Node()
    a.other, b.other = b, a
    cycle = weakref.ref(a)
    freeze_survivors()
    del a, b
    gc.collect()
    assert cycle() is not None, "frozen objects are not scanned"
    assert collect_everything() >= 2
    assert cycle() is None
    assert gc.get_freeze_count() > 0, "survivors are frozen again"


def test_acyclic_frozen_objects_are_still_freed_by_reference_counting() -> None:
    node = Node()
    ref = weakref.ref(node)
    freeze_survivors()
    del node
    assert ref() is None


def test_collector_pauses_time_each_generation_until_uninstalled() -> None:
    metrics = Metrics.create(CollectorRegistry())
    pauses = CollectorPauses(metrics.gc_pause)

    def full_collections() -> float:
        return metrics.gc_pause.labels(generation="2")._sum.get()  # type: ignore[attr-defined]

    pauses.install()
    pauses.install()  # once only
    try:
        assert gc.callbacks.count(pauses) == 1
        gc.collect()
        timed = full_collections()
        assert timed > 0
    finally:
        pauses.uninstall()
    assert pauses not in gc.callbacks
    gc.collect()
    assert full_collections() == timed


@pytest.mark.parametrize(("allocations", "young"), [(50_000, 50_000), (0, None)])
def test_set_young_threshold_keeps_the_older_ones(allocations: int, young: int | None) -> None:
    before = gc.get_threshold()
    try:
        set_young_threshold(allocations)
        after = gc.get_threshold()
        assert after[0] == (before[0] if young is None else young)
        assert after[1:] == before[1:]
    finally:
        gc.set_threshold(*before)
