"""Customer rhythm: weighted gap statistics, churn risk and the "rhythm slowed" predicate."""

from __future__ import annotations

from itertools import pairwise

import pytest

from app.detect.models.rhythm import (
    EwStats,
    churn_risk,
    excess_z,
    rhythm_slowed,
    update_ew,
)

WEEKLY = EwStats(mean=7.0, var=1.0, n=8)  # std 1, but at least a quarter of 7: 1.75


def folded(gaps: list[float], alpha: float = 0.3) -> EwStats:
    stats = EwStats()
    for gap in gaps:
        stats = update_ew(stats, gap, alpha)
    return stats


def weighted_reference(gaps: list[float], alpha: float) -> tuple[float, float]:
    """Mean and variance by explicit weights: the newest gap alpha, older ones decaying."""
    weights = [alpha * (1 - alpha) ** (len(gaps) - 1 - i) for i in range(1, len(gaps))]
    weights.insert(0, (1 - alpha) ** (len(gaps) - 1))  # the first gap keeps the rest
    mean = sum(w * g for w, g in zip(weights, gaps, strict=True))
    return mean, sum(w * (g - mean) ** 2 for w, g in zip(weights, gaps, strict=True))


def test_the_first_gap_is_the_mean_with_no_spread() -> None:
    assert update_ew(EwStats(), 3.5) == EwStats(3.5, 0.0, 1)


@pytest.mark.parametrize("alpha", [0.1, 0.3, 0.5])
def test_the_update_is_an_exponentially_weighted_mean_and_variance(alpha: float) -> None:
    gaps = [7.0, 6.0, 8.5, 7.0, 12.0, 5.0, 7.5]
    mean, var = weighted_reference(gaps, alpha)
    stats = folded(gaps, alpha)
    assert stats.n == len(gaps)
    assert stats.mean == pytest.approx(mean)
    assert stats.var == pytest.approx(var)


def test_the_newest_gaps_weigh_most() -> None:
    assert folded([7.0] * 10 + [14.0] * 3).mean > 11.0


@pytest.mark.parametrize(
    ("stats", "gap", "z"),
    [
        pytest.param(WEEKLY, 7.0, 0.0, id="the-usual-gap"),
        pytest.param(WEEKLY, 3.0, 0.0, id="sooner-than-usual"),
        pytest.param(WEEKLY, 10.5, 2.0, id="std-floored-at-a-quarter-of-the-mean"),
        pytest.param(EwStats(7.0, 4.0, 8), 11.0, 2.0, id="std-from-the-variance"),
        pytest.param(EwStats(7.0, 4.0, 1), 30.0, 0.0, id="one-gap-no-spread-known"),
        pytest.param(EwStats(), 30.0, 0.0, id="no-gap-yet"),
    ],
)
def test_excess_z(stats: EwStats, gap: float, z: float) -> None:
    assert excess_z(stats, gap) == pytest.approx(z)


def test_churn_risk_rises_as_the_gap_grows() -> None:
    risks = [churn_risk(WEEKLY, gap) for gap in (5.0, 7.0, 8.0, 10.0, 14.0, 30.0, 365.0)]
    assert risks[:2] == [0.0, 0.0]
    assert all(a < b for a, b in pairwise(risks[1:]))
    assert all(0.0 <= r < 1.0 for r in risks)
    assert churn_risk(WEEKLY, 7.0 + 2 * 1.75) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("stats", "gap", "slowed"),
    [
        pytest.param(EwStats(7.0, 1.0, 2), 10.5, True, id="three-visits-two-deviations-late"),
        pytest.param(EwStats(7.0, 1.0, 2), 10.4, False, id="not-quite-two-deviations"),
        pytest.param(EwStats(7.0, 1.0, 1), 60.0, False, id="only-two-visits-before"),
        pytest.param(EwStats(7.0, 1.0, 9), 5.0, False, id="back-early"),
    ],
)
def test_rhythm_slowed(stats: EwStats, gap: float, slowed: bool) -> None:
    assert rhythm_slowed(stats, gap) is slowed


def test_a_stricter_history_requirement() -> None:
    assert not rhythm_slowed(EwStats(7.0, 1.0, 3), 30.0, min_visits=5)
    assert rhythm_slowed(EwStats(7.0, 1.0, 4), 30.0, min_visits=5)


def test_inter_event_gaps_use_the_same_statistics() -> None:
    # A customer who usually takes ~2 s between events, now silent for 20 s.
    pace = folded([2_000.0, 1_800.0, 2_200.0, 2_000.0, 1_900.0], alpha=0.1)
    assert excess_z(pace, 20_000.0) > 10
    assert excess_z(pace, 2_100.0) < 1
