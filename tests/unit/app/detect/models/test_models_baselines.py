"""Shop baselines: defaults while cold, the shop's p90 once warm, always within bounds."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from app.detect.models.baselines import BASELINE_METRICS, ShopBaselines

DEFAULT_MS = 120_000.0


def observed(values: list[float], metric: str = "dwell_product_ms", **kwargs: Any) -> ShopBaselines:
    baselines = ShopBaselines(**kwargs)
    for value in values:
        baselines.observe(metric, value)
    return baselines


def lognormal_ms(n: int, median_ms: float, seed: int = 7) -> list[float]:
    rng = random.Random(seed)
    return [median_ms * math.exp(rng.gauss(0.0, 0.5)) for _ in range(n)]


def true_p90(values: list[float]) -> float:
    return sorted(values)[int(0.9 * len(values))]


def test_every_metric_starts_cold_with_the_default() -> None:
    baselines = ShopBaselines()
    for metric in BASELINE_METRICS:
        assert baselines.count(metric) == 0
        assert baselines.threshold(metric, 42.0) == 42.0


def test_cold_until_min_count_values() -> None:
    values = lognormal_ms(200, median_ms=150_000.0)
    assert observed(values[:199]).threshold("dwell_product_ms", DEFAULT_MS) == DEFAULT_MS
    assert observed(values).threshold("dwell_product_ms", DEFAULT_MS) != DEFAULT_MS


@pytest.mark.parametrize("median_ms", [60_000.0, 100_000.0, 180_000.0])
def test_warm_thresholds_follow_the_shop_p90(median_ms: float) -> None:
    values = lognormal_ms(5_000, median_ms)
    threshold = observed(values).threshold("dwell_product_ms", DEFAULT_MS)
    assert threshold == pytest.approx(true_p90(values), rel=0.05)


@pytest.mark.parametrize(
    ("median_ms", "bound"),
    [
        pytest.param(1_000.0, DEFAULT_MS / 2, id="never-below-half-the-default"),
        pytest.param(2_000_000.0, DEFAULT_MS * 4, id="never-above-four-times-the-default"),
    ],
)
def test_warm_thresholds_stay_within_bounds(median_ms: float, bound: float) -> None:
    values = lognormal_ms(500, median_ms)
    assert observed(values).threshold("dwell_product_ms", DEFAULT_MS) == bound


def test_bounds_are_settings() -> None:
    values = lognormal_ms(500, 2_000_000.0)
    baselines = observed(values, high_factor=2.0)
    assert baselines.threshold("dwell_product_ms", DEFAULT_MS) == 2 * DEFAULT_MS


def test_metrics_are_kept_apart() -> None:
    baselines = observed(lognormal_ms(300, 200_000.0), metric="form_ms")
    assert baselines.count("form_ms") == 300
    assert baselines.threshold("dwell_cart_ms", DEFAULT_MS) == DEFAULT_MS


@pytest.mark.parametrize("value", [-1.0, math.nan])
def test_a_value_that_is_not_a_duration_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match="duration"):
        ShopBaselines().observe("form_ms", value)


def test_an_unknown_metric_is_refused() -> None:
    baselines = ShopBaselines()
    with pytest.raises(ValueError, match="unknown baseline metric"):
        baselines.observe("dwell_ms", 1.0)
    with pytest.raises(ValueError, match="unknown baseline metric"):
        baselines.threshold("dwell_ms", 1.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"q": 0.0},
        {"q": 1.0},
        {"min_count": 0},
        {"low_factor": 0.0},
        {"low_factor": 1.5},
        {"high_factor": 0.9},
    ],
)
def test_bad_arguments_fail_at_construction(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ShopBaselines(**kwargs)
