"""The worker's timer loop (``EventTime``) re-arms a customer whose timer came up early."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry

from app.deliver.delivery import Outbox
from app.detect.pipeline import Rules, process_event
from app.ingest.events import ClickEvent
from app.runtime.event_time import EventTime
from app.runtime.metrics import Metrics
from tables.changelogged import StoreMaps
from tables.customer_to_state import CustomerStore
from tests.factories import T0_MS, click

PARTITION = 0
STALL_MS = Rules().thresholds.checkout_stall_ms


def worker_event_time() -> EventTime:
    """``EventTime`` over the in-memory store a Faust table keeps (no broker is involved:
    the changelog is not what this test is about)."""
    table: Any = SimpleNamespace(name="customer_to_state")
    customers = CustomerStore(table, StoreMaps({}, {}), decoded_max=1_000)
    event_time = EventTime(customers, Rules(), None, Metrics.create(CollectorRegistry()),
                           300_000, lambda: {PARTITION})  # fmt: skip
    event_time.stale = False
    return event_time


def process(event_time: EventTime, event: ClickEvent, sent: Outbox) -> None:
    watermark = event.ts_ms  # no lateness: the event's own time
    event_time.clock(PARTITION)
    event_time.fire_due(PARTITION, watermark, watermark, sent)
    state = event_time.customers.get(event.customer_id)
    outcome = process_event(state, event, Rules(), watermark, watermark)
    event_time.apply(event.customer_id, PARTITION, outcome, state, sent)


def test_a_timer_that_comes_up_before_its_moved_due_time_is_armed_again() -> None:
    event_time, sent = worker_event_time(), Outbox()
    # At payment with a cart: a stall is due STALL_MS after the step ...
    process(event_time, click(type="add_to_cart", value=30.0, product_id="p", ts_ms=T0_MS), sent)
    process(event_time, click(type="checkout_step", step="payment", value=30.0, ts_ms=T0_MS), sent)
    # ... and a later event moves it on; the earlier entry stays in the index.
    process(event_time, click(type="page_view", page="/checkout/payment", ts_ms=T0_MS + 30_000),
            sent)  # fmt: skip
    event_time.fire_due(PARTITION, T0_MS + STALL_MS + 1, T0_MS + STALL_MS + 1, sent)
    assert sent.interventions == [], "nothing is due yet: the customer was active 30 s ago"
    assert event_time.pending() == 1, "the customer is looked at again, not forgotten"

    at = T0_MS + 30_000 + STALL_MS
    event_time.fire_due(PARTITION, at, at, sent)
    assert [i["reason"] for i in sent.interventions] == ["checkout_stall"]


def test_a_sweep_that_ends_one_session_keeps_the_timer_of_the_other() -> None:
    event_time, sent = worker_event_time(), Outbox()
    rules = Rules()
    timeout_ms, lateness_ms = rules.time.session_timeout_ms, rules.time.allowed_lateness_ms
    # A visit that goes quiet, and another that reaches payment just before the first times
    # out: its stall is due after the first visit's end.
    process(event_time, click(session_id="first", type="page_view", page="/", ts_ms=T0_MS), sent)
    paid_ms = T0_MS + timeout_ms - STALL_MS // 2
    for event in (
        click(session_id="second", type="add_to_cart", value=30.0, product_id="p", ts_ms=paid_ms),
        click(session_id="second", type="checkout_step", step="payment", value=30.0,
              ts_ms=paid_ms),
    ):  # fmt: skip
        process(event_time, event, sent)
    # Other customers' events move the watermark past the first visit's timeout (not yet
    # past the stall), and the sweep comes by before any timer looks.
    event_time.clock(PARTITION).observe(T0_MS + timeout_ms + 1 + lateness_ms, 0)
    event_time.sweep(100)
    state = event_time.customers.get("c1")
    assert state is not None and [s.session_id for s in state.sessions] == ["second"]

    at = paid_ms + STALL_MS
    event_time.fire_due(PARTITION, at, at, sent)
    assert [i["reason"] for i in sent.interventions] == ["checkout_stall"]
