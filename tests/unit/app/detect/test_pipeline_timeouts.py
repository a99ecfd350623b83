"""Session timeouts are timers: a live session is due at its timeout (or at an earlier silence
rule), and a timer at that watermark ends it."""

from __future__ import annotations

import pytest

from app.detect.pipeline import Outcome, Rules, fire_timers, next_due_ms, process_event
from app.detect.state import TimeRules
from app.ingest.events import ClickEvent
from tables.customer_state import CustomerState
from tests.factories import T0_MS, click

RULES = Rules()
TIMEOUT_MS = RULES.time.session_timeout_ms


def at(ms: int, type: str = "page_view", **fields: object) -> ClickEvent:
    return click(type=type, ts_ms=T0_MS + ms, **fields)


def run(events: list[ClickEvent], rules: Rules = RULES) -> tuple[CustomerState, Outcome]:
    """The state after ``events``, and the outcome of the last one."""
    state = None
    for event in events:
        outcome = process_event(state, event, rules, 0, event.ts_ms)
        state = outcome.state
    assert state is not None
    return state, outcome


def test_a_plain_session_is_due_just_past_its_timeout() -> None:
    state, outcome = run([at(0), at(20_000, page="/p")])

    assert outcome.due_ms == T0_MS + 20_000 + TIMEOUT_MS + 1
    assert next_due_ms(state, RULES) == T0_MS + 20_000 + TIMEOUT_MS + 1


def test_the_timeout_follows_the_rules() -> None:
    rules = Rules(time=TimeRules(session_timeout_ms=60_000))

    state, outcome = run([at(0)], rules)

    assert outcome.due_ms == next_due_ms(state, rules) == T0_MS + 60_001


def test_a_timer_just_before_the_timeout_changes_nothing() -> None:
    state, _ = run([at(0)])

    outcome = fire_timers(state, T0_MS + TIMEOUT_MS, RULES, T0_MS + TIMEOUT_MS)

    assert outcome.state is state
    assert [s.session_id for s in state.sessions] == ["s1"]
    assert outcome.due_ms == T0_MS + TIMEOUT_MS + 1


def test_a_timer_at_the_timeout_ends_the_session() -> None:
    state, first = run([at(0), at(20_000)])
    assert first.due_ms is not None

    outcome = fire_timers(state, first.due_ms, RULES, first.due_ms)

    assert outcome.state is not None
    assert outcome.state.sessions == ()
    assert outcome.state.ended_sessions == (("s1", T0_MS + 20_000),)
    assert outcome.interventions == []
    assert outcome.due_ms is None  # nothing live is left to wait for
    assert [s.session_id for s in state.sessions] == ["s1"]  # the state given is unchanged


def test_a_timer_ends_only_the_session_that_timed_out() -> None:
    state, _ = run([at(0), at(600_000, session_id="s2")])

    outcome = fire_timers(state, T0_MS + TIMEOUT_MS + 1, RULES, 0)

    assert outcome.state is not None
    assert [s.session_id for s in outcome.state.sessions] == ["s2"]
    assert outcome.state.ended_sessions == (("s1", T0_MS),)
    assert outcome.due_ms == T0_MS + 600_000 + TIMEOUT_MS + 1


CART = at(0, "add_to_cart", product_id="p1", value=40.0)


@pytest.mark.parametrize(
    ("events", "due_after_t0_ms"),
    [
        pytest.param([at(0)], TIMEOUT_MS + 1, id="no-silence-rule"),
        pytest.param([CART], 600_000, id="cart-idle"),
        pytest.param(
            [CART, at(30_000, "checkout_step", step="payment", value=40.0)],
            30_000 + 60_000,
            id="checkout-stall",
        ),
        pytest.param(
            [CART, at(30_000, "purchase", value=40.0)], 30_000 + TIMEOUT_MS + 1, id="bought"
        ),
    ],
)
def test_a_silence_rule_due_before_the_timeout_comes_first(
    events: list[ClickEvent], due_after_t0_ms: int
) -> None:
    state, outcome = run(events)

    assert outcome.due_ms == next_due_ms(state, RULES) == T0_MS + due_after_t0_ms


def test_after_the_silence_has_spoken_the_timeout_is_due() -> None:
    state, _ = run([CART])

    outcome = fire_timers(state, T0_MS + 600_000, RULES, T0_MS + 600_000)

    assert [i["reason"] for i in outcome.interventions] == ["cart_abandonment_risk"]
    assert outcome.due_ms == T0_MS + TIMEOUT_MS + 1


def test_a_silence_and_the_timeout_in_one_step_both_happen() -> None:
    state, _ = run([CART])

    outcome = fire_timers(state, T0_MS + TIMEOUT_MS + 1, RULES, 0)

    assert [i["reason"] for i in outcome.interventions] == ["cart_abandonment_risk"]
    assert outcome.state is not None and outcome.state.sessions == ()


@pytest.mark.parametrize(
    ("events", "due_after_t0_ms"),
    [
        pytest.param(
            [at(0), at(100_000, session_id="s2")], TIMEOUT_MS + 1, id="the-other-times-out-first"
        ),
        pytest.param(
            [at(0), at(100_000, session_id="s2"), at(97_000)],
            97_000 + TIMEOUT_MS + 1,
            id="the-events-own-session-first",
        ),
        pytest.param(
            [at(0), at(100_000, session_id="s2"), at(200_000)],
            100_000 + TIMEOUT_MS + 1,
            id="the-event-kept-s1-going",
        ),
        pytest.param(
            [at(0), at(100_000, "add_to_cart", session_id="s2", product_id="p1", value=40.0)],
            100_000 + 600_000,
            id="a-silence-of-the-other",
        ),
        pytest.param(
            [at(0, "add_to_cart", product_id="p1", value=40.0), at(700_000, session_id="s2")],
            600_000,
            id="a-silence-of-the-older",
        ),
    ],
)
def test_with_two_live_sessions_the_earliest_counts(
    events: list[ClickEvent], due_after_t0_ms: int
) -> None:
    state, outcome = run(events)

    assert len(state.sessions) == 2
    assert outcome.due_ms == next_due_ms(state, RULES) == T0_MS + due_after_t0_ms


def test_after_a_session_end_the_other_sessions_timeout_is_due() -> None:
    state, outcome = run([at(0), at(100_000, session_id="s2"), at(150_000, "session_end")])

    assert [s.session_id for s in state.sessions] == ["s2"]
    assert outcome.due_ms == T0_MS + 100_000 + TIMEOUT_MS + 1


def test_after_the_last_session_ends_nothing_is_due() -> None:
    state, outcome = run([at(0), at(10_000, "session_end")])

    assert state.sessions == ()
    assert outcome.due_ms is None
    assert next_due_ms(state, RULES) is None


def test_a_late_event_keeps_the_timeout_due() -> None:
    _, outcome = run([at(0), at(60_000), at(10_000)])

    assert outcome.late
    assert outcome.due_ms == T0_MS + 60_000 + TIMEOUT_MS + 1
