"""The loop histogram exposes exactly what prometheus_client's own histogram would."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from app.runtime.loop_histogram import LoopHistogram

_BUCKETS = (0.00001, 0.000025, 0.0001, 0.001, 0.1)


def _exposition(registry: CollectorRegistry) -> list[str]:
    """The sample lines, without ``_created`` (a timestamp only prometheus_client writes)."""
    lines = generate_latest(registry).decode().splitlines()
    return [line for line in lines if "_created" not in line]


@pytest.mark.parametrize("labelnames", [(), ("model",)])
def test_the_same_observations_expose_the_same_samples(labelnames: tuple[str, ...]) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop = LoopHistogram("work_seconds", "Work.", labelnames, buckets=_BUCKETS, registry=ours)
    stock = Histogram("work_seconds", "Work.", labelnames, buckets=_BUCKETS, registry=theirs)
    rng = random.Random(7)
    # Values on the bounds, between them, above the last and zero.
    values = [*_BUCKETS, 0.0, 5.0, *(rng.uniform(0, 0.2) for _ in range(500))]
    for i, value in enumerate(values):
        if labelnames:
            label = ("rules", "anomaly")[i % 2]
            loop.labels(model=label).observe(value)
            stock.labels(model=label).observe(value)
        else:
            loop.observe(value)
            stock.observe(value)
    assert _exposition(ours) == _exposition(theirs)


def test_a_label_set_is_exposed_at_zero_once_named() -> None:
    registry = CollectorRegistry()
    h = LoopHistogram("score", "Scores.", ["model"], buckets=(0.5, 1.0), registry=registry)
    h.labels(model="rules")
    assert registry.get_sample_value("score_count", {"model": "rules"}) == 0.0
    assert registry.get_sample_value("score_bucket", {"model": "rules", "le": "+Inf"}) == 0.0


def test_wrong_labels_are_refused() -> None:
    h = LoopHistogram("score", "Scores.", ["model"], buckets=(0.5,))
    with pytest.raises(ValueError, match="labels must be"):
        h.labels(kind="x")


def test_a_second_registration_of_the_name_is_refused() -> None:
    registry = CollectorRegistry()
    LoopHistogram("work_seconds", "Work.", buckets=(1.0,), registry=registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Histogram("work_seconds", "Work.", buckets=(1.0,), registry=registry)
