"""SimulationConfig checks its arguments when it is built; parse_mix reads --mix."""

from __future__ import annotations

from typing import Any

import pytest

from app.errors import ConfigError
from app.tools.simulator import DEFAULT_MIX, STORIES, VARIANTS, Faults, SimulationConfig
from app.tools.simulator.config import DEFAULT_START_MS, parse_mix


def test_defaults() -> None:
    config = SimulationConfig()
    assert (config.customers, config.days, config.sessions_per_customer, config.seed) == (
        1000, 7.0, 3.0, 0,
    )  # fmt: skip
    assert config.start_ms == DEFAULT_START_MS == 1_767_225_600_000  # 2026-01-01T00:00:00Z
    assert (config.variant, config.mix, config.faults) == (
        "tuning", DEFAULT_MIX, VARIANTS["tuning"].faults,
    )  # fmt: skip
    assert config.id_prefix == ""


def test_default_mix_covers_every_story_and_is_mostly_clean() -> None:
    assert list(DEFAULT_MIX) == list(STORIES)
    assert sum(DEFAULT_MIX.values()) == pytest.approx(1.0)
    assert DEFAULT_MIX["clean_buyer"] + DEFAULT_MIX["browser_leaves"] > 0.5


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_variant_brings_its_mix_and_faults_unless_given(variant: str) -> None:
    config = SimulationConfig(variant=variant)
    assert (config.mix, config.faults) == (VARIANTS[variant].mix, VARIANTS[variant].faults)
    given = SimulationConfig(variant=variant, mix={"bot": 1}, faults=Faults())
    assert (given.mix, given.faults) == ({"bot": 1.0}, Faults())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"customers": 0}, "customers: must be a whole number >= 1, got 0"),
        ({"customers": 2.0}, "customers: must be a whole number >= 1, got 2.0"),
        ({"customers": True}, "customers: must be a whole number >= 1, got True"),
        ({"days": 0}, "days: must be a positive number, got 0"),
        ({"days": -1.5}, "days: must be a positive number"),
        ({"days": float("inf")}, "days: must be a positive number"),
        ({"days": "7"}, "days: must be a positive number"),
        ({"sessions_per_customer": 0.5}, "sessions_per_customer: must be a number >= 1"),
        ({"sessions_per_customer": float("nan")}, "sessions_per_customer: must be a number"),
        ({"seed": -1}, "seed: must be a whole number from 0 to 2**63-1"),
        ({"seed": 2**63}, "seed: must be a whole number from 0 to 2**63-1"),
        ({"seed": 1.0}, "seed: must be a whole number"),
        ({"start_ms": -1}, "start_ms: must be whole ms since the epoch"),
        ({"start_ms": "2026-01-01"}, "start_ms: must be whole ms since the epoch"),
        ({"mix": {"window_shopper": 1}}, "mix: unknown stories ['window_shopper']"),
        ({"mix": {"clean_buyer": -1}}, "mix: weight of clean_buyer must be a number >= 0"),
        ({"mix": {"clean_buyer": float("nan")}}, "mix: weight of clean_buyer must be a number"),
        ({"mix": {"clean_buyer": 0}}, "mix: at least one story needs a positive weight"),
        ({"mix": {}}, "mix: at least one story needs a positive weight"),
        ({"variant": "validation"}, "variant: must be one of tuning, holdout, got 'validation'"),
        ({"faults": {"retry_share": 0.1}}, "faults: must be a Faults"),
        ({"id_prefix": "run 1"}, "id_prefix: at most 24 letters, digits"),
        ({"id_prefix": "x" * 25}, "id_prefix: at most 24"),
        ({"id_prefix": 7}, "id_prefix: at most 24"),
    ],
)
def test_bad_arguments_fail_at_once(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        SimulationConfig(**overrides)
    assert str(caught.value).startswith(message)


def test_mix_is_copied_into_story_order() -> None:
    given = {"error_burst": 1, "clean_buyer": 2}
    config = SimulationConfig(mix=given)
    assert list(config.mix.items()) == [("clean_buyer", 2.0), ("error_burst", 1.0)]
    given["clean_buyer"] = 99
    assert config.mix["clean_buyer"] == 2.0


def test_configs_compare_by_value_and_are_frozen() -> None:
    assert SimulationConfig(seed=4, mix={"clean_buyer": 1}) == SimulationConfig(
        seed=4, mix={"clean_buyer": 1.0}
    )
    with pytest.raises(AttributeError):
        SimulationConfig().seed = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "mix"),
    [
        ("clean_buyer=1", {"clean_buyer": 1.0}),
        ("clean_buyer=5,rage_clicker=1.5", {"clean_buyer": 5.0, "rage_clicker": 1.5}),
        (" clean_buyer = 2 , step_looper=0 ", {"clean_buyer": 2.0, "step_looper": 0.0}),
        ("unknown=1", {"unknown": 1.0}),  # SimulationConfig names unknown stories
    ],
)
def test_parse_mix(text: str, mix: dict[str, float]) -> None:
    assert parse_mix(text) == mix


@pytest.mark.parametrize("text", ["", "clean_buyer", "clean_buyer=", "clean_buyer=lots", "=1,"])
def test_parse_mix_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="mix: expected story=weight"):
        parse_mix(text)
