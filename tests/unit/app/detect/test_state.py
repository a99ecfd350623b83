"""Folding events into customer state: ``fold_event``, ``is_duplicate``, ``end_session``,
``record_signal``, ``expire_state``."""

from __future__ import annotations

import copy
import random
from array import array
from dataclasses import fields, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.detect.pipeline import Rules, process_event
from app.detect.signals import SignalThresholds
from app.detect.state import (
    Folded,
    StateLimits,
    TimeRules,
    copy_session,
    copy_state,
    end_session,
    event_digest,
    expire_state,
    fast_gaps_added,
    fold_event,
    is_duplicate,
    new_state,
    record_signal,
)
from app.ingest.events import ClickEvent
from tables.customer_state import (
    CustomerProfile,
    CustomerState,
    RecentEvent,
    SessionState,
    SessionSummary,
)
from tests.factories import T0_MS, click, fold


def advance(
    state: CustomerState | None,
    event: ClickEvent,
    limits: StateLimits = StateLimits(),  # noqa: B008
    time: TimeRules = TimeRules(),  # noqa: B008
    watermark_ms: int = 0,
) -> CustomerState:
    """Fold one event with no detection, as the pipeline does first."""
    return fold_event(state, event, limits, time, SignalThresholds(), watermark_ms).state


def fold_one(state: CustomerState | None, event: ClickEvent, watermark_ms: int = 0) -> Folded:
    """``fold_event`` with the default rules."""
    return fold_event(state, event, StateLimits(), TimeRules(), SignalThresholds(), watermark_ms)


def close_session(state: CustomerState, event: ClickEvent, limits: StateLimits) -> None:
    """What the pipeline does after looking at a ``session_end``."""
    if event.type == "session_end":
        end_session(state, event.session_id, limits)


# --- copies ------------------------------------------------------------------------------


def _with_every_field_set(cls: type, **given: object) -> object:
    """An instance of ``cls`` whose every field holds an object of its own."""
    return cls(**{f.name: given.get(f.name, object()) for f in fields(cls)})


def _assert_shares_fields(copied: object, original: object, *, but: str = "") -> None:
    assert copied is not original
    for f in fields(original):  # type: ignore[arg-type]
        if f.name != but:
            assert getattr(copied, f.name) is getattr(original, f.name), f.name


def test_a_state_copy_copies_every_field_and_the_profile() -> None:
    profile = _with_every_field_set(CustomerProfile)
    state = _with_every_field_set(CustomerState, profile=profile)
    copied = copy_state(state)  # type: ignore[arg-type]
    _assert_shares_fields(copied, state, but="profile")
    _assert_shares_fields(copied.profile, profile)


@pytest.mark.parametrize("with_summary", [True, False])
def test_a_session_copy_copies_every_field_and_the_summary(with_summary: bool) -> None:
    summary = _with_every_field_set(SessionSummary) if with_summary else None
    session = _with_every_field_set(SessionState, summary=summary)
    copied = copy_session(session)  # type: ignore[arg-type]
    _assert_shares_fields(copied, session, but="summary")
    if summary is None:
        assert copied.summary is None
    else:
        _assert_shares_fields(copied.summary, summary)


# --- a new customer ------------------------------------------------------------------------


def test_first_event_creates_customer_profile_and_session() -> None:
    event = click(ts_ms=T0_MS, page="/home", product_id="p1", step="cart")

    state = advance(None, event, StateLimits())

    assert state.customer_id == "c1"
    assert state.segment == "new"
    assert (state.profile.visits, state.profile.events, state.profile.purchases) == (1, 1, 0)
    assert (state.profile.first_seen_ts_ms, state.profile.last_seen_ts_ms) == (T0_MS, T0_MS)
    assert list(state.seen_event_digests) == [event_digest(event.event_id)]
    session = state.session
    assert session is not None
    assert (session.session_id, session.started_ts_ms, session.last_ts_ms) == ("s1", T0_MS, T0_MS)
    assert session.event_count == 1
    assert (session.page, session.product_id, session.step) == ("/home", "p1", "cart")
    assert session.recent == [RecentEvent(T0_MS, "click")]
    assert session.steps == ()  # only checkout_step events move through the steps
    assert (session.cart_value, session.failed_payment_attempts, session.fired_reasons) == (
        0.0,
        0,
        (),
    )


