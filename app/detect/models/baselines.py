"""Shop baselines: what "usual" dwell, form and checkout times are in this shop.

Streaming p90s (River's P² ``Quantile``) of a few durations, learned from every
session of a partition, so a rule's fixed default ("a long dwell is 120 s") can
follow the shop once it has seen enough, within bounds.
"""

from __future__ import annotations

from river import stats

__all__ = ["BASELINE_METRICS", "ShopBaselines"]

#: The durations a shop's baselines follow, in ms: dwell per page type, time on one
#: form, time at one checkout step, and the gap between two events of a session.
BASELINE_METRICS: tuple[str, ...] = (
    "dwell_product_ms",
    "dwell_cart_ms",
    "dwell_checkout_ms",
    "dwell_other_ms",
    "form_ms",
    "checkout_step_ms",
    "event_gap_ms",
)


class ShopBaselines:
    """A running quantile and a count per metric of ``BASELINE_METRICS``.

    ``threshold`` is the shop's quantile once ``min_count`` values have been seen, and
    the caller's default before (cold start). A warm threshold stays within
    ``[default * low_factor, default * high_factor]``: the shop refines a rule, but
    neither a flood of bot traffic nor a shop of slow readers can make it fire on
    every visit (below half the default) or never (beyond four times it).

    Parameters
    ----------
    q
        The quantile that is "unusually long", strictly between 0 and 1.
    min_count
        Values a metric needs before its quantile is trusted. The P² estimate of a
        p90 settles after a few hundred values; at 200, some 20 lie above it.
    low_factor, high_factor
        Bounds of a warm threshold, as multiples of the default.

    Examples
    --------
    >>> b = ShopBaselines(min_count=3)
    >>> b.threshold("form_ms", 180_000.0)  # cold: the default
    180000.0
    >>> for ms in (200_000.0, 250_000.0, 300_000.0):
    ...     b.observe("form_ms", ms)
    >>> 180_000.0 < b.threshold("form_ms", 180_000.0) <= 300_000.0
    True
    """

    def __init__(
        self,
        q: float = 0.9,
        min_count: int = 200,
        low_factor: float = 0.5,
        high_factor: float = 4.0,
    ) -> None:
        if not 0 < q < 1:
            raise ValueError(f"q must be strictly between 0 and 1, not {q}")
        if min_count < 1:
            raise ValueError(f"min_count must be at least 1, not {min_count}")
        if not 0 < low_factor <= 1 <= high_factor:
            raise ValueError(
                f"need 0 < low_factor <= 1 <= high_factor, not {low_factor} and {high_factor}"
            )
        self.q = q
        self.min_count = min_count
        self.low_factor = low_factor
        self.high_factor = high_factor
        self._quantiles = {metric: stats.Quantile(q) for metric in BASELINE_METRICS}
        self._counts = dict.fromkeys(BASELINE_METRICS, 0)

    def observe(self, metric: str, value: float) -> None:
        """Fold one duration (≥ 0) of ``metric`` into the shop's baseline."""
        if not value >= 0:  # also refuses NaN
            raise ValueError(f"{metric}: a duration must be a number >= 0, not {value}")
        try:
            self._quantiles[metric].update(value)
        except KeyError:
            raise ValueError(f"unknown baseline metric {metric!r}") from None
        self._counts[metric] += 1

    def threshold(self, metric: str, default: float) -> float:
        """The shop's quantile of ``metric`` within the bounds, or ``default`` while cold."""
        if self.count(metric) < self.min_count:
            return default
        estimate = self._quantiles[metric].get()
        if estimate is None:  # only before the first value
            return default
        return min(max(estimate, default * self.low_factor), default * self.high_factor)

    def count(self, metric: str) -> int:
        """How many values of ``metric`` have been observed."""
        try:
            return self._counts[metric]
        except KeyError:
            raise ValueError(f"unknown baseline metric {metric!r}") from None
