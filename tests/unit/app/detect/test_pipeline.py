"""``process_event``: one event through state update, detection and decision."""

from __future__ import annotations

import pytest

from app.detect.pipeline import Outcome, process_event
from app.detect.signals import SignalThresholds
from app.detect.state import StateLimits
from app.ingest.events import ClickEvent
from tables.customer_state import CustomerState, encode_state
from tests.factories import T0_MS, click

DEFAULT_THRESHOLDS = SignalThresholds()
DEFAULT_LIMITS = StateLimits()

NOW_MS = T0_MS + 60_000


def run(
    events: list[ClickEvent],
    state: CustomerState | None = None,
    thresholds: SignalThresholds = DEFAULT_THRESHOLDS,
    limits: StateLimits = DEFAULT_LIMITS,
) -> tuple[CustomerState | None, list[Outcome]]:
    """Process ``events`` in order, carrying the state, as the agent does."""
    outcomes = []
    for event in events:
        outcome = process_event(state, event, thresholds, limits, now_ms=NOW_MS)
        state = outcome.state
        outcomes.append(outcome)
    return state, outcomes


def rage_burst(start_ms: int, session_id: str = "s1", element: str = "#buy") -> list[ClickEvent]:
    return [
        click(element=element, session_id=session_id, ts_ms=start_ms + dt) for dt in (0, 100, 200)
    ]


def reasons(outcomes: list[Outcome]) -> list[list[str]]:
    return [[i["reason"] for i in o.interventions] for o in outcomes]


def causes(outcomes: list[Outcome]) -> list[list[tuple[str, str]]]:
    return [[(s.reason, cause) for s, cause in o.suppressed] for o in outcomes]


# --- duplicates ------------------------------------------------------------------------------


def test_first_event_builds_state() -> None:
    state, [outcome] = run([click(type="page_view", page="/")])

    assert state is not None
    assert outcome.state is state
    assert not outcome.duplicate
    assert (outcome.interventions, outcome.suppressed) == ([], [])
    assert state.session is not None
    assert state.session.page == "/"


@pytest.mark.parametrize(
    "history",
    [
        pytest.param([click(event_id="dup", type="page_view")], id="plain"),
        pytest.param(
            [click(event_id="dup", type="payment_failed", error="declined")], id="that-fired"
        ),
        pytest.param(
            [click(event_id="dup", ts_ms=T0_MS), click(type="page_view", ts_ms=T0_MS + 5)],
            id="not-the-latest",
        ),
        pytest.param(
            [*rage_burst(T0_MS)[:2], click(event_id="dup", element="#buy", ts_ms=T0_MS + 200)],
            id="rage-trigger",
        ),
    ],
)
def test_duplicate_changes_nothing(history: list[ClickEvent]) -> None:
    state, _ = run(history)
    assert state is not None
    repeat = next(e for e in history if e.event_id == "dup")
    before = encode_state(state)

    outcome = process_event(state, repeat, SignalThresholds(), StateLimits(), now_ms=NOW_MS + 1)

    assert outcome.duplicate
    assert outcome.state is state
    assert (outcome.interventions, outcome.suppressed) == ([], [])
    assert encode_state(state) == before


def test_same_id_with_other_content_is_still_a_duplicate() -> None:
    state, _ = run([click(event_id="dup", type="page_view")])
    assert state is not None
    before = encode_state(state)

    outcome = process_event(
        state, click(event_id="dup", type="payment_failed"), SignalThresholds(), StateLimits(), 0
    )

    assert outcome.duplicate
    assert encode_state(state) == before


def test_duplicate_without_state_is_impossible() -> None:
    outcome = process_event(None, click(), SignalThresholds(), StateLimits(), now_ms=NOW_MS)

    assert not outcome.duplicate
    assert outcome.state is not None


# --- one intervention per reason per session ------------------------------------------------


def test_one_intervention_per_reason_per_session() -> None:
    events = [*rage_burst(T0_MS), *rage_burst(T0_MS + 10_000)]

    state, outcomes = run(events)

    assert reasons(outcomes) == [[], [], ["rage_click"], [], [], []]
    assert causes(outcomes) == [[], [], [], [], [], [("rage_click", "cooldown")]]
    assert state is not None
    assert len(state.interventions) == 1


def test_continuing_burst_is_suppressed_by_cooldown() -> None:
    events = [click(element="#buy", ts_ms=T0_MS + 10 * i) for i in range(5)]

    _, outcomes = run(events)

    assert reasons(outcomes) == [[], [], ["rage_click"], [], []]
    assert causes(outcomes)[3:] == [[("rage_click", "cooldown")]] * 2


def test_a_new_session_fires_again() -> None:
    events = [*rage_burst(T0_MS, "s1"), *rage_burst(T0_MS + 10_000, "s2")]

    state, outcomes = run(events)

    assert reasons(outcomes) == [[], [], ["rage_click"], [], [], ["rage_click"]]
    assert causes(outcomes) == [[]] * 6
    assert state is not None
    assert [i["session_id"] for i in state.interventions] == ["s2", "s1"]