def test_new_state_has_no_session_and_no_visit() -> None:
    state = new_state(click(ts_ms=42))

    assert state.session is None
    assert (state.profile.visits, state.profile.events) == (0, 0)
    assert (state.profile.first_seen_ts_ms, state.profile.last_seen_ts_ms) == (42, 42)


def test_fold_leaves_the_given_state_alone_and_returns_a_new_one() -> None:
    state = fold([click(), click(type="add_to_cart", value=3.0, product_id="p")])
    before = copy.deepcopy(state)

    after = advance(state, click(type="checkout_step", step="cart", ts_ms=T0_MS + 5))

    assert after is not state
    assert after.profile.events == 3
    assert state == before


def test_recent_event_keeps_the_detector_fields() -> None:
    event = click(type="payment_attempt", element="#pay", x=1.5, y=2, step="payment", error="x")

    state = fold([event])

    assert state.session is not None
    assert state.session.recent == [RecentEvent(T0_MS, "payment_attempt", "#pay", 1.5, 2, 0)]


# --- profile counters, visits and segment --------------------------------------------------


@pytest.mark.parametrize(
    ("sessions", "visits", "segment"),
    [
        (["s1"], 1, "new"),
        (["s1", "s1", "s1"], 1, "new"),
        (["s1", "s2"], 2, "returning"),
        (["s1", "s1", "s2", "s2", "s3"], 3, "returning"),
    ],
)
def test_visits_count_new_session_ids_and_set_the_segment(
    sessions: list[str], visits: int, segment: str
) -> None:
    events = [click(session_id=sid, ts_ms=T0_MS + i) for i, sid in enumerate(sessions)]

    state = fold(events)

    assert state.profile.visits == visits
    assert state.segment == segment
    assert state.profile.events == len(sessions)
    assert state.session is not None
    assert state.session.session_id == sessions[-1]


def test_a_new_session_starts_from_scratch() -> None:
    state = fold(
        [
            click(type="add_to_cart", value=30.0, page="/p", ts_ms=T0_MS),
            click(type="payment_failed", ts_ms=T0_MS + 1),
            click(session_id="s2", type="page_view", ts_ms=T0_MS + 10),
        ]
    )

    session = state.session
    assert session is not None
    assert (session.session_id, session.started_ts_ms, session.event_count) == ("s2", T0_MS + 10, 1)
    assert (session.cart_value, session.failed_payment_attempts, session.page) == (0.0, 0, None)
    assert [e.type for e in session.recent] == ["page_view"]


@pytest.mark.parametrize(
    ("types", "purchases"),
    [
        (["click"], 0),
        (["purchase"], 1),
        (["purchase", "page_view", "purchase"], 2),
    ],
)
def test_profile_counts_purchases(types: list[str], purchases: int) -> None:
    state = fold([click(type=t, ts_ms=T0_MS + i) for i, t in enumerate(types)])

    assert state.profile.purchases == purchases


@pytest.mark.parametrize(
    ("times", "first", "last"),
    [
        ([5, 10, 20], 5, 20),
        ([20, 10, 5], 5, 20),
        ([10, 30, 20], 10, 30),
    ],
)
def test_profile_first_and_last_seen_are_event_time_extremes(
    times: list[int], first: int, last: int
) -> None:
    state = fold([click(ts_ms=t) for t in times])

    assert (state.profile.first_seen_ts_ms, state.profile.last_seen_ts_ms) == (first, last)


# --- stragglers and out-of-order events ----------------------------------------------------


def test_straggler_of_an_ended_session_only_counts_in_the_profile() -> None:
    state = None
    for event in [
        click(session_id="s1", ts_ms=1_000, page="/one"),
        click(session_id="s1", type="session_end", ts_ms=2_000),
        click(session_id="s2", ts_ms=5_000, page="/two"),
    ]:
        state = process_event(state, event, Rules(), 0, 0).state
    assert state is not None
    session_before = state.session
    assert session_before is not None

    straggler = click(
        session_id="s1", type="purchase", ts_ms=1_500, page="/late", value=10.0, step="review"
    )
    folded = fold_event(state, straggler, StateLimits(), TimeRules(), SignalThresholds(), 0)
    state = folded.state

    assert folded.late and folded.session is None
    assert [s.session_id for s in state.sessions] == ["s2"]
    assert state.session == session_before
    assert (state.profile.visits, state.profile.purchases, state.profile.late_events) == (2, 1, 1)
    assert event_digest(straggler.event_id) in state.seen_event_digests


