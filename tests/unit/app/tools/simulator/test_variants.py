"""The parameter profiles: complete, checked when built, and the held-out one differs."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from app.errors import ConfigError
from app.tools.simulator import LOOKALIKES, STORIES, VARIANTS, Faults
from app.tools.simulator.variants import HOLDOUT, TUNING, Behaviour

PACE = ("load_ms", "glance_ms", "read_ms", "field_ms", "step_ms", "leave_ms", "think_sigma")
FAULT_RATES = (
    "network_delay_ms", "out_of_order_share", "very_late_share", "retry_share",
    "session_end_share", "two_device_share", "clock_skew_ms",
)  # fmt: skip


def test_there_are_two_variants_and_tuning_comes_first() -> None:
    assert list(VARIANTS) == ["tuning", "holdout"]
    assert VARIANTS["tuning"] is TUNING and VARIANTS["holdout"] is HOLDOUT


@pytest.mark.parametrize("variant", list(VARIANTS.values()), ids=list(VARIANTS))
def test_a_variant_covers_every_story_and_look_alike(variant: Any) -> None:
    assert list(variant.mix) == list(STORIES)
    assert sum(variant.mix.values()) == pytest.approx(1.0)
    assert variant.mix["clean_buyer"] + variant.mix["browser_leaves"] > 0.5
    assert set(variant.behaviour.lookalike_p) == set(LOOKALIKES)


@pytest.mark.parametrize("name", PACE)
def test_holdout_thinks_at_another_pace(name: str) -> None:
    assert getattr(HOLDOUT.behaviour, name) != getattr(TUNING.behaviour, name)


@pytest.mark.parametrize("name", FAULT_RATES)
def test_holdout_has_other_fault_rates(name: str) -> None:
    assert getattr(HOLDOUT.faults, name) != getattr(TUNING.faults, name)


def test_holdout_has_other_look_alikes_and_mix() -> None:
    differ = [
        n for n in LOOKALIKES if HOLDOUT.behaviour.lookalike_p[n] != TUNING.behaviour.lookalike_p[n]
    ]
    assert differ == list(LOOKALIKES)
    # Some look-alikes only the held-out set has: a change tuned on tuning never saw them.
    only_holdout = [n for n in LOOKALIKES if TUNING.behaviour.lookalike_p[n] == 0]
    assert only_holdout and all(HOLDOUT.behaviour.lookalike_p[n] > 0 for n in only_holdout)
    assert HOLDOUT.mix != TUNING.mix
    assert HOLDOUT.behaviour.bot_gap_ms != TUNING.behaviour.bot_gap_ms


def test_tuning_fault_rates_are_the_ones_asked_for() -> None:
    faults = TUNING.faults
    assert faults.network_delay_ms == 80  # median network delay
    assert 0.01 <= faults.retry_share <= 0.02
    assert faults.out_of_order_ms[1] < 5_000 <= faults.very_late_ms[0]  # the allowed lateness
    assert faults.session_end_share == pytest.approx(0.5)
    assert faults.clock_skew_ms == (-90_000, 30_000)


def test_the_default_faults_are_a_perfect_network() -> None:
    faults = Faults()
    assert (faults.network_delay_ms, faults.out_of_order_share, faults.very_late_share) == (0, 0, 0)
    assert (faults.retry_share, faults.two_device_share, faults.session_end_share) == (0, 0, 1)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"retry_share": -0.1}, "retry_share: must be a share from 0 to 1"),
        ({"session_end_share": 2}, "session_end_share: must be a share from 0 to 1"),
        ({"two_device_share": float("nan")}, "two_device_share: must be a share"),
        ({"out_of_order_ms": (4_000, 500)}, "out_of_order_ms: must be (low, high)"),
        ({"very_late_ms": (-1, 10)}, "very_late_ms: must be (low, high)"),
        ({"clock_skew_ms": (10, -10)}, "clock_skew_ms: must be (low, high) with low <= high"),
        ({"network_delay_sigma": 3}, "network_delay_sigma: must be from 0 to 2"),
        (
            {"out_of_order_share": 0.7, "very_late_share": 0.5},
            "out_of_order_share + very_late_share: must be at most 1",
        ),
    ],
)
def test_bad_faults_fail_at_once(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Faults(**overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"read_ms": 0}, "read_ms: must be a positive number"),
        ({"think_sigma": -1}, "think_sigma: must be from 0 to 2"),
        ({"slip_p": 1.5}, "slip_p: must be a share from 0 to 1"),
        ({"lookalike_p": {"carousel": 0.1}}, "lookalike_p: needs exactly"),
        ({"lookalike_p": dict.fromkeys(LOOKALIKES, 2.0)}, r"lookalike_p\[cart_edit\]"),
    ],
)
def test_bad_behaviour_fails_at_once(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(TUNING.behaviour, **overrides)


def test_behaviour_is_a_frozen_record() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        TUNING.behaviour.read_ms = 1  # type: ignore[misc]
    assert isinstance(HOLDOUT.behaviour, Behaviour)