def test_different_reasons_in_one_session_each_fire_once() -> None:
    events = [
        *rage_burst(T0_MS),
        click(type="payment_failed", ts_ms=T0_MS + 1000),
        click(type="payment_failed", ts_ms=T0_MS + 2000),
        *rage_burst(T0_MS + 3000),
    ]

    _, outcomes = run(events)

    assert reasons(outcomes) == [[], [], ["rage_click"], ["payment_failure"], [], [], [], []]
    assert causes(outcomes)[4] == [("payment_failure", "cooldown")]
    assert causes(outcomes)[7] == [("rage_click", "cooldown")]


def test_fired_signal_is_recorded_on_the_state() -> None:
    state, outcomes = run(rage_burst(T0_MS))

    assert state is not None
    assert state.session is not None
    assert state.session.fired_reasons == ("rage_click",)
    assert state.scores == {"rage_click": pytest.approx(0.7)}
    assert [(s.name, s.event_id) for s in state.signals] == [
        ("rage_click", outcomes[-1].interventions[0]["event_id"])
    ]


def test_suppressed_signal_is_not_recorded_again() -> None:
    state, _ = run([*rage_burst(T0_MS), *rage_burst(T0_MS + 10_000)])

    assert state is not None
    assert len(state.signals) == 1


def test_straggler_from_an_earlier_session_triggers_nothing() -> None:
    events = [
        click(session_id="s2", type="page_view", ts_ms=T0_MS + 10_000),
        click(session_id="s1", type="payment_failed", ts_ms=T0_MS),
    ]

    state, outcomes = run(events)

    assert reasons(outcomes) == [[], []]
    assert state is not None
    assert state.interventions == ()


def test_thresholds_are_passed_to_the_detectors() -> None:
    _, outcomes = run(rage_burst(T0_MS), thresholds=SignalThresholds(rage_click_min_clicks=4))

    assert reasons(outcomes) == [[], [], []]


def test_intervention_carries_now_ms_and_the_trigger() -> None:
    events = rage_burst(T0_MS)

    _, outcomes = run(events)

    [intervention] = outcomes[-1].interventions
    assert intervention["emitted_ts"] == NOW_MS
    assert intervention["event_id"] == events[-1].event_id
    assert intervention["event_ts"] == events[-1].ts_ms


# --- session_end ------------------------------------------------------------------------------


def test_session_end_closes_the_session() -> None:
    state, outcomes = run([click(type="page_view"), click(type="session_end", ts_ms=T0_MS + 1)])

    assert state is not None
    assert state.session is None
    assert outcomes[-1].interventions == []
    assert state.profile.events == 2


def test_session_end_of_another_session_keeps_the_live_one() -> None:
    state, _ = run(
        [
            click(session_id="s2", ts_ms=T0_MS + 10_000),
            click(session_id="s1", type="session_end", ts_ms=T0_MS),
        ]
    )

    assert state is not None
    assert state.session is not None
    assert state.session.session_id == "s2"


def test_after_session_end_the_same_reason_fires_in_the_next_session() -> None:
    events = [
        *rage_burst(T0_MS, "s1"),
        click(session_id="s1", type="session_end", ts_ms=T0_MS + 1000),
        *rage_burst(T0_MS + 10_000, "s2"),
    ]

    state, outcomes = run(events)

    assert reasons(outcomes) == [[], [], ["rage_click"], [], [], [], ["rage_click"]]
    assert state is not None
    assert state.profile.visits == 2


# --- stored interventions --------------------------------------------------------------------


@pytest.mark.parametrize(("interventions_max", "n_sessions"), [(1, 3), (3, 2), (3, 3), (3, 5)])
def test_interventions_stored_newest_first_and_bounded(
    interventions_max: int, n_sessions: int
) -> None:
    limits = StateLimits(interventions_max=interventions_max)
    events = [
        click(session_id=f"s{i}", type="payment_failed", ts_ms=T0_MS + 1000 * i)
        for i in range(n_sessions)
    ]

    state, outcomes = run(events, limits=limits)

    assert state is not None
    sent = [o.interventions[0] for o in outcomes]
    assert state.interventions == tuple(sent[::-1][:interventions_max])


def test_late_events_of_an_ended_session_do_not_fire_the_same_reason_again() -> None:
    events = [
        click(session_id="s1", type="payment_failed", error="declined", ts_ms=T0_MS),
        click(session_id="s1", type="session_end", ts_ms=T0_MS + 5000),
        # A second decline of the same visit, delivered after the session_end beacon.
        click(session_id="s1", type="payment_failed", error="declined", ts_ms=T0_MS + 1000),
    ]

    state, outcomes = run(events)

    assert reasons(outcomes) == [["payment_failure"], [], []]
    assert state is not None
    assert state.profile.visits == 1