def test_two_tabs_taking_turns_keep_their_own_sessions() -> None:
    state = fold(
        [
            click(session_id="tab-a", ts_ms=T0_MS, type="add_to_cart", value=5.0),
            click(session_id="tab-b", ts_ms=T0_MS + 10, page="/b"),
            click(session_id="tab-a", ts_ms=T0_MS + 20, page="/a"),
            click(session_id="tab-b", ts_ms=T0_MS + 30),
        ]
    )

    by_id = {s.session_id: s for s in state.sessions}
    assert set(by_id) == {"tab-a", "tab-b"}
    assert (by_id["tab-a"].event_count, by_id["tab-a"].cart_value) == (2, 5.0)
    assert (by_id["tab-b"].event_count, by_id["tab-b"].page) == (2, "/b")
    assert state.session is by_id["tab-b"]  # most recently active
    assert state.profile.visits == 2


def test_a_device_whose_clock_is_behind_opens_its_own_session() -> None:
    state = fold([click(session_id="laptop", ts_ms=T0_MS + 60_000)])

    folded = fold_event(
        state,
        click(session_id="phone", ts_ms=T0_MS),
        StateLimits(),
        TimeRules(),
        SignalThresholds(),
        0,
    )

    assert not folded.late
    assert folded.session is not None and folded.session.session_id == "phone"
    assert folded.state.profile.first_seen_ts_ms == T0_MS


def test_a_new_session_older_than_a_session_timeout_is_late() -> None:
    state = fold([click(session_id="s2", ts_ms=T0_MS + 2 * 3_600_000)])

    folded = fold_event(
        state,
        click(session_id="s1", ts_ms=T0_MS),
        StateLimits(),
        TimeRules(),
        SignalThresholds(),
        0,
    )

    assert folded.late
    assert [s.session_id for s in folded.state.sessions] == ["s2"]


@pytest.mark.parametrize(
    ("behind_ms", "late"), [(0, False), (4_999, False), (5_000, False), (5_001, True)]
)
def test_lateness_is_measured_against_the_session_newest_event(behind_ms: int, late: bool) -> None:
    state = fold([click(ts_ms=T0_MS + 10_000)])

    folded = fold_event(
        state,
        click(ts_ms=T0_MS + 10_000 - behind_ms),
        StateLimits(),
        TimeRules(),
        SignalThresholds(),
        0,
    )

    assert folded.late is late
    assert folded.state.profile.late_events == int(late)
    assert folded.state.profile.events == 2


def test_more_live_sessions_than_the_bound_end_the_least_recently_active() -> None:
    limits = StateLimits(live_sessions_max=2)
    state = fold(
        [click(session_id=f"s{i}", ts_ms=T0_MS + i) for i in range(3)], Rules(limits=limits)
    )

    assert [s.session_id for s in state.sessions] == ["s1", "s2"]
    assert [sid for sid, _ in state.ended_sessions] == ["s0"]


@pytest.mark.parametrize(
    ("watermark_ms", "live"),
    [(T0_MS + 1_800_000, True), (T0_MS + 1_800_001, False)],
)
def test_a_session_ends_after_the_timeout_by_the_watermark(watermark_ms: int, live: bool) -> None:
    state = fold([click(session_id="s1", ts_ms=T0_MS)])

    other = click(customer_id="c1", session_id="s1", ts_ms=T0_MS + 1)
    after = fold_event(state, other, StateLimits(), TimeRules(), SignalThresholds(), watermark_ms)

    ended = [sid for sid, _ in after.state.ended_sessions]
    assert (ended == []) is live


def test_the_same_session_id_after_the_timeout_is_a_new_visit() -> None:
    state = fold([click(ts_ms=T0_MS, type="add_to_cart", value=9.0)])

    state = advance(state, click(ts_ms=T0_MS + 1_800_001))

    assert state.profile.visits == 2
    assert state.session is not None
    assert (state.session.event_count, state.session.cart_value) == (1, 0.0)


