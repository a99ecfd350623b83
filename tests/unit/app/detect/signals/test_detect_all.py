"""``app.detect.signals``: ``detect_all`` and ``detect_silence`` run the detectors, ``due_ms``
says when a silence rule could next fire, ``PRIORITY`` and ``CATALOGUE`` describe them."""

from __future__ import annotations

from typing import get_args

import pytest

from app.detect.signals import (
    CATALOGUE,
    EVENT_DETECTORS,
    PRIORITY,
    SILENCE_DETECTORS,
    InterventionKind,
    SignalThresholds,
    detect_all,
    detect_silence,
    due_ms,
)
from app.ingest.events import ClickEvent
from tables.customer_state import SessionState
from tests.factories import T0_MS, click, context, fold

RAGE = [click(element="#buy", ts_ms=T0_MS + dt) for dt in (0, 100, 200)]
LOOP = [
    click(type="checkout_step", step=s, ts_ms=T0_MS + 1000 * i)
    for i, s in enumerate(["shipping", "cart", "shipping", "cart"])
]
DECLINED = [click(type="payment_failed", error="declined")]
CALM = [click(type="page_view", page="/"), click(type="product_view", ts_ms=T0_MS + 1)]
REFUSED_FORM = [
    click(type="form_error", field="postcode", page="/shipping", ts_ms=T0_MS + 1000 * i)
    for i in range(3)
]
AT_PAYMENT = [click(type="checkout_step", step="payment", value=40.0, ts_ms=T0_MS)]
CART = [click(type="add_to_cart", product_id="p1", value=25.0, ts_ms=T0_MS)]


DEFAULT_THRESHOLDS = SignalThresholds()


def reasons_for(
    events: list[ClickEvent], thresholds: SignalThresholds = DEFAULT_THRESHOLDS
) -> list[str]:
    return [s.reason for s in detect_all(context(events, thresholds=thresholds))]


@pytest.mark.parametrize(
    ("events", "reasons"),
    [
        pytest.param(CALM, [], id="calm"),
        pytest.param(RAGE, ["rage_click"], id="rage"),
        pytest.param(LOOP, ["step_loop"], id="loop"),
        pytest.param(DECLINED, ["payment_failure"], id="declined"),
        # One event can fire several rules; all are reported, in EVENT_DETECTORS order.
        pytest.param(REFUSED_FORM, ["form_struggle", "error_burst"], id="several"),
    ],
)
def test_detect_all(events: list[ClickEvent], reasons: list[str]) -> None:
    assert reasons_for(events) == reasons


def test_detect_all_passes_the_thresholds_on() -> None:
    assert reasons_for(RAGE, SignalThresholds(rage_click_min_clicks=4)) == []
    assert reasons_for(REFUSED_FORM, SignalThresholds(error_burst_min_errors=4)) == [
        "form_struggle"
    ]


@pytest.mark.parametrize(
    ("events", "silent_ms", "reasons"),
    [
        pytest.param(AT_PAYMENT, 59_999, [], id="stall-not-yet"),
        pytest.param(AT_PAYMENT, 60_000, ["checkout_stall"], id="stall"),
        pytest.param(CART, 599_999, [], id="cart-idle-not-yet"),
        pytest.param(CART, 600_000, ["cart_abandonment_risk"], id="cart-idle"),
        pytest.param(CALM, 8 * 3_600_000, [], id="nothing-to-wait-for"),
        # Both hold when nothing was acted on yet; the policy lets the stall speak.
        pytest.param(AT_PAYMENT, 600_000, ["checkout_stall", "cart_abandonment_risk"], id="both"),
    ],
)
def test_detect_silence(events: list[ClickEvent], silent_ms: int, reasons: list[str]) -> None:
    ctx = context(events, now_ms=events[-1].ts_ms + silent_ms, timer=True)

    assert [s.reason for s in detect_silence(ctx)] == reasons


def test_silence_is_heard_from_timers_not_from_a_late_event() -> None:
    late_event = click(type="page_view", ts_ms=T0_MS + 600_000)
    ctx = context([*AT_PAYMENT, late_event])

    assert [s.reason for s in detect_silence(ctx)] == []


@pytest.mark.parametrize(
    ("events", "due_after_last_ms"),
    [
        pytest.param(CALM, None, id="nothing-to-wait-for"),
        pytest.param(AT_PAYMENT, 60_000, id="stall-first"),
        pytest.param(CART, 600_000, id="cart-idle"),
        pytest.param(
            [*AT_PAYMENT, click(type="purchase", value=40.0, ts_ms=T0_MS + 5000)],
            None,
            id="bought",
        ),
        pytest.param(
            [*CART, click(type="remove_from_cart", product_id="p1", value=25.0, ts_ms=T0_MS + 1)],
            None,
            id="emptied",
        ),
        pytest.param(
            [click(type="checkout_step", step="shipping", value=40.0)], 600_000, id="not-at-payment"
        ),
    ],
)
def test_due_ms(events: list[ClickEvent], due_after_last_ms: int | None) -> None:
    session = fold(events).session
    assert session is not None

    due = due_ms(session, SignalThresholds())

    expected = None if due_after_last_ms is None else session.last_ts_ms + due_after_last_ms
    assert due == expected


@pytest.mark.parametrize(
    ("fired", "due_after_last_ms"),
    [
        ((), 60_000),
        (("checkout_stall",), None),  # the stall spoke for the session: no reminder after it
        (("cart_abandonment_risk",), 60_000),
        (("checkout_stall", "cart_abandonment_risk"), None),
    ],
)
def test_due_ms_skips_what_was_acted_on(
    fired: tuple[str, ...], due_after_last_ms: int | None
) -> None:
    session = SessionState("s", 0, 1000, step="payment", cart_value=30.0, fired_reasons=fired)

    due = due_ms(session, SignalThresholds())

    assert due == (None if due_after_last_ms is None else 1000 + due_after_last_ms)


def test_due_ms_follows_the_thresholds() -> None:
    session = SessionState("s", 0, 1000, step="review", cart_value=30.0)
    thresholds = SignalThresholds(checkout_stall_ms=5_000, cart_idle_ms=2_000)

    assert due_ms(session, thresholds) == 3000


def test_catalogue_lists_every_reason_and_kind_once() -> None:
    assert len(CATALOGUE) == len(set(CATALOGUE))
    assert {reason for _, reason in CATALOGUE} == set(PRIORITY)
    assert {kind for kind, _ in CATALOGUE} == set(get_args(InterventionKind))
    assert set(get_args(InterventionKind)) == {"assist", "offer", "reminder", "reward"}


def test_catalogue_names_every_detector() -> None:
    reasons = {reason for _, reason in CATALOGUE}
    for detector in (*EVENT_DETECTORS, *SILENCE_DETECTORS):
        assert detector.__name__.removeprefix("detect_") in reasons


def test_priority_puts_trouble_paying_first_and_recognition_last() -> None:
    order = sorted(PRIORITY, key=PRIORITY.__getitem__)

    assert order[0] == "payment_failure"
    assert order[-1] == "micro_action"
    assert sorted(PRIORITY.values()) == list(range(len(PRIORITY)))
