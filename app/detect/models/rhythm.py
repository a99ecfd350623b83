"""Customer rhythm: a few floats per customer, and how far a gap strays from them.

The only model state kept per customer: an exponentially weighted mean and variance
(``EwStats``) of the days between visits, and another of the gaps between events.
Everything else is a pure function of those floats.
"""

from __future__ import annotations

from math import sqrt
from typing import NamedTuple

__all__ = ["RHYTHM_ALPHA", "EwStats", "churn_risk", "excess_z", "rhythm_slowed", "update_ew"]

#: Weight of the newest gap: the one ``app.detect.state`` gives visits in its rhythm means.
RHYTHM_ALPHA = 0.3
# A churn risk of one half is a gap this many standard deviations above the usual one:
# two, the usual line between a long gap and an unusual one.
_HALF_RISK_Z = 2.0
# After a few near-identical gaps the variance is about nil and any extra hour would
# count as many deviations; a quarter of the usual gap is the least spread believed.
_MIN_STD_SHARE = 0.25


class EwStats(NamedTuple):
    """Exponentially weighted mean and variance of a gap, and how many gaps went in.

    A tuple so it is cheap to make once per event and small in a customer's state.
    """

    mean: float = 0.0
    var: float = 0.0
    n: int = 0


def update_ew(stats: EwStats, value: float, alpha: float = RHYTHM_ALPHA) -> EwStats:
    """``stats`` with ``value`` folded in (Finch's incremental weighted variance).

    The first value is the mean, with no variance.

    Examples
    --------
    >>> s = update_ew(EwStats(), 2.0)
    >>> s
    EwStats(mean=2.0, var=0.0, n=1)
    >>> update_ew(s, 4.0, alpha=0.5)
    EwStats(mean=3.0, var=1.0, n=2)
    """
    if stats.n == 0:
        return EwStats(value, 0.0, 1)
    diff = value - stats.mean
    step = alpha * diff
    return EwStats(stats.mean + step, (1 - alpha) * (stats.var + diff * step), stats.n + 1)


def excess_z(stats: EwStats, value: float) -> float:
    """How many standard deviations ``value`` lies above the mean (0 when below or unknown).

    The deviation is at least a quarter of the mean; with fewer than two gaps there is
    no spread to measure and the answer is 0.

    Examples
    --------
    >>> excess_z(EwStats(mean=2.0, var=1.0, n=5), 5.0)
    3.0
    >>> excess_z(EwStats(mean=2.0, var=0.0, n=5), 3.0)  # spread floored at 0.5
    2.0
    >>> excess_z(EwStats(mean=2.0, var=1.0, n=1), 9.0)
    0.0
    """
    std = max(sqrt(stats.var), _MIN_STD_SHARE * stats.mean)
    if stats.n < 2 or std <= 0 or value <= stats.mean:
        return 0.0
    return (value - stats.mean) / std


def churn_risk(visit_gaps_days: EwStats, gap_days: float) -> float:
    """A risk from 0 to 1 that the customer is drifting away: the current gap since the last visit
    against their usual gap, squashed as ``z / (z + 2)``.

    0 while the gap is within the usual one, one half at two standard deviations above
    it, towards 1 beyond.

    Examples
    --------
    >>> usual = EwStats(mean=7.0, var=4.0, n=6)
    >>> churn_risk(usual, 6.0), churn_risk(usual, 11.0), round(churn_risk(usual, 25.0), 2)
    (0.0, 0.5, 0.82)
    """
    z = excess_z(visit_gaps_days, gap_days)
    return z / (z + _HALF_RISK_Z)


def rhythm_slowed(visit_gaps_days: EwStats, gap_days: float, min_visits: int = 3) -> bool:
    """Whether a returning customer with at least ``min_visits`` visits before this one is
    coming back unusually late (a churn risk of at least one half).

    ``visit_gaps_days.n`` gaps follow ``n`` visits, so ``n + 1`` visits came before.

    Examples
    --------
    >>> rhythm_slowed(EwStats(mean=7.0, var=4.0, n=2), 12.0)
    True
    >>> rhythm_slowed(EwStats(mean=7.0, var=4.0, n=1), 12.0)  # two visits before
    False
    """
    return visit_gaps_days.n + 1 >= min_visits and churn_risk(visit_gaps_days, gap_days) >= 0.5
