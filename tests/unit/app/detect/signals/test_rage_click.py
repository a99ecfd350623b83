"""Rage clicks: PostHog's rule, 3 clicks on one element within 1000 ms and 30 px."""

from __future__ import annotations

import pytest

from app.detect.signals import SignalThresholds
from app.detect.signals.rage_click import KIND, REASON, detect_rage_click
from app.detect.state import StateLimits
from app.ingest.events import ClickEvent
from tests.factories import T0_MS, click, fold

DEFAULT_THRESHOLDS = SignalThresholds()

Click = tuple[int, float | None, float | None]  # (ms after T0, x, y)


def burst(clicks: list[Click], element: str = "#buy") -> list[ClickEvent]:
    return [click(type="click", element=element, ts_ms=T0_MS + dt, x=x, y=y) for dt, x, y in clicks]


def detect_last(
    events: list[ClickEvent], thresholds: SignalThresholds = DEFAULT_THRESHOLDS
) -> float | None:
    """Fold ``events`` in arrival order; the clicks the detector counts for the last one."""
    session = fold(events).session
    assert session is not None
    signal = detect_rage_click(session, events[-1], thresholds)
    return None if signal is None else signal.evidence["clicks"]


@pytest.mark.parametrize(
    ("clicks", "counted"),
    [
        pytest.param([(0, 10, 10), (300, 10, 10), (600, 10, 10)], 3.0, id="three-in-600ms"),
        pytest.param([(0, 10, 10), (500, 10, 10), (1000, 10, 10)], 3.0, id="span-exactly-1000ms"),
        pytest.param([(0, 10, 10), (500, 10, 10), (1001, 10, 10)], None, id="span-1001ms"),
        pytest.param([(0, 10, 10), (10, 10, 10)], None, id="only-two"),
        pytest.param([(0, 10, 10)], None, id="only-one"),
        pytest.param([(0, 0, 0), (1, 0, 0), (2, 5, 5), (3, 5, 5)], 4.0, id="four"),
        pytest.param([(0, 0, 0), (0, 0, 0), (0, 0, 0)], 3.0, id="same-ms"),
        # Distance is measured from the event that completes the burst.
        pytest.param([(0, 0, 0), (100, 0, 0), (200, 30, 0)], 3.0, id="exactly-30px-x"),
        pytest.param([(0, 0, 0), (100, 0, 0), (200, 0, 30)], 3.0, id="exactly-30px-y"),
        pytest.param([(0, 0, 0), (100, 0, 0), (200, 18, 24)], 3.0, id="exactly-30px-diagonal"),
        pytest.param([(0, 0, 0), (100, 0, 0), (200, 30.1, 0)], None, id="30.1px"),
        pytest.param([(0, 0, 0), (100, 0, 0), (200, 18.1, 24)], None, id="just-over-30px-diagonal"),
        pytest.param([(0, 0, 0), (100, 0, 0), (200, -30, 0)], 3.0, id="negative-direction"),
        pytest.param([(0, 200, 200), (100, 0, 0), (200, 0, 0)], None, id="one-far-away"),
        pytest.param([(0, None, None), (100, None, None), (200, None, None)], 3.0, id="no-xy"),
        pytest.param([(0, 0, 0), (100, 500, 500), (200, None, None)], 3.0, id="event-no-xy"),
        pytest.param([(0, None, None), (100, None, None), (200, 500, 0)], 3.0, id="past-no-xy"),
        pytest.param([(0, 10, None), (100, 900, None), (200, 10, 10)], 3.0, id="half-xy"),
    ],
)
def test_burst_rule(clicks: list[Click], counted: float | None) -> None:
    assert detect_last(burst(clicks)) == counted


@pytest.mark.parametrize(
    ("clicks", "counted"),
    [
        # Old clicks outside the window around the new one do not count.
        pytest.param([(0, 1, 1), (2000, 1, 1), (2400, 1, 1)], None, id="first-too-old"),
        pytest.param([(0, 1, 1), (2000, 1, 1), (2400, 1, 1), (2800, 1, 1)], 3.0, id="later"),
        # The densest 1 s run containing the event is what counts.
        pytest.param([(0, 1, 1), (900, 1, 1), (1800, 1, 1), (2700, 1, 1)], None, id="steady-900ms"),
        pytest.param(
            [(0, 1, 1), (100, 1, 1), (200, 1, 1), (300, 1, 1), (1250, 1, 1)],
            None,
            id="event-alone-after-burst",
        ),
    ],
)
def test_only_clicks_in_a_window_around_the_event_count(
    clicks: list[Click], counted: float | None
) -> None:
    assert detect_last(burst(clicks)) == counted


def test_different_elements_do_not_combine() -> None:
    events = [
        *burst([(0, 5, 5)], element="#a"),
        *burst([(100, 5, 5)], element="#b"),
        *burst([(200, 5, 5)], element="#a"),
    ]

    assert detect_last(events) is None