def test_expire_state_by_the_watermark() -> None:
    state = fold([click(ts_ms=T0_MS)])
    day = 86_400_000

    assert expire_state(state, T0_MS + 60_000, StateLimits(), TimeRules()) is state
    ended = expire_state(state, T0_MS + 1_800_001, StateLimits(), TimeRules())
    assert ended is not None and ended.sessions == () and state.sessions != ()
    assert expire_state(state, T0_MS + 30 * day, StateLimits(), TimeRules()) is not None
    assert expire_state(state, T0_MS + 30 * day + 1, StateLimits(), TimeRules()) is None


def test_a_customer_idle_past_the_ttl_starts_afresh() -> None:
    state = fold([click(ts_ms=T0_MS, type="purchase", value=3.0)])

    state = advance(state, click(ts_ms=T0_MS + 31 * 86_400_000))

    assert (state.profile.visits, state.profile.purchases, state.profile.events) == (1, 0, 1)


@pytest.mark.parametrize(
    "arrival",
    [
        [300, 100, 200],
        [100, 300, 200],
        [200, 300, 100],
        [300, 200, 100],
        [100, 100, 50, 100],
    ],
)
def test_recent_stays_sorted_by_event_time(arrival: list[int]) -> None:
    state = fold([click(ts_ms=t) for t in arrival])

    session = state.session
    assert session is not None
    assert [e.ts_ms for e in session.recent] == sorted(arrival)
    assert session.started_ts_ms == min(arrival)
    assert session.last_ts_ms == max(arrival)
    assert session.event_count == len(arrival)


def test_late_event_of_the_live_session_is_placed_by_event_time() -> None:
    state = fold(
        [
            click(ts_ms=100, type="page_view"),
            click(ts_ms=300, type="checkout_step", step="payment"),
            click(ts_ms=200, type="checkout_step", step="shipping"),
        ]
    )

    assert state.session is not None
    assert [(e.ts_ms, e.type) for e in state.session.recent] == [
        (100, "page_view"),
        (200, "checkout_step"),
        (300, "checkout_step"),
    ]
    assert state.session.steps == ((200, "shipping"), (300, "payment"))
    assert state.session.step == "payment"  # where the customer is follows the newest event


# --- bounds ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("recent_max", "n_events"), [(1, 1), (1, 5), (4, 3), (4, 4), (4, 10)])
def test_recent_window_keeps_the_newest_events_by_event_time(
    recent_max: int, n_events: int
) -> None:
    limits = StateLimits(recent_events_max=recent_max)

    state = fold([click(ts_ms=t) for t in range(n_events)], Rules(limits=limits))

    assert state.session is not None
    kept = list(range(n_events))[-recent_max:]
    assert [e.ts_ms for e in state.session.recent] == kept
    assert state.session.event_count == n_events


def test_recent_window_drops_a_late_event_older_than_the_window() -> None:
    limits = StateLimits(recent_events_max=3)

    state = fold([click(ts_ms=t) for t in (10, 20, 30, 5)], Rules(limits=limits))

    assert state.session is not None
    assert [e.ts_ms for e in state.session.recent] == [10, 20, 30]
    assert state.session.started_ts_ms == 5


def test_recent_window_evicts_the_oldest_by_event_time_not_by_arrival() -> None:
    limits = StateLimits(recent_events_max=3)

    state = fold([click(ts_ms=t) for t in (10, 30, 40, 20)], Rules(limits=limits))

    assert state.session is not None
    assert [e.ts_ms for e in state.session.recent] == [20, 30, 40]


@pytest.mark.parametrize(("ids_max", "n_events"), [(1, 3), (3, 2), (3, 3), (3, 7), (256, 300)])
def test_seen_event_ids_keep_the_latest_arrivals(ids_max: int, n_events: int) -> None:
    limits = StateLimits(seen_event_ids_max=ids_max)
    events = [click(event_id=f"id-{i}", ts_ms=T0_MS + i) for i in range(n_events)]

    state = fold(events, Rules(limits=limits))

    assert list(state.seen_event_digests) == [event_digest(e.event_id) for e in events][-ids_max:]


