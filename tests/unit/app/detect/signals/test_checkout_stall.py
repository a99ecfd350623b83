"""Checkout stalls: at payment or review with a cart, nothing bought, and a minute of silence."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from app.detect.signals import SignalThresholds
from app.detect.signals.checkout_stall import (
    KIND,
    REASON,
    checkout_stall_due_ms,
    detect_checkout_stall,
)
from app.ingest.events import ClickEvent
from tests.factories import T0_MS, click, context, fold

DEFAULT_THRESHOLDS = SignalThresholds()
SILENCE = DEFAULT_THRESHOLDS.checkout_stall_ms


def at_step(
    step: str = "payment", ms: int = 0, value: float | None = 40.0, **fields: Any
) -> ClickEvent:
    return click(type="checkout_step", step=step, value=value, ts_ms=T0_MS + ms, **fields)


def stalled(
    events: list[ClickEvent],
    silent_ms: int = SILENCE,
    thresholds: SignalThresholds = DEFAULT_THRESHOLDS,
) -> bool:
    """Whether a timer hears a stall ``silent_ms`` after the newest event."""
    newest_ms = max(e.ts_ms for e in events)
    ctx = context(events, now_ms=newest_ms + silent_ms, timer=True, thresholds=thresholds)
    return detect_checkout_stall(ctx) is not None


@pytest.mark.parametrize(
    "step",
    [
        "payment", "billing", "review", "confirm", "confirmation", "summary",
        # Names other shops give them: case, spaces and other words do not matter.
        "Payment", "add_payment_info", "Billing address", "pay", "Order Review", "place-order",
    ],
)  # fmt: skip
def test_final_steps_stall(step: str) -> None:
    assert stalled([at_step(step)])


@pytest.mark.parametrize(
    "step", ["cart", "shipping", "login", "step-3", "Shipping Address", "begin_checkout", "Basket"]
)
def test_earlier_steps_do_not(step: str) -> None:
    assert not stalled([at_step(step)])


@pytest.mark.parametrize(
    ("silent_ms", "fires"), [(SILENCE - 1, False), (SILENCE, True), (8 * 3_600_000, True)]
)
def test_the_silence_must_last_a_minute(silent_ms: int, fires: bool) -> None:
    assert stalled([at_step()], silent_ms) is fires


@pytest.mark.parametrize(
    "events",
    [
        pytest.param([at_step(value=None)], id="no-cart"),
        pytest.param([at_step(value=0.0)], id="empty-cart"),
        pytest.param([at_step(), click(type="purchase", value=40.0, ts_ms=T0_MS + 9000)],
                     id="bought"),
        pytest.param([at_step(), at_step("shipping", 5000)], id="went-back-to-shipping"),
    ],
)  # fmt: skip
def test_no_stall_without_a_cart_at_a_final_step(events: list[ClickEvent]) -> None:
    assert not stalled(events)


def test_any_event_restarts_the_silence() -> None:
    events = [at_step(), click(type="scroll", scroll_pct=50.0, ts_ms=T0_MS + 50_000)]

    assert not stalled(events, silent_ms=SILENCE - 1)
    assert stalled(events, silent_ms=SILENCE)


def test_a_late_event_is_placed_where_its_time_puts_it() -> None:
    # A step sent earlier (shipping) arrives after payment: the customer is at payment.
    events = [at_step("payment", 5000), at_step("shipping", 1000)]
    session = fold(events).session
    assert session is not None

    assert session.step == "payment"
    assert checkout_stall_due_ms(session, DEFAULT_THRESHOLDS) == T0_MS + 5000 + SILENCE
    assert stalled(events)


def test_never_on_an_event() -> None:
    events = [at_step(), click(type="scroll", ts_ms=T0_MS + 10 * SILENCE)]

    assert detect_checkout_stall(context(events)) is None


def test_once_per_session() -> None:
    session = fold([at_step()]).session
    assert session is not None

    assert checkout_stall_due_ms(session, DEFAULT_THRESHOLDS) == T0_MS + SILENCE
    assert (
        checkout_stall_due_ms(replace(session, fired_reasons=(REASON,)), DEFAULT_THRESHOLDS) is None
    )


@pytest.mark.parametrize(
    ("stall_ms", "silent_ms", "fires"), [(5000, 5000, True), (5000, 4999, False)]
)
def test_thresholds_are_respected(stall_ms: int, silent_ms: int, fires: bool) -> None:
    thresholds = SignalThresholds(checkout_stall_ms=stall_ms)

    assert stalled([at_step()], silent_ms, thresholds) is fires


@pytest.mark.parametrize(
    ("value", "shown"), [(59.5, "59.5"), (12_345.67, "12345.67"), (1_500_000.0, "1500000")]
)
def test_the_cart_value_is_shown_as_it_is(value: float, shown: str) -> None:
    signal = detect_checkout_stall(context([at_step(value=value)], T0_MS + SILENCE, timer=True))

    assert signal is not None
    assert f" with {shown} in the cart " in signal.explanation


def test_signal() -> None:
    ctx = context([at_step("review", value=59.5)], now_ms=T0_MS + 95_000, timer=True)

    signal = detect_checkout_stall(ctx)

    assert signal is not None
    assert (signal.reason, signal.kind) == (REASON, KIND) == ("checkout_stall", "assist")
    assert signal.score == pytest.approx(0.7)
    assert signal.evidence == {"silent_s": 95.0, "cart_value": 59.5, "cart_items": 0.0}
    assert signal.explanation == (
        "The customer has been at the review step with 59.5 in the cart and no activity for "
        "95 s; they may be stuck or unsure."
    )


def test_a_cart_of_items_without_prices_stalls_too() -> None:
    # A shop whose cart events carry no value: the items make the cart.
    added = click(type="add_to_cart", product_id="p1", ts_ms=T0_MS - 5_000)
    events = [added, at_step(value=None)]
    newest_ms = max(e.ts_ms for e in events)
    signal = detect_checkout_stall(context(events, now_ms=newest_ms + SILENCE, timer=True))

    assert signal is not None
    assert "with 1 item in the cart" in signal.explanation
