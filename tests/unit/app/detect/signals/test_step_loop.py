"""Step loops: two regressions to an earlier checkout step since the last cart change."""

from __future__ import annotations

import pytest

from app.detect.signals import Signal, SignalThresholds
from app.detect.signals.step_loop import (
    KIND,
    REASON,
    count_loop_regressions,
    detect_step_loop,
    step_rank,
    step_ranks,
)
from app.ingest.events import ClickEvent
from tests.factories import T0_MS, click, context

DEFAULT_THRESHOLDS = SignalThresholds()


@pytest.mark.parametrize(
    ("steps", "ranks"),
    [
        ([], {}),
        (
            ["cart", "shipping", "payment", "review"],
            {"cart": 0, "shipping": 2, "payment": 3, "review": 4},
        ),
        (["payment", "cart"], {"payment": 3, "cart": 0}),
        # Synonyms share a place.
        (
            ["basket", "delivery", "billing", "confirm"],
            {"basket": 0, "delivery": 2, "billing": 3, "confirm": 4},
        ),
        # Numbered steps (no known word): by their numbers, when each has its own.
        (["step-2", "step-1", "step-2"], {"step-2": 2, "step-1": 1}),
        (["3", "1", "2"], {"3": 3, "1": 1, "2": 2}),
        (["Checkout Step 10", "Checkout Step 9"], {"Checkout Step 10": 10, "Checkout Step 9": 9}),
        # One unknown name: every step is ranked by the order the session first reached it.
        (["cart", "gift-wrap", "shipping"], {"cart": 0, "gift-wrap": 1, "shipping": 2}),
        (["payment", "gift-wrap", "cart"], {"payment": 0, "gift-wrap": 1, "cart": 2}),
        (["cart", "2", "1"], {"cart": 0, "2": 1, "1": 2}),  # a name and numbers
        (["step-1b", "step-1a"], {"step-1b": 0, "step-1a": 1}),  # one number twice
        # Names with a known word in them, in any case, rank as it does.
        (
            ["View Cart", "add_shipping_info", "Billing address", "PaymentDetails"],
            {"View Cart": 0, "add_shipping_info": 2, "Billing address": 3, "PaymentDetails": 3},
        ),
    ],
)
def test_step_ranks(steps: list[str], ranks: dict[str, int]) -> None:
    assert step_ranks(steps) == ranks


@pytest.mark.parametrize(
    ("step", "rank"),
    [
        ("cart", 0), ("Basket", 0), ("sign-in", 1), ("Contact information", 1),
        ("delivery", 2), ("shipping_details", 2), ("add_payment_info", 3), ("PAY", 3),
        ("billing", 3), ("review", 4), ("Confirmation", 4), ("Place order", 4),
        ("step-2", None), ("begin_checkout", None), ("", None),
    ],
)  # fmt: skip
def test_step_rank_reads_the_words_of_a_name(step: str, rank: int | None) -> None:
    assert step_rank(step) == rank
    assert step_rank(step) == rank  # the second time from the names seen


def path(*names: str) -> tuple[tuple[int, str], ...]:
    """Step moves one second apart (as the state keeps them: refreshes already merged)."""
    return tuple((1000 * i, name) for i, name in enumerate(names))


@pytest.mark.parametrize(
    ("steps", "cart_changes", "regressions"),
    [
        pytest.param(path(), (), 0, id="empty"),
        pytest.param(path("cart"), (), 0, id="one-step"),
        pytest.param(path("cart", "shipping", "payment", "review"), (), 0, id="linear"),
        pytest.param(path("cart", "shipping", "cart"), (), 1, id="one-back"),
        pytest.param(path("shipping", "cart", "shipping", "cart"), (), 2, id="two-back"),
        pytest.param(path("cart", "shipping", "payment", "cart"), (), 1, id="two-steps-back-once"),
        pytest.param(
            path("cart", "shipping", "payment", "shipping", "payment", "shipping"),
            (),
            2,
            id="payment-shipping-twice",
        ),
        # Unknown names: ranked by first-seen order.
        pytest.param(path("a", "b", "a", "b", "a"), (), 2, id="unknown-names"),
        # Numbered steps by their numbers: step 2 skipped, then fallen back to twice (in
        # first-seen order 3 → 2 read as a step forward: one regression).
        pytest.param(path("1", "3", "2", "3", "2"), (), 2, id="numbered-skip-then-back"),
        pytest.param(
            path("cart", "gift", "shipping", "gift", "shipping", "gift"),
            (),
            2,
            id="one-unknown-name",
        ),
        # A cart change starts the count again; moves strictly after it count.
        pytest.param(
            path("cart", "shipping", "cart", "shipping", "cart"), (2500,), 1, id="change-between"
        ),
        pytest.param(
            path("cart", "shipping", "cart", "shipping", "cart"), (2000,), 1, id="change-at-a-step"
        ),
        pytest.param(
            path("cart", "shipping", "cart", "shipping", "cart"),
            (1999,),
            2,
            id="change-just-before-a-step",
        ),
        pytest.param(
            path("cart", "shipping", "cart", "shipping", "cart"),
            (1000, 5000),
            0,
            id="change-after-the-last-step",
        ),
        pytest.param(
            path("cart", "shipping", "cart", "shipping", "cart"),
            (-1,),
            2,
            id="change-before-the-checkout",
        ),
    ],
)
def test_count_loop_regressions(
    steps: tuple[tuple[int, str], ...], cart_changes: tuple[int, ...], regressions: int
) -> None:
    assert count_loop_regressions(steps, cart_changes) == regressions