# --- cart value ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "cart_value"),
    [
        ([("add_to_cart", 10.0)], 10.0),
        ([("add_to_cart", 10.0), ("add_to_cart", 5.5)], 15.5),
        ([("add_to_cart", None)], 0.0),
        ([("add_to_cart", 10.0), ("add_to_cart", None)], 10.0),
        ([("add_to_cart", 10.0), ("remove_from_cart", 4.0)], 6.0),
        ([("add_to_cart", 10.0), ("remove_from_cart", 25.0)], 0.0),
        ([("add_to_cart", 10.0), ("remove_from_cart", None)], 10.0),
        ([("add_to_cart", 10.0), ("checkout_step", 42.0)], 42.0),
        ([("add_to_cart", 10.0), ("checkout_step", None)], 10.0),
        ([("add_to_cart", 10.0), ("payment_attempt", 12.0)], 12.0),
        ([("add_to_cart", 10.0), ("payment_failed", 13.0)], 13.0),
        ([("add_to_cart", 10.0), ("purchase", 10.0)], 0.0),
        ([("add_to_cart", 10.0), ("purchase", None)], 0.0),
        ([("add_to_cart", 10.0), ("product_view", 99.0)], 10.0),
        ([("add_to_cart", 10.0), ("click", 99.0)], 10.0),
        ([("checkout_step", 50.0), ("add_to_cart", 5.0)], 55.0),
    ],
)
def test_cart_value(steps: list[tuple[str, float | None]], cart_value: float) -> None:
    state = fold([click(type=t, value=v, ts_ms=T0_MS + i) for i, (t, v) in enumerate(steps)])

    assert state.session is not None
    assert state.session.cart_value == pytest.approx(cart_value)


def test_late_checkout_step_does_not_overwrite_a_newer_order_total() -> None:
    state = fold(
        [
            click(type="checkout_step", step="shipping", value=40.0, ts_ms=T0_MS + 2_000),
            click(type="checkout_step", step="cart", value=25.0, ts_ms=T0_MS + 1_000),
        ]
    )

    assert state.session is not None
    assert state.session.cart_value == 40.0


# --- failed payments -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "failed"),
    [
        ([("payment_attempt", None)], 0),
        ([("payment_attempt", "card_declined")], 1),
        ([("payment_failed", None)], 1),
        ([("payment_failed", "insufficient_funds")], 1),
        ([("payment_attempt", "x"), ("payment_attempt", "y"), ("payment_failed", None)], 3),
        ([("payment_attempt", None), ("payment_attempt", None)], 0),
        ([("error", "timeout"), ("form_error", "invalid")], 0),
        ([("click", "boom")], 0),
    ],
)
def test_failed_payment_attempts(events: list[tuple[str, str | None]], failed: int) -> None:
    state = fold([click(type=t, error=err, ts_ms=T0_MS + i) for i, (t, err) in enumerate(events)])

    assert state.session is not None
    assert state.session.failed_payment_attempts == failed


# --- where the customer is now ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["page", "product_id", "step"])
@pytest.mark.parametrize(
    ("arrivals", "expected"),
    [
        # (ts_ms, value) in arrival order
        ([(100, "a"), (200, "b")], "b"),
        ([(200, "b"), (100, "a")], "b"),
        ([(100, "a"), (200, None)], "a"),
        ([(100, "a"), (100, "b")], "b"),
        ([(300, "c"), (100, "a"), (200, "b")], "c"),
        ([(100, None), (50, "a")], None),
    ],
)
def test_location_fields_follow_only_the_newest_event(
    name: str, arrivals: list[tuple[int, str | None]], expected: str | None
) -> None:
    state = fold([click(ts_ms=ts, **{name: value}) for ts, value in arrivals])

    assert state.session is not None
    assert getattr(state.session, name) == expected


# --- is_duplicate ----------------------------------------------------------------------------


def test_is_duplicate_without_state_is_false() -> None:
    assert not is_duplicate(None, click())


@pytest.mark.parametrize(
    ("folded_ids", "event_id", "duplicate"),
    [
        (["a"], "a", True),
        (["a"], "b", False),
        (["a", "b", "c"], "b", True),
        (["a"], "A", False),
    ],
)
def test_is_duplicate(folded_ids: list[str], event_id: str, duplicate: bool) -> None:
    state = fold([click(event_id=i) for i in folded_ids])

    assert is_duplicate(state, click(event_id=event_id)) is duplicate


