"""Cart abandonment risk: a cart nobody bought, and the visit ending or ten idle minutes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.detect.signals import SignalThresholds
from app.detect.signals.cart_abandonment import (
    KIND,
    REASON,
    cart_idle_due_ms,
    detect_cart_abandonment_risk,
)
from app.ingest.events import ClickEvent
from tests.factories import T0_MS, click, context, fold

DEFAULT_THRESHOLDS = SignalThresholds()
IDLE = DEFAULT_THRESHOLDS.cart_idle_ms

ADDED = click(type="add_to_cart", product_id="p1", value=25.0, ts_ms=T0_MS)


def at(ms: int, type: str, **fields: object) -> ClickEvent:
    return click(type=type, ts_ms=T0_MS + ms, **fields)


@pytest.mark.parametrize(
    ("events", "fires"),
    [
        pytest.param([ADDED, at(9000, "session_end")], True, id="leaving-with-a-cart"),
        pytest.param([at(0, "page_view", page="/"), at(9000, "session_end")], False,
                     id="leaving-without-a-cart"),
        pytest.param([ADDED, at(5000, "purchase", value=25.0), at(9000, "session_end")], False,
                     id="leaving-after-buying"),
        pytest.param([ADDED, at(5000, "remove_from_cart", product_id="p1", value=25.0),
                      at(9000, "session_end")], False, id="leaving-with-an-emptied-cart"),
        pytest.param([ADDED, at(9000, "page_view", page="/")], False, id="still-here"),
    ],
)  # fmt: skip
def test_on_the_visit_ending(events: list[ClickEvent], fires: bool) -> None:
    assert (detect_cart_abandonment_risk(context(events)) is not None) is fires


@pytest.mark.parametrize(
    ("idle_ms", "fires"), [(IDLE - 1, False), (IDLE, True), (8 * 3_600_000, True)]
)
def test_after_ten_idle_minutes(idle_ms: int, fires: bool) -> None:
    ctx = context([ADDED], now_ms=T0_MS + idle_ms, timer=True)

    assert (detect_cart_abandonment_risk(ctx) is not None) is fires


def test_a_late_event_does_not_move_the_idle_time_back() -> None:
    events = [ADDED, at(300_000, "page_view", page="/"), at(296_000, "scroll")]
    session = fold(events).session
    assert session is not None

    assert cart_idle_due_ms(session, DEFAULT_THRESHOLDS) == T0_MS + 300_000 + IDLE


@pytest.mark.parametrize(
    ("fired", "due"),
    [
        ((), T0_MS + IDLE),
        ((REASON,), None),
        (("checkout_stall",), None),
        (("rage_click",), T0_MS + IDLE),
    ],
)
def test_once_per_session_and_not_after_a_stall(fired: tuple[str, ...], due: int | None) -> None:
    session = fold([ADDED]).session
    assert session is not None
    session = replace(session, fired_reasons=fired)

    assert cart_idle_due_ms(session, DEFAULT_THRESHOLDS) == due
    ctx = context([ADDED, at(9000, "session_end")])
    ctx = replace(ctx, session=replace(ctx.session, fired_reasons=fired))
    assert (detect_cart_abandonment_risk(ctx) is not None) is (due is not None)


def test_thresholds_are_respected() -> None:
    thresholds = SignalThresholds(cart_idle_ms=60_000)
    ctx = context([ADDED], now_ms=T0_MS + 60_000, timer=True, thresholds=thresholds)

    assert detect_cart_abandonment_risk(ctx) is not None


@pytest.mark.parametrize(
    ("ctx_args", "how"),
    [
        pytest.param({"events": [ADDED, at(9000, "session_end")]}, "is leaving", id="leaving"),
        pytest.param({"events": [ADDED], "now_ms": T0_MS + 725_000, "timer": True},
                     "has been away for 12 minutes", id="away"),
    ],
)  # fmt: skip
def test_signal(ctx_args: dict[str, object], how: str) -> None:
    signal = detect_cart_abandonment_risk(context(**ctx_args))  # type: ignore[arg-type]

    assert signal is not None
    assert (signal.reason, signal.kind) == (REASON, KIND) == ("cart_abandonment_risk", "reminder")
    assert signal.score == pytest.approx(0.6)
    assert signal.evidence == {"cart_value": 25.0, "cart_items": 1.0}
    assert signal.explanation == (
        f"The customer {how} with 25 in the cart and has not bought it; a gentle reminder may "
        "bring them back."
    )


@pytest.mark.parametrize(
    ("events", "fires"),
    [
        pytest.param([at(0, "add_to_cart", product_id="p1"), at(9000, "session_end")], True,
                     id="leaving-with-an-item"),
        pytest.param([at(0, "add_to_cart", product_id="p1"),
                      at(5000, "remove_from_cart", product_id="p1"), at(9000, "session_end")],
                     False, id="leaving-with-the-item-removed"),
        pytest.param([at(0, "add_to_cart", product_id="p1"), at(5000, "purchase"),
                      at(9000, "session_end")], False, id="leaving-after-buying"),
    ],
)  # fmt: skip
def test_a_cart_of_items_without_prices_is_a_cart(events: list[ClickEvent], fires: bool) -> None:
    signal = detect_cart_abandonment_risk(context(events))

    assert (signal is not None) is fires
    if signal is not None:
        assert signal.evidence == {"cart_value": 0.0, "cart_items": 1.0}
        assert "with 1 item in the cart" in signal.explanation
