"""``process_event``: one event through state update, detection and decision."""

from __future__ import annotations

from itertools import pairwise

import pytest

from app.decide.policy import PolicyRules
from app.detect.pipeline import Outcome, Rules, process_event
from app.detect.signals import SignalThresholds
from app.detect.state import StateLimits
from app.ingest.events import ClickEvent
from tables.customer_state import CustomerState, decode_state, encode_state
from tests.factories import T0_MS, click

DEFAULT_THRESHOLDS = SignalThresholds()
DEFAULT_LIMITS = StateLimits()
DEFAULT_POLICY = PolicyRules()

NOW_MS = T0_MS + 60_000


def run(
    events: list[ClickEvent],
    state: CustomerState | None = None,
    thresholds: SignalThresholds = DEFAULT_THRESHOLDS,
    limits: StateLimits = DEFAULT_LIMITS,
    policy: PolicyRules = DEFAULT_POLICY,
) -> tuple[CustomerState | None, list[Outcome]]:
    """Process ``events`` in order, carrying the state, as the agent does."""
    outcomes = []
    rules = Rules(thresholds, limits, policy=policy)
    for event in events:
        outcome = process_event(state, event, rules, 0, NOW_MS)
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
    return [list(o.suppressed) for o in outcomes]


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

    outcome = process_event(state, repeat, Rules(), 0, NOW_MS + 1)

    assert outcome.duplicate
    assert outcome.state is state
    assert (outcome.interventions, outcome.suppressed) == ([], [])
    assert encode_state(state) == before


def test_same_id_with_other_content_is_still_a_duplicate() -> None:
    state, _ = run([click(event_id="dup", type="page_view")])
    assert state is not None
    before = encode_state(state)

    outcome = process_event(state, click(event_id="dup", type="payment_failed"), Rules(), 0, 0)

    assert outcome.duplicate
    assert encode_state(state) == before


def test_duplicate_without_state_is_impossible() -> None:
    outcome = process_event(None, click(), Rules(), 0, NOW_MS)

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


def test_a_burst_two_hours_late_triggers_nothing() -> None:
    events = [
        click(type="page_view", ts_ms=T0_MS + 7_200_000),
        *rage_burst(T0_MS),
        *rage_burst(T0_MS, session_id="old-visit"),
    ]

    state, outcomes = run(events)

    assert reasons(outcomes) == [[]] * 7
    assert [o.late for o in outcomes] == [False] + [True] * 6
    assert state is not None
    assert state.interventions == ()
    assert state.profile.late_events == 6


def test_a_click_9999_s_late_in_the_session_triggers_nothing() -> None:
    events = [*rage_burst(T0_MS + 9_999_000)[:2], click(element="#buy", ts_ms=T0_MS)]

    _, outcomes = run(events)

    assert reasons(outcomes) == [[], [], []]
    assert outcomes[-1].late


def test_out_of_order_clicks_within_the_lateness_are_placed_in_order() -> None:
    burst = rage_burst(T0_MS)
    _, outcomes = run([burst[2], burst[0], burst[1]])

    assert reasons(outcomes) == [[], [], ["rage_click"]]


def test_two_sessions_taking_turns_get_one_rage_click_each() -> None:
    a, b = rage_burst(T0_MS, "tab-a"), rage_burst(T0_MS + 50, "tab-b")
    later_a, later_b = rage_burst(T0_MS + 5_000, "tab-a"), rage_burst(T0_MS + 5_050, "tab-b")
    interleaved = [e for pair in zip(a, b, strict=True) for e in pair]
    interleaved += [e for pair in zip(later_a, later_b, strict=True) for e in pair]

    _, outcomes = run(interleaved)

    fired = [(i["session_id"], i["reason"]) for o in outcomes for i in o.interventions]
    assert fired == [("tab-a", "rage_click"), ("tab-b", "rage_click")]
    # Each tab's second burst is held back by its own session's cooldown, not the other's.
    assert sum(1 for o in outcomes for _, c in o.suppressed if c == "cooldown") == 2