def test_is_duplicate_forgets_ids_beyond_the_bound() -> None:
    limits = StateLimits(seen_event_ids_max=2)
    state = fold([click(event_id=i) for i in ("a", "b", "c")], Rules(limits=limits))

    assert [is_duplicate(state, click(event_id=i)) for i in ("a", "b", "c")] == [
        False,
        True,
        True,
    ]


def test_is_duplicate_matches_ids_across_sessions() -> None:
    state = fold([click(event_id="a", session_id="s1"), click(session_id="s2", ts_ms=T0_MS + 1)])

    assert is_duplicate(state, click(event_id="a", session_id="s2"))


@pytest.mark.parametrize("seed", range(20))
def test_is_duplicate_finds_a_digest_only_where_one_is_stored(seed: int) -> None:
    # Digests made of the same few bytes, so one's bytes often show up across two others'.
    rng = random.Random(seed)
    stored = [int.from_bytes(bytes(rng.choice((0, 1, 255)) for _ in range(8))) for _ in range(32)]
    state = replace(fold([click()]), seen_event_digests=array("Q", stored))
    candidates = {*stored, *(int.from_bytes(state.seen_event_digests.tobytes()[i : i + 8], "little")
                             for i in range(1, 8 * 31))}  # fmt: skip

    for digest in candidates:
        assert is_duplicate(state, click(), digest) is (digest in stored), digest


# --- close_session ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "session_id", "closed"),
    [
        ("session_end", "s1", True),
        ("session_end", "s0", False),
        ("page_view", "s1", False),
        ("purchase", "s1", False),
    ],
)
def test_close_session(event_type: str, session_id: str, closed: bool) -> None:
    state = fold([click(session_id="s1")])
    event = click(type=event_type, session_id=session_id)

    close_session(state, event, StateLimits())

    assert (state.session is None) is closed


def test_close_session_without_a_session_is_a_no_op() -> None:
    state = new_state(click())

    close_session(state, click(type="session_end"), StateLimits())

    assert state.session is None


def test_after_session_end_the_next_session_is_a_new_visit() -> None:
    state = fold([click(session_id="s1", ts_ms=100)])
    close_session(state, click(type="session_end", session_id="s1", ts_ms=200), StateLimits())

    state = advance(state, click(session_id="s2", ts_ms=300), StateLimits())

    assert state.session is not None
    assert state.session.session_id == "s2"
    assert (state.profile.visits, state.segment) == (2, "returning")


def test_late_event_of_an_ended_session_does_not_count_a_new_visit() -> None:
    state = fold([click(session_id="s1", ts_ms=100), click(session_id="s1", ts_ms=300)])
    close_session(state, click(type="session_end", session_id="s1", ts_ms=400), StateLimits())

    state = advance(state, click(session_id="s1", ts_ms=200), StateLimits())

    assert (state.profile.visits, state.segment) == (1, "new")


def test_switching_back_to_an_earlier_session_does_not_count_a_new_visit() -> None:
    state = fold(
        [
            click(session_id="phone", ts_ms=T0_MS),
            click(session_id="laptop", ts_ms=T0_MS + 10),
            click(session_id="phone", ts_ms=T0_MS + 20),
        ]
    )

    assert state.profile.visits == 2


# --- record_signal ---------------------------------------------------------------------------


def test_record_signal_keeps_score_signal_and_marks_the_reason() -> None:
    state = fold([click()])
    event = click(ts_ms=T0_MS + 5)

    record_signal(state, state.sessions[0], "rage_click", 0.7, event.ts_ms, event.event_id,
                  StateLimits())  # fmt: skip

    assert state.scores == {"rage_click": 0.7}
    assert [(r.name, r.score, r.ts_ms, r.event_id) for r in state.signals] == [
        ("rage_click", 0.7, T0_MS + 5, event.event_id)
    ]
    assert state.session is not None
    assert state.session.fired_reasons == ("rage_click",)


def test_record_signal_keeps_signals_newest_first_and_bounded() -> None:
    limits = StateLimits(signals_max=3)
    state = fold([click()])

    for i in range(5):
        record_signal(state, state.sessions[0], f"r{i}", i / 10, T0_MS, "e", limits)

    assert [r.name for r in state.signals] == ["r4", "r3", "r2"]
    # Scores are derived from the remembered signals: evicted names go with them.
    assert state.scores == {"r4": 0.4, "r3": 0.3, "r2": 0.2}


