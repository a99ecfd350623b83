"""A histogram for the event loop's hot path, exposed as Prometheus exposes its own.

``prometheus_client.Histogram.observe`` takes a lock for the sum and another for the
bucket: about 1 µs, paid for every event a worker processes. Everything that
observes these histograms runs on the worker's event loop, and so does the scrape
that reads them, so no lock is needed: an observation is a bisection and two
additions. The exposition (``_bucket``, ``_count``, ``_sum`` with cumulative ``le``
buckets) is the one ``prometheus_client`` writes.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = ["LoopHistogram"]


class _Child:
    """One label set's counts: per bucket (not cumulative) and the sum."""

    __slots__ = ("_bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.counts = [0] * len(bounds)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count ``value`` in the first bucket whose upper bound is at least ``value``."""
        self.counts[bisect_left(self._bounds, value)] += 1
        self.sum += value


class LoopHistogram(Collector):
    """A Prometheus histogram without locks, for observations made on one event loop.

    Examples
    --------
    >>> registry = CollectorRegistry()
    >>> h = LoopHistogram("work_seconds", "Work.", buckets=(0.1, 1.0), registry=registry)
    >>> h.observe(0.1); h.observe(0.5); h.observe(7.0)
    >>> registry.get_sample_value("work_seconds_bucket", {"le": "0.1"})
    1.0
    >>> registry.get_sample_value("work_seconds_bucket", {"le": "+Inf"})
    3.0
    >>> registry.get_sample_value("work_seconds_sum")
    7.6
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float],
        registry: CollectorRegistry | None = None,
    ) -> None:
        bounds = sorted(float(b) for b in buckets)
        if not bounds or bounds[-1] != math.inf:
            bounds.append(math.inf)
        self._name = name
        self._documentation = documentation
        self._bounds = tuple(bounds)
        self._labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], _Child] = {}
        if not self._labelnames:
            self._unlabelled = self._child(())
        if registry is not None:
            registry.register(self)

    def labels(self, **labels: str) -> _Child:
        """The histogram of one label set (created at zero on first use)."""
        if set(labels) != set(self._labelnames):
            raise ValueError(f"labels must be {self._labelnames}, got {tuple(labels)}")
        return self._child(tuple(str(labels[name]) for name in self._labelnames))

    def observe(self, value: float) -> None:
        """Observe ``value`` (a histogram without labels)."""
        self._unlabelled.observe(value)

    def describe(self) -> Iterable[Metric]:
        return [HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)]

    def collect(self) -> Iterable[Metric]:
        family = HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)
        for values, child in self._children.items():
            cumulative, buckets = 0, list[tuple[str, float]]()
            for bound, count in zip(self._bounds, child.counts, strict=True):
                cumulative += count
                buckets.append((floatToGoString(bound), float(cumulative)))  # type: ignore[no-untyped-call]
            family.add_metric(list(values), buckets, child.sum)
        return [family]

    def _child(self, values: tuple[str, ...]) -> _Child:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = _Child(self._bounds)
        return child
