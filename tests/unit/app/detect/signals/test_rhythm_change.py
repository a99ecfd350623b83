"""Rhythm change: a returning customer whose visits come later and end sooner than their habit."""

from __future__ import annotations

import pytest

from app.detect.pipeline import Rules, process_event
from app.detect.signals import Signal, SignalThresholds
from app.detect.signals.rhythm_change import KIND, REASON, detect_rhythm_change
from app.ingest.events import ClickEvent
from tables.customer_state import CustomerProfile, CustomerState
from tests.factories import T0_MS, click, context

DAY_MS = 86_400_000
# The weight app.detect.state gives the newest visit in the means.
ALPHA = 0.3


def profile(
    visits: int = 4,
    gap_mean_days: float = 1.0,
    usual_events: float = 30.0,
    last_events: int = 8,
    pace_ratio: float = 0.0,
) -> CustomerProfile:
    """A profile whose visit-size mean folded ``last_events`` into ``usual_events``."""
    return CustomerProfile(
        0, 0, visits=visits, gap_mean_ms=gap_mean_days * DAY_MS,
        visit_events_mean=ALPHA * last_events + (1 - ALPHA) * usual_events,
        last_visit_events=last_events, pace_mean_ms=20_000.0, last_pace_ratio=pace_ratio,
    )  # fmt: skip


DEFAULT_THRESHOLDS = SignalThresholds()


def detect(
    gap_days: float, customer: CustomerProfile, thresholds: SignalThresholds = DEFAULT_THRESHOLDS
) -> Signal | None:
    ctx = context([click(type="page_view", page="/")], visit_gap_ms=round(gap_days * DAY_MS),
                  profile=customer, thresholds=thresholds)  # fmt: skip
    return detect_rhythm_change(ctx)


@pytest.mark.parametrize(
    ("gap_days", "customer", "fires"),
    [
        pytest.param(3.0, profile(), True, id="later-and-shorter"),
        pytest.param(1.5, profile(), True, id="gap-exactly-1.5x"),
        pytest.param(1.49, profile(), False, id="gap-just-under-1.5x"),
        pytest.param(3.0, profile(last_events=18), True, id="last-visit-exactly-0.6x"),
        pytest.param(3.0, profile(last_events=19), False, id="last-visit-over-0.6x"),
        pytest.param(3.0, profile(visits=4), True, id="three-earlier-visits"),
        pytest.param(3.0, profile(visits=3), False, id="two-earlier-visits"),
        pytest.param(0.0, profile(), False, id="not-a-new-visit"),
        pytest.param(3.0, profile(gap_mean_days=0.0), False, id="no-gap-yet"),
        pytest.param(3.0, profile(usual_events=0.0, last_events=0), False, id="no-visit-size"),
        pytest.param(3.0, profile(last_events=30, pace_ratio=2.0), True, id="2x-slower"),
        pytest.param(3.0, profile(last_events=30, pace_ratio=1.9), False, id="pace-under-2x"),
        pytest.param(1.4, profile(last_events=30, pace_ratio=3.0), False, id="slower-not-later"),
        pytest.param(3.0, profile(last_events=30, pace_ratio=0.0), False, id="pace-not-known"),
    ],
)
def test_when_it_fires(gap_days: float, customer: CustomerProfile, fires: bool) -> None:
    assert (detect(gap_days, customer) is not None) is fires


def test_a_timer_never_fires() -> None:
    ctx = context([click()], now_ms=T0_MS + 3 * DAY_MS, timer=True, profile=profile())

    assert detect_rhythm_change(ctx) is None


@pytest.mark.parametrize(
    ("thresholds", "fires"),
    [
        (SignalThresholds(rhythm_gap_factor=3.5), False),
        (SignalThresholds(rhythm_visit_share=0.2), False),
        (SignalThresholds(rhythm_min_visits=4), False),
        (SignalThresholds(rhythm_min_visits=3), True),
    ],
)
def test_thresholds_are_respected(thresholds: SignalThresholds, fires: bool) -> None:
    assert (detect(3.0, profile(), thresholds) is not None) is fires