def test_record_signal_marks_each_reason_once_and_keeps_the_latest_score() -> None:
    state = fold([click()])

    for score in (0.7, 0.9):
        record_signal(state, state.sessions[0], "rage_click", score, T0_MS, "e", StateLimits())
    record_signal(state, state.sessions[0], "step_loop", 0.6, T0_MS, "e", StateLimits())

    assert state.session is not None
    assert state.session.fired_reasons == ("rage_click", "step_loop")
    assert state.scores == {"rage_click": 0.9, "step_loop": 0.6}
    assert [r.name for r in state.signals] == ["step_loop", "rage_click", "rage_click"]


def test_a_visit_that_ends_folds_its_pace_into_the_profile() -> None:
    state = None
    for i, every_ms in enumerate((10_000, 30_000)):
        for n in range(5):
            event = click(type="page_view", session_id=f"v{i}",
                          ts_ms=T0_MS + i * 86_400_000 + n * every_ms)  # fmt: skip
            state = fold_event(state, event, StateLimits(), TimeRules(), SignalThresholds(),
                               event.ts_ms).state  # fmt: skip
        assert state is not None
        end_session(state, f"v{i}", StateLimits())

    assert state is not None
    assert state.profile.last_pace_ratio == pytest.approx(3.0)
    assert state.profile.pace_mean_ms == pytest.approx(0.3 * 30_000 + 0.7 * 10_000)


def test_a_visit_of_two_events_has_no_pace() -> None:
    state = None
    for n in range(2):
        event = click(type="page_view", ts_ms=T0_MS + n * 10_000)
        state = fold_event(state, event, StateLimits(), TimeRules(), SignalThresholds(),
                           event.ts_ms).state  # fmt: skip
    assert state is not None
    end_session(state, state.sessions[0].session_id, StateLimits())

    assert (state.profile.pace_mean_ms, state.profile.last_pace_ratio) == (0.0, 0.0)


# --- segments and order value ----------------------------------------------------------------

DAY_MS = 86_400_000


def test_a_customer_moves_through_the_segments_as_they_visit_and_buy() -> None:
    def visit(session: str, day: int) -> ClickEvent:
        return click(session_id=session, ts_ms=T0_MS + day * DAY_MS)

    def buy(session: str, day: int, value: float) -> ClickEvent:
        return click(
            session_id=session, type="purchase", value=value, ts_ms=T0_MS + day * DAY_MS + 1
        )

    journey = [
        (visit("v1", 0), "new"),
        (visit("v2", 1), "returning"),
        (buy("v2", 1, 30.0), "first_buyer"),
        (visit("v3", 3), "first_buyer"),
        (buy("v3", 3, 50.0), "loyal"),
        (visit("v4", 25), "lapsed"),
        (buy("v4", 25, 10.0), "loyal"),
    ]
    state = None
    segments = []
    for event, _expected in journey:
        state = process_event(state, event, Rules(), 0, event.ts_ms).state
        assert state is not None
        segments.append(state.segment)

    assert segments == [expected for _event, expected in journey]
    assert state is not None and (state.profile.purchases, state.profile.revenue) == (3, 90.0)


def fast_in_event_time(times: list[int], gap_ms: int) -> int:
    """Events that follow a short gap after another short one, in time order."""
    ordered = sorted(times)
    return sum(
        1
        for i in range(2, len(ordered))
        if ordered[i] - ordered[i - 1] < gap_ms and ordered[i - 1] - ordered[i - 2] < gap_ms
    )


@given(st.lists(st.integers(0, 3_000), min_size=1, max_size=StateLimits().recent_events_max),
       st.randoms(use_true_random=False))  # fmt: skip
def test_fast_gaps_are_counted_in_event_time_whatever_the_arrival_order(
    offsets: list[int], rng: random.Random
) -> None:
    rng.shuffle(offsets)
    events = [click(ts_ms=T0_MS + offset) for offset in offsets]
    session = fold(events).session
    assert session is not None
    expected = fast_in_event_time(offsets, SignalThresholds().bot_gap_ms)
    assert session.fast_gaps == expected


