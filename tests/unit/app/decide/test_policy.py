"""``decide``: which signal speaks, which are held back and why."""

from __future__ import annotations

import pytest

from app.decide.policy import decide
from app.detect.signals import PRIORITY, Signal
from tables.customer_state import SessionState


def session(**fields: object) -> SessionState:
    return SessionState("s", 0, 0, **fields)  # type: ignore[arg-type]


def test_no_signal_no_decision() -> None:
    decision = decide([], session())

    assert (decision.main, decision.others, decision.suppressed) == (None, [], [])


@pytest.mark.parametrize(
    ("fired", "main", "others"),
    [
        (["rage_click"], "rage_click", []),
        (["product_hesitation", "payment_failure"], "payment_failure", ["product_hesitation"]),
        (
            ["micro_action", "dead_click", "rage_click"],
            "rage_click",
            ["dead_click", "micro_action"],
        ),
    ],
)
def test_the_highest_priority_speaks_and_lists_the_others(
    fired: list[str], main: str, others: list[str]
) -> None:
    decision = decide([Signal(r, "assist", 0.5) for r in fired], session())

    assert decision.main is not None and decision.main.reason == main
    assert [o.reason for o in decision.others] == others


def test_equal_priority_goes_to_the_higher_score() -> None:
    low, high = Signal("rage_click", "assist", 0.7), Signal("rage_click", "assist", 0.9)

    assert decide([low, high], session()).main is high


def test_a_reason_already_acted_on_is_held_back_as_cooldown() -> None:
    decision = decide([Signal("rage_click", "assist", 0.9)], session(fired_reasons=("rage_click",)))

    assert decision.main is None
    assert decision.suppressed == [("rage_click", "cooldown")]


def test_bots_get_nothing() -> None:
    signals = [Signal("payment_failure", "assist", 0.9), Signal("micro_action", "reward", 0.5)]

    decision = decide(signals, session(bot=True))

    assert decision.main is None
    assert decision.suppressed == [("payment_failure", "bot"), ("micro_action", "bot")]


def test_payment_trouble_beats_everything() -> None:
    assert min(PRIORITY, key=PRIORITY.__getitem__) == "payment_failure"