def test_other_elements_in_between_do_not_break_a_burst() -> None:
    events = [
        *burst([(0, 5, 5)], element="#a"),
        *burst([(50, 5, 5), (60, 5, 5), (70, 5, 5)], element="#b"),
        *burst([(100, 5, 5), (200, 5, 5)], element="#a"),
    ]

    assert detect_last(events) == 3.0


@pytest.mark.parametrize(
    "other_type", ["page_view", "scroll", "form_focus", "form_input", "back", "error"]
)
def test_non_click_events_on_the_element_do_not_count(other_type: str) -> None:
    events = [
        click(type="click", element="#buy", ts_ms=T0_MS),
        click(type=other_type, element="#buy", ts_ms=T0_MS + 100),
        click(type="click", element="#buy", ts_ms=T0_MS + 200),
    ]

    assert detect_last(events) is None


@pytest.mark.parametrize(
    "event_type", ["page_view", "scroll", "form_focus", "form_submit", "add_to_cart", "back"]
)
def test_non_click_event_never_fires(event_type: str) -> None:
    events = [
        *burst([(0, 5, 5), (100, 5, 5), (200, 5, 5)]),
        click(type=event_type, element="#buy", ts_ms=T0_MS + 250, x=5, y=5),
    ]

    assert detect_last(events) is None


def test_click_without_element_never_fires() -> None:
    events = [click(type="click", element=None, ts_ms=T0_MS + dt) for dt in (0, 100, 200)]

    assert detect_last(events) is None


@pytest.mark.parametrize(
    "arrival_ms",
    [
        pytest.param([300, 600, 0], id="third-arrives-earliest"),
        pytest.param([600, 300, 0], id="reversed"),
        pytest.param([0, 600, 300], id="third-in-the-middle"),
        pytest.param([600, 0, 300], id="scrambled"),
    ],
)
def test_out_of_order_arrival_still_fires(arrival_ms: list[int]) -> None:
    events = burst([(dt, 7, 7) for dt in arrival_ms])

    assert detect_last(events) == 3.0


def test_late_click_older_than_the_window_does_not_fire() -> None:
    events = burst([(2000, 7, 7), (2300, 7, 7), (0, 7, 7)])

    assert detect_last(events) is None


@pytest.mark.parametrize(
    ("thresholds", "clicks_ms", "counted"),
    [
        (SignalThresholds(rage_click_min_clicks=5), [0, 100, 200, 300], None),
        (SignalThresholds(rage_click_min_clicks=5), [0, 100, 200, 300, 400], 5.0),
        (SignalThresholds(rage_click_min_clicks=2), [0, 100], 2.0),
        (SignalThresholds(rage_click_window_ms=500), [0, 250, 500], 3.0),
        (SignalThresholds(rage_click_window_ms=500), [0, 250, 501], None),
        (SignalThresholds(rage_click_window_ms=3000), [0, 1500, 3000], 3.0),
    ],
)
def test_thresholds_are_respected(
    thresholds: SignalThresholds, clicks_ms: list[int], counted: float | None
) -> None:
    assert detect_last(burst([(dt, 1, 1) for dt in clicks_ms]), thresholds) == counted


@pytest.mark.parametrize(
    ("radius_px", "last_x", "fires"),
    [(100.0, 100.0, True), (100.0, 100.5, False), (5.0, 5.0, True), (5.0, 6.0, False)],
)
def test_radius_threshold_is_respected(radius_px: float, last_x: float, fires: bool) -> None:
    thresholds = SignalThresholds(rage_click_radius_px=radius_px)
    events = burst([(0, 0, 0), (100, 0, 0), (200, last_x, 0)])

    assert (detect_last(events, thresholds) is not None) is fires


@pytest.mark.parametrize(
    ("n_clicks", "score"),
    [(3, 0.7), (4, 0.8), (5, 0.9), (6, 1.0), (9, 1.0)],
)
def test_signal_score_grows_with_extra_clicks(n_clicks: int, score: float) -> None:
    events = burst([(i * 10, 1, 1) for i in range(n_clicks)])
    session = fold(events).session
    assert session is not None

    signal = detect_rage_click(session, events[-1], SignalThresholds())

    assert signal is not None
    assert (signal.reason, signal.kind) == (REASON, KIND) == ("rage_click", "assist")
    assert signal.score == pytest.approx(score)
    assert signal.score <= 1.0
    assert signal.evidence == {"clicks": float(n_clicks), "window_ms": 1000.0}
    assert "#buy" in signal.explanation
    assert f"{n_clicks} times" in signal.explanation


def test_window_bounded_by_recent_events_max() -> None:
    limits = StateLimits(recent_events_max=2)
    events = burst([(0, 1, 1), (100, 1, 1), (200, 1, 1)])
    session = fold(events, limits).session
    assert session is not None

    assert detect_rage_click(session, events[-1], SignalThresholds()) is None
