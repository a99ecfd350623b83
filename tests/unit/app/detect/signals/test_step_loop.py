"""Step loops: going back and forth between checkout steps."""

from __future__ import annotations

import pytest

from app.detect.signals import Signal, SignalThresholds
from app.detect.signals.step_loop import KIND, REASON, count_step_returns, detect_step_loop
from app.ingest.events import ClickEvent
from tests.factories import T0_MS, click, fold

DEFAULT_THRESHOLDS = SignalThresholds()


@pytest.mark.parametrize(
    ("steps", "returns"),
    [
        ([], 0),
        (["cart"], 0),
        (["cart", "cart"], 0),
        (["cart", "cart", "cart"], 0),
        (["cart", "shipping", "payment", "review"], 0),
        (["cart", "cart", "shipping", "payment"], 0),
        (["cart", "shipping", "cart"], 1),
        (["cart", "shipping", "shipping", "cart"], 1),
        (["shipping", "cart", "shipping", "cart"], 2),
        (["shipping", "cart", "cart", "shipping", "shipping", "cart"], 2),
        (["cart", "shipping", "payment", "cart"], 1),
        (["cart", "shipping", "payment", "shipping", "payment"], 2),
        (["a", "b", "a", "b", "a", "b"], 4),
        (["a", "b", "c", "a", "c", "b"], 3),
    ],
)
def test_count_step_returns(steps: list[str], returns: int) -> None:
    assert count_step_returns(steps) == returns


def test_count_step_returns_does_not_mutate_its_input() -> None:
    steps = ["cart", "shipping", "cart"]

    count_step_returns(steps)

    assert steps == ["cart", "shipping", "cart"]


def steps_in_order(steps: list[str]) -> list[ClickEvent]:
    return [
        click(type="checkout_step", step=step, ts_ms=T0_MS + 1000 * i)
        for i, step in enumerate(steps)
    ]


def detect_each(
    events: list[ClickEvent], thresholds: SignalThresholds = DEFAULT_THRESHOLDS
) -> list[Signal | None]:
    """Fold the events one by one (arrival order) and run the detector after each."""
    results: list[Signal | None] = []
    for i, event in enumerate(events):
        session = fold(events[: i + 1]).session
        assert session is not None
        results.append(detect_step_loop(session, event, thresholds))
    return results


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
            id="fires-at-the-second-return",
        ),
        pytest.param(
            ["cart", "shipping", "payment", "review"], [False] * 4, id="linear-funnel-never"
        ),
        pytest.param(["payment"] * 6, [False] * 6, id="reloads-never"),
        pytest.param(
            ["cart", "cart", "shipping", "shipping", "cart", "cart"],
            [False] * 6,
            id="reloads-around-one-return",
        ),
        pytest.param(
            ["cart", "shipping", "cart", "shipping", "payment"],
            [False, False, False, True, True],
            id="keeps-firing-after",
        ),
    ],
)
def test_when_it_fires(steps: list[str], expected: list[bool]) -> None:
    assert fired(steps_in_order(steps)) == expected


def test_checkout_step_without_step_never_fires() -> None:
    events = [*steps_in_order(["shipping", "cart", "shipping", "cart"])]
    events.append(click(type="checkout_step", step=None, ts_ms=T0_MS + 10_000))

    assert fired(events)[-1] is False


@pytest.mark.parametrize("event_type", ["page_view", "click", "payment_attempt", "back"])
def test_other_event_types_never_fire(event_type: str) -> None:
    events = steps_in_order(["shipping", "cart", "shipping", "cart"])
    events.append(click(type=event_type, step="shipping", ts_ms=T0_MS + 10_000))

    assert fired(events)[-1] is False


def test_steps_on_other_event_types_are_not_part_of_the_path() -> None:
    events = [
        click(type="checkout_step", step="shipping", ts_ms=T0_MS),
        click(type="page_view", step="cart", ts_ms=T0_MS + 1),
        click(type="checkout_step", step="shipping", ts_ms=T0_MS + 2),
        click(type="page_view", step="cart", ts_ms=T0_MS + 3),
        click(type="checkout_step", step="shipping", ts_ms=T0_MS + 4),
    ]

    assert fired(events) == [False] * 5


@pytest.mark.parametrize(
    ("arrival", "fires"),
    [
        # (ms after T0, step) in arrival order; event time says shipping→cart→shipping→cart.
        pytest.param(
            [(0, "shipping"), (1000, "cart"), (3000, "cart"), (2000, "shipping")],
            True,
            id="late-middle-step-completes-the-loop",
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
    ],
)
def test_out_of_order_steps_are_placed_by_event_time(
    arrival: list[tuple[int, str]], fires: bool
) -> None:
    events = [click(type="checkout_step", step=s, ts_ms=T0_MS + dt) for dt, s in arrival]

    assert fired(events)[-1] is fires


@pytest.mark.parametrize(
    ("min_returns", "steps", "fires"),
    [
        (1, ["cart", "shipping", "cart"], True),
        (1, ["cart", "shipping"], False),
        (3, ["shipping", "cart", "shipping", "cart"], False),
        (3, ["shipping", "cart", "shipping", "cart", "shipping"], True),
    ],
)
def test_min_returns_threshold_is_respected(
    min_returns: int, steps: list[str], fires: bool
) -> None:
    thresholds = SignalThresholds(step_loop_min_returns=min_returns)

    assert fired(steps_in_order(steps), thresholds)[-1] is fires


@pytest.mark.parametrize(
    ("steps", "score"),
    [
        (["shipping", "cart", "shipping", "cart"], 0.7),
        (["shipping", "cart", "shipping", "cart", "shipping"], 0.8),
        (["a", "b"] * 6, 1.0),
    ],
)
def test_signal(steps: list[str], score: float) -> None:
    signal = detect_each(steps_in_order(steps))[-1]

    assert signal is not None
    assert (signal.reason, signal.kind) == (REASON, KIND) == ("step_loop", "assist")
    assert signal.score == pytest.approx(score)
    assert signal.score <= 1.0
    assert signal.evidence == {
        "returns": float(count_step_returns(steps)),
        "steps": float(len(steps)),
    }
    assert f"now at {steps[-1]}" in signal.explanation