def steps_in_order(names: list[str], gap_ms: int = 1000) -> list[ClickEvent]:
    return [
        click(type="checkout_step", step=name, ts_ms=T0_MS + gap_ms * i)
        for i, name in enumerate(names)
    ]


def detect_each(
    events: list[ClickEvent], thresholds: SignalThresholds = DEFAULT_THRESHOLDS
) -> list[Signal | None]:
    """Fold the events one by one (arrival order) and run the detector after each."""
    return [
        detect_step_loop(context(events[: i + 1], thresholds=thresholds))
        for i in range(len(events))
    ]


def fired(
    events: list[ClickEvent], thresholds: SignalThresholds = DEFAULT_THRESHOLDS
) -> list[bool]:
    return [s is not None for s in detect_each(events, thresholds)]


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        pytest.param(
            ["shipping", "cart", "shipping", "cart"],
            [False, False, False, True],
            id="fires-at-the-second-regression",
        ),
        pytest.param(
            ["cart", "shipping", "cart"], [False, False, False], id="one-regression-is-a-fix"
        ),
        pytest.param(
            ["cart", "shipping", "payment", "review"], [False] * 4, id="linear-funnel-never"
        ),
        # A step sent again right after itself is a refresh, not a move.
        pytest.param(["payment"] * 6, [False] * 6, id="refreshes-never"),
        pytest.param(
            ["cart", "cart", "shipping", "shipping", "cart", "cart", "shipping", "shipping"],
            [False] * 8,
            id="refreshes-around-one-regression",
        ),
        pytest.param(
            ["cart", "shipping", "cart", "shipping", "cart", "shipping", "payment"],
            [False, False, False, False, True, True, True],
            id="keeps-firing-after",
        ),
    ],
)
def test_when_it_fires(steps: list[str], expected: list[bool]) -> None:
    assert fired(steps_in_order(steps)) == expected


def test_a_cart_change_starts_the_count_again() -> None:
    loop = steps_in_order(["shipping", "cart", "shipping"])
    edit = click(type="add_to_cart", product_id="p2", value=10.0, ts_ms=T0_MS + 2500)
    again = click(type="checkout_step", step="cart", ts_ms=T0_MS + 3000)
    more = click(type="checkout_step", step="shipping", ts_ms=T0_MS + 4000)
    back = click(type="checkout_step", step="cart", ts_ms=T0_MS + 5000)

    assert fired([*loop, again]) == [False, False, False, True]
    # After the edit the count starts again: the move back to the cart is the first.
    assert fired([*loop, edit, again, more, back]) == [False] * 6 + [True]


def test_a_checkout_step_without_a_step_never_fires() -> None:
    events = steps_in_order(["shipping", "cart", "shipping", "cart"])
    events.append(click(type="checkout_step", step=None, ts_ms=T0_MS + 10_000))

    assert fired(events)[-1] is False


@pytest.mark.parametrize("event_type", ["page_view", "click", "payment_attempt", "back"])
def test_other_event_types_never_fire(event_type: str) -> None:
    events = steps_in_order(["shipping", "cart", "shipping", "cart"])
    events.append(click(type=event_type, step="shipping", ts_ms=T0_MS + 10_000))

    assert fired(events)[-1] is False


