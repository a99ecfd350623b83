"""Rage clicks: PostHog's rule, 3 clicks on one element within 1000 ms and 30 px, the chain
broken by any other event between them (Datadog's cancellation)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from app.detect.pipeline import Rules
from app.detect.signals import DetectionContext, SignalThresholds
from app.detect.signals.rage_click import KIND, REASON, _densest_with, detect_rage_click
from app.detect.state import StateLimits
from app.ingest.events import ClickEvent
from tests.factories import T0_MS, click, context, fold

DEFAULT_THRESHOLDS = SignalThresholds()

Click = tuple[int, float | None, float | None]  # (ms after T0, x, y)


def burst(clicks: list[Click], element: str = "#buy", **fields: Any) -> list[ClickEvent]:
    return [click(element=element, ts_ms=T0_MS + dt, x=x, y=y, **fields) for dt, x, y in clicks]


def counted(
    events: list[ClickEvent], thresholds: SignalThresholds = DEFAULT_THRESHOLDS
) -> float | None:
    """Fold ``events`` in arrival order; the clicks the detector counts for the last one."""
    signal = detect_rage_click(context(events, thresholds=thresholds))
    return None if signal is None else signal.evidence["clicks"]


@pytest.mark.parametrize(
    ("clicks", "expected"),
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
        # Without coordinates on both sides the element match alone decides.
        pytest.param([(0, None, None), (100, None, None), (200, None, None)], 3.0, id="no-xy"),
        pytest.param([(0, 0, 0), (100, 500, 500), (200, None, None)], 3.0, id="event-no-xy"),
        pytest.param([(0, None, None), (100, None, None), (200, 500, 0)], 3.0, id="past-no-xy"),
        pytest.param([(0, 10, None), (100, 900, None), (200, 10, 10)], 3.0, id="half-xy"),
    ],
)
def test_burst_rule(clicks: list[Click], expected: float | None) -> None:
    assert counted(burst(clicks)) == expected


@pytest.mark.parametrize(
    ("clicks", "expected"),
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
    clicks: list[Click], expected: float | None
) -> None:
    assert counted(burst(clicks)) == expected


def test_a_far_click_on_the_element_breaks_the_chain() -> None:
    # PostHog compares each click with the one before: a click 200 px away starts again.
    events = burst([(0, 0, 0), (100, 200, 200), (200, 0, 0), (300, 0, 0)])

    assert counted(events) is None


@pytest.mark.parametrize(
    "between",
    [
        pytest.param({"type": "click", "element": "#other"}, id="click-elsewhere"),
        pytest.param({"type": "page_view", "page": "/next"}, id="page_view"),
        pytest.param({"type": "scroll", "scroll_pct": 40.0}, id="scroll"),
        pytest.param({"type": "form_focus", "field": "email"}, id="form_focus"),
        pytest.param({"type": "back"}, id="back"),
        pytest.param({"type": "error", "error": "HTTP 500"}, id="error"),
        pytest.param({"type": "add_to_cart", "element": "#buy", "value": 5.0}, id="add_to_cart"),
        pytest.param(
            {"type": "click", "element": "#buy", "props": {"selection": True}}, id="selection"
        ),
    ],
)
def test_any_other_event_between_the_clicks_breaks_the_chain(between: dict[str, Any]) -> None:
    events = [
        *burst([(0, 5, 5), (100, 5, 5)]),
        click(ts_ms=T0_MS + 150, **between),
        *burst([(200, 5, 5)]),
    ]

    assert counted(events) is None
    # The chain starts again after it: three more clicks make a burst.
    assert counted([*events, *burst([(300, 5, 5), (400, 5, 5)])]) == 3.0


@pytest.mark.parametrize(
    "props",
    [
        pytest.param({"selection": True}, id="text-selection"),
        pytest.param({"repeat_click": True}, id="repeat-click-expected"),
        pytest.param({"tag": "input"}, id="form-control"),
        pytest.param({"contenteditable": True}, id="contenteditable"),
    ],
)
def test_clicks_that_are_not_frustration_never_count(props: dict[str, Any]) -> None:
    assert counted(burst([(0, 5, 5), (100, 5, 5), (200, 5, 5)], props=props)) is None


@pytest.mark.parametrize("element", ["#qty-plus", ".carousel-next", "a.pagination-next"])
def test_elements_clicked_repeatedly_by_design_never_count(element: str) -> None:
    assert counted(burst([(0, 5, 5), (100, 5, 5), (200, 5, 5)], element=element)) is None


@pytest.mark.parametrize(
    "event_type", ["page_view", "scroll", "form_focus", "form_submit", "add_to_cart", "back"]
)
def test_a_non_click_event_never_fires(event_type: str) -> None:
    events = [
        *burst([(0, 5, 5), (100, 5, 5), (200, 5, 5)]),
        click(type=event_type, element="#buy", ts_ms=T0_MS + 250, x=5, y=5),
    ]

    assert counted(events) is None


def test_a_click_without_element_never_fires() -> None:
    assert counted(burst([(0, 1, 1), (100, 1, 1), (200, 1, 1)], element=None)) is None  # type: ignore[arg-type]


def test_a_timer_never_fires() -> None:
    events = burst([(0, 5, 5), (100, 5, 5), (200, 5, 5)])

    assert detect_rage_click(context(events, now_ms=T0_MS + 5000, timer=True)) is None


def test_a_repeated_event_id_counts_once() -> None:
    first, second = burst([(0, 5, 5), (100, 5, 5)])
    resent = [first, second, second, second]  # the sender retried

    assert counted(resent) is None
    assert counted([*resent, *burst([(200, 5, 5)])]) == 3.0


@pytest.mark.parametrize(
    "arrival_ms",
    [
        pytest.param([300, 600, 0], id="third-arrives-earliest"),
        pytest.param([600, 300, 0], id="reversed"),
        pytest.param([0, 600, 300], id="third-in-the-middle"),
        pytest.param([600, 0, 300], id="scrambled"),
    ],
)
def test_out_of_order_arrival_is_placed_by_event_time(arrival_ms: list[int]) -> None:
    assert counted(burst([(dt, 7, 7) for dt in arrival_ms])) == 3.0


def test_a_late_event_between_the_clicks_breaks_the_chain_where_its_time_puts_it() -> None:
    events = [*burst([(0, 5, 5), (200, 5, 5), (400, 5, 5)])]
    late_page_view = click(type="page_view", page="/next", ts_ms=T0_MS + 300)

    assert counted(events) == 3.0
    # The page view arrives last but happened between the second and third click.
    assert counted([*events[:2], late_page_view, events[2]]) is None


def test_a_late_click_older_than_the_window_does_not_fire() -> None:
    assert counted(burst([(2000, 7, 7), (2300, 7, 7), (0, 7, 7)])) is None


@pytest.mark.parametrize(
    ("thresholds", "clicks_ms", "expected"),
    [
        (SignalThresholds(rage_click_min_clicks=5), [0, 100, 200, 300], None),
        (SignalThresholds(rage_click_min_clicks=5), [0, 100, 200, 300, 400], 5.0),
        (SignalThresholds(rage_click_min_clicks=2), [0, 100], 2.0),
        (SignalThresholds(rage_click_min_clicks=2), [0], None),
        (SignalThresholds(rage_click_window_ms=500), [0, 250, 500], 3.0),
        (SignalThresholds(rage_click_window_ms=500), [0, 250, 501], None),
        (SignalThresholds(rage_click_window_ms=3000), [0, 1500, 3000], 3.0),
    ],
)
def test_thresholds_are_respected(
    thresholds: SignalThresholds, clicks_ms: list[int], expected: float | None
) -> None:
    assert counted(burst([(dt, 1, 1) for dt in clicks_ms]), thresholds) == expected


@pytest.mark.parametrize(
    ("radius_px", "last_x", "fires"),
    [(100.0, 100.0, True), (100.0, 100.5, False), (5.0, 5.0, True), (5.0, 6.0, False)],
)
def test_radius_threshold_is_respected(radius_px: float, last_x: float, fires: bool) -> None:
    thresholds = SignalThresholds(rage_click_radius_px=radius_px)
    events = burst([(0, 0, 0), (100, 0, 0), (200, last_x, 0)])

    assert (counted(events, thresholds) is not None) is fires


@pytest.mark.parametrize(
    ("n_clicks", "score"),
    [(3, 0.7), (4, 0.8), (5, 0.9), (6, 1.0), (9, 1.0)],
)
def test_signal(n_clicks: int, score: float) -> None:
    signal = detect_rage_click(context(burst([(i * 10, 1, 1) for i in range(n_clicks)])))

    assert signal is not None
    assert (signal.reason, signal.kind) == (REASON, KIND) == ("rage_click", "assist")
    assert signal.score == pytest.approx(score)
    assert signal.evidence == {"clicks": float(n_clicks), "window_ms": 1000.0}
    assert signal.subject == "#buy"
    assert signal.explanation == (
        f"The customer clicked #buy {n_clicks} times within 1 s, which usually means it is "
        "not responding as expected."
    )


def test_the_window_is_bounded_by_the_recent_events_kept() -> None:
    events = burst([(0, 1, 1), (100, 1, 1), (200, 1, 1)])
    state = fold(events, Rules(limits=StateLimits(recent_events_max=2)))
    assert state.session is not None
    ctx = DetectionContext(state, state.session, events[-1], events[-1].ts_ms, DEFAULT_THRESHOLDS)

    assert detect_rage_click(ctx) is None


def _best_by_prefixes(ctx: DetectionContext) -> int:
    """The densest burst, measured after every click of every run (the rule as first
    written): what ``detect_rage_click`` measures once per whole run must equal it."""
    event, t = ctx.event, ctx.thresholds
    assert event is not None
    best, run = 0, []
    for past in ctx.session.recent:
        if past.type == "click" and past.element == event.element and not past.flags:
            run.append(past.ts_ms)
            window = [ts for ts in run if abs(ts - event.ts_ms) <= t.rage_click_window_ms]
            best = max(best, _densest_with(window, event.ts_ms, t.rage_click_window_ms))
        else:
            run = []
    return best


@pytest.mark.parametrize("seed", range(30))
def test_each_run_measured_whole_finds_the_densest_burst(seed: int) -> None:
    rng = random.Random(seed)
    ts_ms, events = T0_MS, []
    for _ in range(rng.randint(1, 30)):
        ts_ms += rng.choice((0, 100, 250, 400, 800, 1500))
        if rng.random() < 0.8:
            events.append(click(element=rng.choice(("#buy", "#buy", ".img")), ts_ms=ts_ms))
        else:
            events.append(click(type="scroll", ts_ms=ts_ms))
    events.append(click(element="#buy", ts_ms=ts_ms + rng.choice((0, 200))))
    ctx = context(events)
    best = _best_by_prefixes(ctx)

    signal = detect_rage_click(ctx)

    fired = signal.evidence["clicks"] if signal is not None else None
    assert fired == (float(best) if best >= ctx.thresholds.rage_click_min_clicks else None)