def test_a_second_device_whose_clock_is_60_s_behind_still_rage_clicks() -> None:
    events = [
        click(session_id="laptop", type="page_view", ts_ms=T0_MS + 60_000),
        *rage_burst(T0_MS, session_id="phone"),
    ]

    _, outcomes = run(events)

    assert reasons(outcomes)[-1] == ["rage_click"]


def test_a_bug_half_way_leaves_the_state_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    state, _ = run([click(type="add_to_cart", value=5.0, product_id="p")])
    assert state is not None
    before = encode_state(state)
    event = click(type="payment_failed", error="declined", ts_ms=T0_MS + 10)

    def broken(ctx: object) -> None:
        raise RuntimeError("a bug in a detector")

    import app.detect.signals as signals

    by_type = {**signals._BY_TYPE, "payment_failed": (*signals._BY_TYPE["payment_failed"], broken)}
    monkeypatch.setattr(signals, "_BY_TYPE", by_type)
    with pytest.raises(RuntimeError):
        process_event(state, event, Rules(), 0, NOW_MS)
    monkeypatch.undo()

    assert encode_state(state) == before
    resent = process_event(state, event, Rules(), 0, NOW_MS)
    assert not resent.duplicate
    assert [i["reason"] for i in resent.interventions] == ["payment_failure"]


def test_a_step_loop_is_seen_beyond_the_recent_window() -> None:
    events = []
    ts = T0_MS
    for step in ("cart", "shipping", "cart", "shipping", "cart"):
        events.append(click(type="checkout_step", step=step, ts_ms=ts))
        for _ in range(40):  # more than the 32-event window between two steps
            ts += 1_000
            events.append(click(type="scroll", scroll_pct=50.0, ts_ms=ts))
        ts += 1_000

    _, outcomes = run(events, limits=StateLimits(recent_events_max=32))

    assert [r for o in outcomes for r in reasons([o])[0]] == ["step_loop"]


def test_a_buyer_editing_the_cart_between_steps_is_not_looping() -> None:
    events = [
        click(type="checkout_step", step="cart", ts_ms=T0_MS),
        click(type="checkout_step", step="shipping", ts_ms=T0_MS + 1_000),
        click(type="checkout_step", step="cart", ts_ms=T0_MS + 2_000),
        click(type="remove_from_cart", product_id="p", value=3.0, ts_ms=T0_MS + 3_000),
        click(type="checkout_step", step="shipping", ts_ms=T0_MS + 4_000),
        click(type="checkout_step", step="cart", ts_ms=T0_MS + 5_000),
        click(type="add_to_cart", product_id="q", value=4.0, ts_ms=T0_MS + 6_000),
        click(type="checkout_step", step="shipping", ts_ms=T0_MS + 7_000),
    ]

    _, outcomes = run(events)

    assert all(not o.interventions for o in outcomes)


def test_several_reasons_at_once_make_one_intervention_with_the_others_as_evidence() -> None:
    errors = [click(type="form_error", field="card", page="/pay", ts_ms=T0_MS + i) for i in (0, 1)]
    _, outcomes = run([click(type="error", error="x", ts_ms=T0_MS - 1), *errors])

    (intervention,) = outcomes[-1].interventions
    assert intervention["reason"] == "form_struggle"
    assert "error_burst" in intervention["signals"]


def test_bots_get_nothing() -> None:
    events = [click(type="page_view", page=f"/p{i}", ts_ms=T0_MS + 50 * i) for i in range(25)]
    events += [click(type="payment_failed", ts_ms=T0_MS + 2_000)]

    _, outcomes = run(events)

    assert all(not o.interventions for o in outcomes)
    assert outcomes[-1].suppressed == [("payment_failure", "bot")]