def test_steps_on_other_event_types_are_not_moves() -> None:
    events = [
        click(type="checkout_step", step="shipping", ts_ms=T0_MS),
        click(type="page_view", step="cart", ts_ms=T0_MS + 1),
        click(type="checkout_step", step="shipping", ts_ms=T0_MS + 2),
        click(type="page_view", step="cart", ts_ms=T0_MS + 3),
        click(type="checkout_step", step="shipping", ts_ms=T0_MS + 4),
    ]

    assert fired(events) == [False] * 5


def test_a_timer_never_fires() -> None:
    events = steps_in_order(["shipping", "cart", "shipping", "cart"])

    assert detect_step_loop(context(events, now_ms=T0_MS + 60_000, timer=True)) is None


def test_a_resent_step_event_is_neither_a_move_nor_a_refresh() -> None:
    events = steps_in_order(["shipping", "cart", "shipping"])

    assert fired([*events, events[1], events[1]]) == [False] * 5


@pytest.mark.parametrize(
    ("arrival", "fires"),
    [
        # (ms after T0, step) in arrival order; event time says shipping→cart→shipping→cart.
        pytest.param(
            [(0, "shipping"), (1000, "cart"), (3000, "cart"), (2000, "shipping")],
            True,
            id="late-middle-step-completes-the-loop",
        ),
        pytest.param(
            [(0, "shipping"), (1000, "cart"), (3000, "payment"), (2000, "shipping")],
            False,
            id="late-middle-step-of-a-funnel",
        ),
        pytest.param(
            [(0, "shipping"), (2000, "shipping"), (1000, "cart"), (3000, "cart")],
            True,
            id="late-regression-between-two-steps",
        ),
        # Arrival order looks like a loop, but event time is a linear funnel.
        pytest.param(
            [(0, "cart"), (2000, "payment"), (1000, "shipping"), (3000, "review")],
            False,
            id="late-step-fits-a-linear-funnel",
        ),
        pytest.param(
            [(3000, "review"), (2000, "payment"), (1000, "shipping"), (0, "cart")],
            False,
            id="reversed-arrival-of-a-linear-funnel",
        ),
        # In event time this is shipping→cart→(refresh)→shipping→cart: a loop, in any arrival order.
        pytest.param(
            [(0, "shipping"), (1000, "cart"), (2500, "cart"), (2000, "shipping"), (1500, "cart")],
            True,
            id="late-refresh",
        ),
    ],
)
def test_out_of_order_steps_are_placed_by_event_time(
    arrival: list[tuple[int, str]], fires: bool
) -> None:
    events = [click(type="checkout_step", step=s, ts_ms=T0_MS + dt) for dt, s in arrival]

    assert fired(events)[-1] is fires


def test_a_late_cart_change_is_placed_by_event_time() -> None:
    events = steps_in_order(["shipping", "cart", "shipping", "cart"])
    # The cart edit happened at 1.5 s (between the first regression and the second).
    late_edit = click(type="remove_from_cart", product_id="p1", value=10.0, ts_ms=T0_MS + 1500)
    last = click(type="checkout_step", step="shipping", ts_ms=T0_MS + 4000)

    assert fired([*events[:3], late_edit, events[3], last])[-2:] == [False, False]


@pytest.mark.parametrize(
    ("min_regressions", "steps", "fires"),
    [
        (1, ["cart", "shipping", "cart"], True),
        (1, ["cart", "shipping"], False),
        (3, ["shipping", "cart", "shipping", "cart"], False),
        (3, ["shipping", "cart", "shipping", "cart", "shipping", "cart"], True),
    ],
)
def test_min_regressions_threshold_is_respected(
    min_regressions: int, steps: list[str], fires: bool
) -> None:
    thresholds = SignalThresholds(step_loop_min_regressions=min_regressions)

    assert fired(steps_in_order(steps), thresholds)[-1] is fires


@pytest.mark.parametrize(
    ("steps", "regressions", "score"),
    [
        (["shipping", "cart", "shipping", "cart"], 2, 0.7),
        (["shipping", "cart", "shipping", "cart", "shipping", "cart"], 3, 0.8),
        (["a", "b"] * 6, 5, 1.0),
    ],
)
def test_signal(steps: list[str], regressions: int, score: float) -> None:
    signal = detect_each(steps_in_order(steps))[-1]

    assert signal is not None
    assert (signal.reason, signal.kind) == (REASON, KIND) == ("step_loop", "assist")
    assert signal.score == pytest.approx(score)
    assert signal.evidence == {"regressions": float(regressions), "steps": float(len(steps))}
    assert signal.explanation == (
        f"The customer went back to an earlier checkout step {regressions} times without "
        f"changing the cart (now at {steps[-1]}); something in the checkout may be unclear."
    )