def test_a_late_event_turns_the_two_after_it_fast() -> None:
    window = [RecentEvent(T0_MS, "click"), RecentEvent(T0_MS + 100, "click"),
              RecentEvent(T0_MS + 200, "click")]  # fmt: skip
    # 0 → 100 → 200 are 100 ms apart: 200 is fast. 150 arriving late makes 150 and 200 fast
    # and keeps 200 so: one more.
    assert fast_gaps_added(window, 2, T0_MS + 150, 150) == 1
    # 50 makes 100 fast (0 → 50 → 100) and keeps 200; 50 itself has one gap before it.
    assert fast_gaps_added(window, 1, T0_MS + 50, 150) == 1


def test_a_crawler_on_a_jittery_network_is_still_known_as_one() -> None:
    # 40 requests 90 ms apart, each held up on the network for 0 to 400 ms: they arrive
    # in another order. Counted in arrival order, half the short gaps looked long.
    rng = random.Random(7)
    sent = [click(ts_ms=T0_MS + 90 * i, page=f"/p/{i}") for i in range(40)]
    arrival = sorted(sent, key=lambda e: e.ts_ms + rng.uniform(0, 400))
    assert [e.ts_ms for e in arrival] != sorted(e.ts_ms for e in arrival)
    session = fold(arrival).session
    assert session is not None and session.bot


def test_an_automated_visit_is_counted_once_and_the_next_one_is_judged_sooner() -> None:
    crawler = [click(ts_ms=T0_MS + 60 * i, page=f"/p/{i}") for i in range(30)]
    # A day later, a new visit: five events 60 ms apart.
    again = [replace(e, event_id=f"{e.event_id}-2", session_id="s2", ts_ms=e.ts_ms + 86_400_000)
             for e in crawler[:5]]  # fmt: skip

    first = fold(crawler)
    assert first.session is not None and first.session.bot
    assert first.profile.bot_visits == 1  # once, not at each event after the 20th
    alone = fold(crawler[:5]).session
    assert alone is not None and not alone.bot  # a first visit: 5 events tell nothing

    second = fold(crawler + again)
    assert second.session is not None and second.session.session_id == "s2"
    assert second.session.bot
    assert second.profile.bot_visits == 2


def test_a_persons_next_visit_after_an_automated_one_is_not_automated() -> None:
    crawler = [click(ts_ms=T0_MS + 60 * i, page=f"/p/{i}") for i in range(30)]
    person = [click(session_id="s2", ts_ms=T0_MS + 86_400_000 + 2_000 * i, page=f"/p/{i}")
              for i in range(10)]  # fmt: skip

    folded = fold(crawler + person)

    assert folded.session is not None and not folded.session.bot
    assert folded.profile.bot_visits == 1


@pytest.mark.parametrize(
    ("events", "items", "has_cart"),
    [
        pytest.param([click(type="add_to_cart", product_id="p1", ts_ms=T0_MS)], 1, True,
                     id="added-without-a-price"),
        pytest.param([click(type="add_to_cart", product_id="p1", ts_ms=T0_MS),
                      click(type="add_to_cart", product_id="p2", ts_ms=T0_MS + 1),
                      click(type="remove_from_cart", product_id="p1", ts_ms=T0_MS + 2)], 1, True,
                     id="two-added-one-removed"),
        pytest.param([click(type="remove_from_cart", product_id="p1", ts_ms=T0_MS)], 0, False,
                     id="removed-what-another-visit-added"),
        pytest.param([click(type="add_to_cart", product_id="p1", ts_ms=T0_MS),
                      click(type="purchase", ts_ms=T0_MS + 1)], 0, False, id="bought"),
        pytest.param([click(type="add_to_cart", product_id="p1", ts_ms=T0_MS),
                      click(type="checkout_step", step="cart", value=0.0, ts_ms=T0_MS + 1)],
                     0, False, id="an-order-total-of-nothing"),
        pytest.param([click(type="checkout_step", step="payment", value=30.0, ts_ms=T0_MS)],
                     0, True, id="an-order-total-and-no-cart-events"),
    ],
)  # fmt: skip
def test_a_cart_is_items_or_a_value(events: list[ClickEvent], items: int, has_cart: bool) -> None:
    session = fold(events).session

    assert session is not None
    assert (session.cart_items, session.has_cart) == (items, has_cart)