def test_a_person_whose_browser_sends_events_in_pairs_is_not_a_bot() -> None:
    # A browser tracker sends what one action causes within milliseconds: a click and
    # the page it opens, a field's blur and the next one's focus, a click and its
    # submit. A person's checkout is then up to ~60 % short gaps (measured in the
    # demo shop), yet every step came after seconds of thought.
    events, ts = [], T0_MS
    for step in range(8):
        ts += 1_800  # reading, deciding
        events += [click(type="click", element=f"#next-{step}", ts_ms=ts),
                   click(type="form_submit", field=f"form-{step}", ts_ms=ts + 5),
                   click(type="page_view", page=f"/checkout/{step}", ts_ms=ts + 50)]  # fmt: skip
        ts += 1_200  # filling a field
        events += [click(type="form_blur", field=f"f{step}", ts_ms=ts),
                   click(type="form_focus", field=f"g{step}", ts_ms=ts + 30)]  # fmt: skip
    events.append(click(type="payment_failed", page="/checkout/pay", ts_ms=ts + 3_000))
    gaps = [b.ts_ms - a.ts_ms for a, b in pairwise(events)]
    assert sum(g < DEFAULT_THRESHOLDS.bot_gap_ms for g in gaps) / len(gaps) >= 0.6

    _, outcomes = run(events)

    assert [i["reason"] for i in outcomes[-1].interventions] == ["payment_failure"]


def test_a_declared_crawler_gets_nothing() -> None:
    events = [
        click(type="page_view", props={"user_agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"}),
        click(type="payment_failed", ts_ms=T0_MS + 5_000),
    ]

    _, outcomes = run(events)

    assert outcomes[-1].interventions == []


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

    state, outcomes = run(events, policy=PolicyRules(reason_cooldown_ms=0, any_cooldown_ms=0))

    assert reasons(outcomes) == [[], [], ["rage_click"], [], [], [], ["rage_click"]]
    assert state is not None
    assert state.profile.visits == 2


def test_the_next_visit_inherits_the_cooldown_of_the_last() -> None:
    events = [
        *rage_burst(T0_MS, "s1"),
        click(session_id="s1", type="session_end", ts_ms=T0_MS + 1000),
        *rage_burst(T0_MS + 10_000, "s2"),
        click(session_id="s2", type="session_end", ts_ms=T0_MS + 11_000),
        *rage_burst(T0_MS + 600_000, "s3"),
    ]

    _state, outcomes = run(events, policy=PolicyRules(reason_cooldown_ms=600_000))

    assert reasons(outcomes) == [[], [], ["rage_click"], [], [], [], [], [], [], [], ["rage_click"]]
    assert outcomes[6].suppressed == [("rage_click", "cooldown")]


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


@pytest.mark.parametrize(("live_ms", "late"), [(0, False), (T0_MS + 7_200_000, True)])
def test_a_new_customer_two_hours_behind_a_live_partition_is_late(live_ms: int, late: bool) -> None:
    # On a partition that follows the wall clock, a first visit that began two hours ago is
    # long over; a replay of old events (live_ms=0) is judged by its own event times.
    outcomes = []
    state = None
    for event in rage_burst(T0_MS):
        outcome = process_event(state, event, Rules(), 0, NOW_MS, live_ms)
        state = outcome.state
        outcomes.append(outcome)

    assert all(o.late for o in outcomes) is late
    assert (reasons(outcomes)[-1] == []) is late


# --- a replay after a crash: dropped by offset -----------------------------------------------


def test_an_offset_the_state_includes_is_a_replay_whatever_its_event_id() -> None:
    # Past the remembered event ids, only the offset tells a replayed event from a new one.
    state = None
    for offset in range(100):
        event = click(event_id=f"e{offset}", ts_ms=T0_MS + offset * 1000)
        state = process_event(state, event, Rules(), 0, NOW_MS, offset=offset).state
    assert state is not None and state.clicks_offset == 99

    replayed = process_event(state, click(event_id="e3", ts_ms=T0_MS + 3000), Rules(), 0, NOW_MS,
                             offset=3)  # fmt: skip
    fresh = process_event(state, click(event_id="e100", ts_ms=T0_MS + 100_000), Rules(), 0,
                          NOW_MS, offset=100)  # fmt: skip

    assert replayed.duplicate and replayed.state is state
    assert not fresh.duplicate and fresh.state is not None and fresh.state.clicks_offset == 100
    assert state.profile.events == 100


def test_the_offset_survives_the_changelog() -> None:
    state = process_event(None, click(), Rules(), 0, NOW_MS, offset=41).state
    assert state is not None

    assert decode_state(encode_state(state)).clicks_offset == 41