@pytest.mark.parametrize(("factor", "fires"), [(2.5, True), (3.5, False)])
def test_the_pace_factor_is_respected(factor: float, fires: bool) -> None:
    customer = profile(last_events=30, pace_ratio=3.0)
    thresholds = SignalThresholds(rhythm_pace_factor=factor)

    assert (detect(3.0, customer, thresholds) is not None) is fires


def test_a_slower_visit_is_said_with_its_pace() -> None:
    signal = detect(3.0, profile(last_events=30, pace_ratio=2.5))

    assert signal is not None
    assert signal.evidence == {"gap_ratio": 3.0, "last_visit_share": 1.0,
                               "last_visit_pace_ratio": 2.5}  # fmt: skip
    assert "their last visit was 2.5 times slower than usual;" in signal.explanation


def test_signal() -> None:
    signal = detect(3.0, profile())

    assert signal is not None
    assert (signal.reason, signal.kind) == (REASON, KIND) == ("rhythm_change", "reminder")
    assert signal.score == pytest.approx(0.7)
    assert signal.evidence == {"gap_ratio": 3.0, "last_visit_share": 0.27}
    assert signal.explanation == (
        "This returning customer came back after 3.0 days, 3.0 times their usual gap, and "
        "their last visit was short; their interest may be fading."
    )


@pytest.mark.parametrize(
    ("gap_days", "mean_days", "said"),
    [(3.0, 1.0, "after 3.0 days, 3.0 times"), (0.25, 0.125, "after 6.0 hours, 2.0 times")],
)
def test_the_gap_is_said_in_hours_or_days(gap_days: float, mean_days: float, said: str) -> None:
    signal = detect(gap_days, profile(gap_mean_days=mean_days))

    assert signal is not None
    assert said in signal.explanation


def visit(
    session_id: str, start_ms: int, n_events: int, every_ms: int = 20_000
) -> list[ClickEvent]:
    return [
        click(type="page_view", page=f"/p{i}", session_id=session_id, ts_ms=start_ms + every_ms * i)
        for i in range(n_events)
    ]


def first_event_reasons(visits: list[list[ClickEvent]]) -> list[list[str]]:
    """Every visit through the pipeline; the reasons each visit's first event fired."""
    state: CustomerState | None = None
    first: list[list[str]] = []
    for events in visits:
        for i, event in enumerate(events):
            outcome = process_event(state, event, Rules(), event.ts_ms, event.ts_ms)
            state = outcome.state
            if i == 0:
                first.append([s.reason for s in outcome.signals])
    return first


@pytest.mark.parametrize(
    ("starts_days", "sizes", "fourth_fires"),
    [
        pytest.param((0, 1, 2, 4), (30, 30, 5, 1), True, id="later-and-shorter"),
        pytest.param((0, 1, 2, 3), (30, 30, 5, 1), False, id="as-often-as-usual"),
        pytest.param((0, 1, 2, 4), (30, 30, 25, 1), False, id="as-long-as-usual"),
    ],
)
def test_from_the_customers_own_visits(
    starts_days: tuple[int, ...], sizes: tuple[int, ...], fourth_fires: bool
) -> None:
    visits = [
        visit(f"v{i}", T0_MS + day * DAY_MS, size)
        for i, (day, size) in enumerate(zip(starts_days, sizes, strict=True))
    ]

    reasons = first_event_reasons(visits)

    assert reasons[:3] == [[], [], []]
    assert (REASON in reasons[3]) is fourth_fires


@pytest.mark.parametrize(
    ("third_every_ms", "fourth_fires"),
    [
        pytest.param(50_000, True, id="later-and-2.5x-slower"),
        pytest.param(30_000, False, id="later-and-1.5x-slower"),
    ],
)
def test_a_slower_pace_from_the_customers_own_visits(
    third_every_ms: int, fourth_fires: bool
) -> None:
    visits = [
        visit("v0", T0_MS, 30),
        visit("v1", T0_MS + DAY_MS, 30),
        visit("v2", T0_MS + 2 * DAY_MS, 25, every_ms=third_every_ms),
        visit("v3", T0_MS + 4 * DAY_MS, 1),
    ]

    reasons = first_event_reasons(visits)

    assert reasons[:3] == [[], [], []]
    assert (REASON in reasons[3]) is fourth_fires
