"""Payment failures: a declined payment at once, or the n-th failed attempt."""

from __future__ import annotations

import pytest

from app.detect.signals import Signal, SignalThresholds
from app.detect.signals.payment_failure import KIND, REASON, detect_payment_failure
from tests.factories import T0_MS, click, context

DEFAULT_THRESHOLDS = SignalThresholds()

Step = tuple[str, str | None]  # (event type, error)


def detect_after(
    steps: list[Step], thresholds: SignalThresholds = DEFAULT_THRESHOLDS
) -> list[Signal | None]:
    """Fold the events one by one and run the detector after each."""
    events = [click(type=t, error=err, ts_ms=T0_MS + i) for i, (t, err) in enumerate(steps)]
    results: list[Signal | None] = []
    for i in range(len(events)):
        results.append(detect_payment_failure(context(events[: i + 1], thresholds=thresholds)))
    return results


def fired(steps: list[Step], thresholds: SignalThresholds = DEFAULT_THRESHOLDS) -> list[bool]:
    return [s is not None for s in detect_after(steps, thresholds)]


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        pytest.param([("payment_failed", None)], [True], id="failed-fires-at-once"),
        pytest.param([("payment_failed", "card_declined")], [True], id="failed-with-error"),
        pytest.param([("payment_attempt", None)], [False], id="attempt-ok"),
        pytest.param(
            [("payment_attempt", None), ("payment_attempt", None), ("payment_attempt", None)],
            [False, False, False],
            id="attempts-without-error-never",
        ),
        pytest.param(
            [("payment_attempt", "declined"), ("payment_attempt", "declined")],
            [False, True],
            id="second-failed-attempt-fires",
        ),
        pytest.param(
            [("payment_attempt", "x"), ("payment_attempt", None), ("payment_attempt", "y")],
            [False, False, True],
            id="ok-attempt-in-between-not-counted",
        ),
        pytest.param(
            [("payment_attempt", "x"), ("payment_attempt", "y"), ("payment_attempt", "z")],
            [False, True, True],
            id="keeps-firing-after-threshold",
        ),
        pytest.param(
            [("payment_failed", None), ("payment_attempt", "x")],
            [True, True],
            id="failed-event-counts-towards-attempts",
        ),
        pytest.param(
            [("error", "boom"), ("form_error", "cvv"), ("click", "x"), ("purchase", None)],
            [False, False, False, False],
            id="other-types-never",
        ),
    ],
)
def test_when_it_fires(steps: list[Step], expected: list[bool]) -> None:
    assert fired(steps) == expected


@pytest.mark.parametrize(
    ("attempts_needed", "n_failed_attempts", "expected"),
    [
        (1, 1, [True]),
        (2, 2, [False, True]),
        (3, 2, [False, False]),
        (3, 3, [False, False, True]),
        (5, 5, [False, False, False, False, True]),
    ],
)
def test_attempts_threshold_is_respected(
    attempts_needed: int, n_failed_attempts: int, expected: list[bool]
) -> None:
    thresholds = SignalThresholds(payment_failed_attempts=attempts_needed)

    assert fired([("payment_attempt", "declined")] * n_failed_attempts, thresholds) == expected


@pytest.mark.parametrize("attempts_needed", [1, 2, 10])
def test_payment_failed_ignores_the_attempts_threshold(attempts_needed: int) -> None:
    thresholds = SignalThresholds(payment_failed_attempts=attempts_needed)

    assert fired([("payment_failed", None)], thresholds) == [True]


@pytest.mark.parametrize(
    ("steps", "score"),
    [
        ([("payment_failed", None)], 0.9),
        ([("payment_attempt", "x")] * 2, 0.8),
        ([("payment_attempt", "x")] * 3, 0.85),
        ([("payment_attempt", "x")] * 6, 1.0),
        ([("payment_attempt", "x")] * 12, 1.0),
    ],
)
def test_score(steps: list[Step], score: float) -> None:
    signal = detect_after(steps)[-1]

    assert signal is not None
    assert signal.score == pytest.approx(score)
    assert 0.0 <= signal.score <= 1.0


def test_signal_fields() -> None:
    events = [
        click(type="add_to_cart", value=59.9, ts_ms=T0_MS),
        click(type="payment_failed", error="card_declined", ts_ms=T0_MS + 1),
    ]

    signal = detect_payment_failure(context(events))

    assert signal is not None
    assert (signal.reason, signal.kind) == (REASON, KIND) == ("payment_failure", "assist")
    assert signal.evidence == {"failed_attempts": 1.0, "cart_value": 59.9}
    assert signal.explanation == (
        "The customer's payment failed (card_declined) after 1 attempt; they may need another "
        "way to pay."
    )


@pytest.mark.parametrize(
    ("steps", "phrase"),
    [
        ([("payment_failed", None)], "payment failed after 1 attempt;"),
        ([("payment_attempt", "e1"), ("payment_attempt", "e2")], "failed (e2) after 2 attempts;"),
    ],
)
def test_explanation(steps: list[Step], phrase: str) -> None:
    signal = detect_after(steps)[-1]

    assert signal is not None
    assert phrase in signal.explanation


def test_a_timer_never_fires() -> None:
    events = [click(type="payment_failed", error="declined")]

    assert detect_payment_failure(context(events, now_ms=T0_MS + 60_000, timer=True)) is None


def test_a_resent_failed_attempt_counts_once() -> None:
    attempt = click(type="payment_attempt", error="declined", ts_ms=T0_MS)

    assert detect_payment_failure(context([attempt, attempt, attempt])) is None


def test_a_late_failed_attempt_counts() -> None:
    # The first attempt's event arrives after the second (within the allowed lateness).
    second = click(type="payment_attempt", error="declined", ts_ms=T0_MS + 3000)
    first = click(type="payment_attempt", error="declined", ts_ms=T0_MS)

    signal = detect_payment_failure(context([second, first]))

    assert signal is not None
    assert signal.evidence["failed_attempts"] == 2.0
