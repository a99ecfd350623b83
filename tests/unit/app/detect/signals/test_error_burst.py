"""Error bursts: three errors (page or form) within 30 s, the event among them."""

from __future__ import annotations

import pytest

from app.detect.signals import Signal, SignalThresholds
from app.detect.signals.error_burst import KIND, REASON, detect_error_burst
from app.ingest.events import ClickEvent
from tests.factories import T0_MS, click, context

DEFAULT_THRESHOLDS = SignalThresholds()
WINDOW = DEFAULT_THRESHOLDS.error_burst_window_ms


def error(ms: int, type: str = "error", message: str | None = "HTTP 503") -> ClickEvent:
    return click(type=type, error=message, ts_ms=T0_MS + ms)


def detect(
    events: list[ClickEvent], thresholds: SignalThresholds = DEFAULT_THRESHOLDS
) -> Signal | None:
    return detect_error_burst(context(events, thresholds=thresholds))


@pytest.mark.parametrize(
    ("events", "fires"),
    [
        pytest.param([error(0), error(1000)], False, id="two"),
        pytest.param([error(0), error(1000), error(2000)], True, id="three"),
        pytest.param([error(0), error(15_000), error(WINDOW)], True, id="span-exactly-30s"),
        pytest.param([error(0), error(15_000), error(WINDOW + 1)], False, id="span-30.001s"),
        pytest.param([error(0, "form_error"), error(1, "form_error"), error(2)], True,
                     id="form-errors-count"),
        # The burst must include the event looked at.
        pytest.param([error(0), error(1), error(2), error(100_000)], False, id="after-a-burst"),
        pytest.param([error(0), error(1), error(2), click(ts_ms=T0_MS + 3)], False,
                     id="a-click-after-a-burst"),
        pytest.param([error(0), error(60_000), error(80_000), error(90_000)], True,
                     id="the-latest-three"),
    ],
)  # fmt: skip
def test_when_it_fires(events: list[ClickEvent], fires: bool) -> None:
    assert (detect(events) is not None) is fires


def test_a_timer_never_fires() -> None:
    events = [error(0), error(1), error(2)]

    assert detect_error_burst(context(events, now_ms=T0_MS + 5000, timer=True)) is None


def test_a_resent_error_counts_once() -> None:
    first = error(0)

    assert detect([first, first, first]) is None


@pytest.mark.parametrize(
    "arrival_ms",
    [
        pytest.param([2000, 4000, 0], id="first-arrives-last"),
        pytest.param([4000, 2000, 0], id="reversed"),
    ],
)
def test_a_late_error_is_placed_where_its_time_puts_it(arrival_ms: list[int]) -> None:
    assert detect([error(ms) for ms in arrival_ms]) is not None


def test_a_late_error_outside_the_window_does_not_complete_a_burst() -> None:
    # The late one is within the lateness but 30.5 s before the last.
    assert detect([error(26_000), error(30_500), error(0)]) is None


@pytest.mark.parametrize(
    ("thresholds", "events", "fires"),
    [
        (SignalThresholds(error_burst_min_errors=4), [error(0), error(1), error(2)], False),
        (SignalThresholds(error_burst_min_errors=2), [error(0), error(1)], True),
        (SignalThresholds(error_burst_window_ms=10_000), [error(0), error(5), error(10_000)],
         True),
        (SignalThresholds(error_burst_window_ms=10_000), [error(0), error(5), error(10_001)],
         False),
    ],
)  # fmt: skip
def test_thresholds_are_respected(
    thresholds: SignalThresholds, events: list[ClickEvent], fires: bool
) -> None:
    assert (detect(events, thresholds) is not None) is fires


@pytest.mark.parametrize(
    ("n_errors", "message", "score", "detail"),
    [(3, "HTTP 503", 0.6, " (HTTP 503)"), (5, None, 0.8, ""), (7, "x", 1.0, " (x)")],
)
def test_signal(n_errors: int, message: str | None, score: float, detail: str) -> None:
    signal = detect([error(1000 * i, message=message) for i in range(n_errors)])

    assert signal is not None
    assert (signal.reason, signal.kind) == (REASON, KIND) == ("error_burst", "assist")
    assert signal.score == pytest.approx(score)
    assert signal.evidence == {"errors": float(n_errors), "window_ms": 30_000.0}
    assert signal.explanation == (
        f"The page showed the customer {n_errors} errors within 30 s{detail}; something is "
        "broken for them."
    )
