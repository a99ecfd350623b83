"""Partition clocks, timer indexes and silence rules, driven the way the agent drives them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.detect.pipeline import Rules, fire_timers, next_due_ms, process_event
from app.detect.timers import PartitionClock, TimerIndex
from app.ingest.events import ClickEvent
from tables.customer_state import CustomerState
from tests.factories import T0_MS, click

LATENESS_MS = 5_000


class Partition:
    """One partition as the agent runs it: a clock, timers, the table, in offset order."""

    def __init__(self) -> None:
        self.clock = PartitionClock()
        self.timers = TimerIndex()
        self.table: dict[str, CustomerState] = {}
        self.sent: list[dict[str, Any]] = []

    def fire(self, watermark_ms: int) -> None:
        for _ in range(4):
            keys = self.timers.pop_due(watermark_ms)
            if not keys:
                return
            for key in keys:
                outcome = fire_timers(self.table[key], watermark_ms, Rules(), watermark_ms)
                self._keep(key, outcome.state, outcome.interventions)

    def process(self, event: ClickEvent, wall_ms: int = 0) -> None:
        self.clock.observe(event.ts_ms, wall_ms)
        watermark = self.clock.watermark_ms(LATENESS_MS)
        self.fire(watermark)
        outcome = process_event(self.table.get(event.customer_id), event, Rules(), watermark, 0)
        self._keep(event.customer_id, outcome.state, outcome.interventions)

    def _keep(self, key: str, state: CustomerState | None, sent: list[dict[str, Any]]) -> None:
        if state is None:
            self.table.pop(key, None)
        else:
            self.table[key] = state
            self.timers.schedule(key, next_due_ms(state, Rules()))
        self.sent.extend(sent)


def at_payment(customer: str, ts_ms: int) -> list[ClickEvent]:
    return [
        click(customer_id=customer, type="add_to_cart", value=30.0, product_id="p", ts_ms=ts_ms),
        click(customer_id=customer, type="checkout_step", step="payment", value=30.0,
              event_id=f"{customer}-pay", ts_ms=ts_ms + 1_000),
    ]  # fmt: skip


def other_traffic(start_ms: int, end_ms: int, every_ms: int = 5_000) -> list[ClickEvent]:
    return [
        click(customer_id="other", type="page_view", ts_ms=ts)
        for ts in range(start_ms, end_ms, every_ms)
    ]


def replay(events: list[ClickEvent]) -> list[tuple[str, str, str]]:
    partition = Partition()
    for event in events:
        partition.process(event)
    return [(i["customer_id"], i["reason"], i["intervention_id"]) for i in partition.sent]


def test_a_customer_silent_at_payment_stalls_when_the_watermark_passes() -> None:
    events = at_payment("quiet", T0_MS) + other_traffic(T0_MS, T0_MS + 120_000)

    sent = replay(events)

    assert [(c, r) for c, r, _ in sent] == [("quiet", "checkout_stall")]


def test_the_stall_names_the_last_event_and_when_it_held() -> None:
    partition = Partition()
    for event in at_payment("quiet", T0_MS) + other_traffic(T0_MS, T0_MS + 120_000):
        partition.process(event)

    (stall,) = partition.sent
    assert stall["event_id"] == "quiet-pay"
    assert stall["event_ts"] == T0_MS + 1_000
    assert stall["fired_ts"] == T0_MS + 61_000


def test_an_event_before_the_silence_is_up_cancels_it() -> None:
    events = at_payment("busy", T0_MS)
    events.append(click(customer_id="busy", type="form_focus", field="card", ts_ms=T0_MS + 50_000))
    events += other_traffic(T0_MS, T0_MS + 100_000)
    events.sort(key=lambda e: e.ts_ms)

    assert replay(events) == []  # 50 s + 60 s is past the traffic


def test_a_purchase_cancels_the_stall() -> None:
    purchase = click(customer_id="buyer", type="purchase", value=30.0, ts_ms=T0_MS + 20_000)
    events = [*at_payment("buyer", T0_MS), purchase]
    events += other_traffic(T0_MS + 21_000, T0_MS + 200_000)

    assert replay(events) == []


def test_same_events_same_interventions_whatever_the_interleaving_within_lateness() -> None:
    events = at_payment("a", T0_MS) + at_payment("b", T0_MS + 30_000)
    events += other_traffic(T0_MS, T0_MS + 200_000)
    in_order = sorted(events, key=lambda e: e.ts_ms)
    # Swap neighbours less than the lateness apart: arrival order differs, event time not.
    jittered = list(in_order)
    for i in range(0, len(jittered) - 1, 2):
        if jittered[i + 1].ts_ms - jittered[i].ts_ms < LATENESS_MS:
            jittered[i], jittered[i + 1] = jittered[i + 1], jittered[i]

    assert replay(jittered) == replay(in_order)
    assert sorted(c for c, _, _ in replay(in_order)) == ["a", "b"]


def test_an_idle_cart_becomes_a_reminder() -> None:
    events = [click(customer_id="c", type="add_to_cart", value=9.0, product_id="p", ts_ms=T0_MS)]
    events += other_traffic(T0_MS, T0_MS + 700_000, every_ms=30_000)

    assert [(c, r) for c, r, _ in replay(events)] == [("c", "cart_abandonment_risk")]


def test_the_partition_expires_customers_after_the_ttl() -> None:
    partition = Partition()
    partition.process(click(customer_id="gone", type="add_to_cart", value=1.0, ts_ms=T0_MS))
    partition.process(click(customer_id="other", ts_ms=T0_MS + 31 * 86_400_000))

    assert "gone" not in partition.table


# --- the pure structures -------------------------------------------------------------------


def test_timer_index_returns_a_key_when_its_latest_schedule_is_due() -> None:
    timers = TimerIndex()
    timers.schedule("a", 50)
    timers.schedule("a", 80)  # moved on: its entry at 50 re-arms it for 80
    timers.schedule("b", 60)
    timers.schedule("c", None)

    assert timers.next_due_ms() == 60
    assert timers.pop_due(55) == []
    assert timers.pop_due(79) == ["b"]
    assert timers.pop_due(80) == ["a"]
    assert len(timers) == 0
    assert timers.next_due_ms() is None


def test_timer_index_drops_a_key_with_nothing_due_any_more() -> None:
    timers = TimerIndex()
    timers.schedule("a", 50)
    timers.schedule("a", None)  # the customer's sessions ended: no silence left to hear

    assert timers.pop_due(1_000) == []
    assert len(timers) == 0


_KEYS = st.sampled_from(["a", "b", "c", "d"])
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("schedule"), _KEYS, st.none() | st.integers(0, 100)),
        st.tuples(st.just("pop"), st.integers(0, 100)),
    ),
    max_size=60,
)


@given(_OPS)
def test_timer_index_pops_what_a_map_of_latest_due_times_would(ops: list[tuple[Any, ...]]) -> None:
    timers = TimerIndex()
    latest: dict[str, int] = {}
    for op in ops:
        if op[0] == "schedule":
            _, key, due_ms = op
            timers.schedule(key, due_ms)
            if due_ms is None:
                latest.pop(key, None)
            else:
                latest[key] = due_ms
        else:
            watermark_ms = op[1]
            expected = sorted((due, key) for key, due in latest.items() if due <= watermark_ms)
            assert timers.pop_due(watermark_ms) == [key for _, key in expected]
            for _, key in expected:
                del latest[key]
        assert len(timers) == len(latest)
        assert timers.next_due_ms() == min(latest.values(), default=None)


def test_timer_index_pops_keys_in_the_order_of_their_latest_due_times() -> None:
    timers = TimerIndex()
    timers.schedule("a", 10)
    timers.schedule("b", 40)
    timers.schedule("a", 50)  # its entry at 10 comes up first, but it is due after b

    assert timers.pop_due(100) == ["b", "a"]


def test_timer_index_moved_back_before_its_entry_is_due_then() -> None:
    timers = TimerIndex()
    timers.schedule("a", 50)
    timers.schedule("a", 90)
    timers.schedule("a", 50)  # back to its entry's time: the move is forgotten

    assert timers.pop_due(60) == ["a"]


def test_timer_index_returns_a_moved_key_due_by_the_same_watermark() -> None:
    timers = TimerIndex()
    timers.schedule("a", 50)
    timers.schedule("a", 70)

    assert timers.pop_due(100) == ["a"]  # once
    assert timers.pop_due(100) == []


def test_timer_index_skips_superseded_entries() -> None:
    timers = TimerIndex()
    timers.schedule("a", 80)
    timers.schedule("a", 20)

    assert timers.pop_due(100) == ["a"]
    assert timers.pop_due(100) == []


@pytest.mark.parametrize(
    ("arrival_lag_ms", "follows"), [(0, True), (300_000, True), (300_001, False), (-10, True)]
)
def test_a_partition_follows_the_wall_clock_only_when_its_events_arrive_on_time(
    arrival_lag_ms: int, follows: bool
) -> None:
    clock = PartitionClock()
    clock.observe(T0_MS, T0_MS + arrival_lag_ms)

    assert clock.follows_wall_clock(300_000) is follows
    advanced = clock.wall_watermark_ms(T0_MS + arrival_lag_ms + 60_000, LATENESS_MS, 300_000)
    assert (advanced > clock.watermark_ms(LATENESS_MS)) is follows


def test_a_replay_of_old_events_never_follows_the_wall_clock() -> None:
    clock = PartitionClock()
    clock.observe(T0_MS, T0_MS + 365 * 86_400_000)

    later = T0_MS + 366 * 86_400_000
    assert clock.wall_watermark_ms(later, LATENESS_MS, 300_000) == T0_MS - LATENESS_MS


def test_the_watermark_never_goes_back() -> None:
    clock = PartitionClock()
    clock.observe(T0_MS + 10_000, 0)
    clock.observe(T0_MS, 0)

    assert clock.watermark_ms(LATENESS_MS) == T0_MS + 5_000
