"""Event time on the real broker: refused timestamps, late events, tabs, silences, expiry."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import orjson
import pytest

from app.runtime.topics import CLICKS
from tests.integration.clients import (
    customers_per_partition,
    event,
    get,
    metric_families,
    post,
    produce,
    rage_clicks,
    read_topic,
    unique,
    wait_for_customer,
)

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000


def _for(customer: str, reason: str | None = None):
    return lambda v: v.get("customer_id") == customer and reason in (None, v.get("reason"))


async def test_an_event_a_day_in_the_future_is_refused_naming_ts(worker, services):
    customer = unique("future")
    future = event(customer, ts=int(time.time() * 1000) + DAY_MS)

    status, body = await post(f"{worker.web_url}/v1/events", {"events": [future]})

    assert status == 400
    (error,) = body["errors"]
    assert error["error"].startswith("ts: ") and "ahead of the receiver's clock" in error["error"]
    [kept] = await read_topic(
        services.bootstrap, "clicks-failed", lambda v: v.get("payload", {}) == future
    )
    assert kept["reason"] == "ts_in_future"


async def test_an_event_a_day_in_the_future_on_kafka_goes_to_clicks_failed(worker, services):
    customer = unique("future-kafka")
    future = event(customer, ts=int(time.time() * 1000) + DAY_MS)

    await produce(services.bootstrap, CLICKS, [(customer.encode(), orjson.dumps(future))])

    [kept] = await read_topic(
        services.bootstrap, "clicks-failed",
        lambda v: future["event_id"] in v.get("payload_text", ""),
    )  # fmt: skip
    assert kept["reason"] == "ts_in_future" and kept["error"].startswith("ts: ")


async def test_a_timestamp_in_seconds_is_refused_saying_ts_must_be_milliseconds(worker):
    seconds = event(unique("seconds"), ts=int(time.time()))

    status, body = await post(f"{worker.web_url}/v1/events", seconds)

    assert status == 400
    assert "ts must be milliseconds" in body["errors"][0]["error"]


async def test_two_sessions_taking_turns_get_one_rage_click_each(worker, services):
    customer = unique("tabs")
    start = int(time.time() * 1000)
    tab_a = [event(customer, element="#buy", session_id="a", ts=start + i * 200) for i in range(3)]
    tab_b = [event(customer, element="#buy", session_id="b", ts=start + 100 + i * 200)
             for i in range(3)]  # fmt: skip
    again_a = [event(customer, element="#buy", session_id="a", ts=start + 5_000 + i * 200)
               for i in range(3)]  # fmt: skip
    turns = [e for pair in zip(tab_a, tab_b, strict=True) for e in pair]
    for batch in (turns, again_a):  # back to tab a: it must remember it already fired
        assert (await post(f"{worker.web_url}/v1/events", {"events": batch}))[0] == 202

    found = await read_topic(services.bootstrap, "interventions", _for(customer), want=2,
                             settle_s=1.5)  # fmt: skip
    assert sorted((i["session_id"], i["reason"]) for i in found) == [
        ("a", "rage_click"),
        ("b", "rage_click"),
    ]


async def test_a_burst_two_hours_late_nudges_nobody(worker, services):
    customer = unique("late")
    now = int(time.time() * 1000)
    before = await metric_families(worker.web_url)
    await post(f"{worker.web_url}/v1/events", event(customer, "page_view", ts=now))
    await wait_for_customer(worker.web_url, customer)

    late = rage_clicks(customer)
    for click in late:
        click["ts"] -= 2 * 3_600_000
    assert (await post(f"{worker.web_url}/v1/events", {"events": late}))[0] == 202

    await wait_for_customer(worker.web_url, customer, lambda s: s["profile"]["events"] == 4)
    found = await read_topic(services.bootstrap, "interventions", _for(customer), timeout_s=2)
    assert found == []
    after = await metric_families(worker.web_url)
    assert _value(after, "nudgeflow_events_late") - _value(before, "nudgeflow_events_late") >= 3


async def test_a_new_customers_burst_two_hours_late_nudges_nobody(worker, services):
    now = int(time.time() * 1000)
    # Live traffic on every partition: they follow the wall clock.
    others = [event(unique("live"), "page_view", ts=now) for _ in range(64)]
    assert (await post(f"{worker.web_url}/v1/events", {"events": others}))[0] == 202
    customer = unique("late-new")
    # One event is enough to fire: a declined payment, from two hours ago.
    declined = event(customer, "payment_failed", error="card_declined", ts=now - 7_200_000)

    assert (await post(f"{worker.web_url}/v1/events", declined))[0] == 202

    state = await wait_for_customer(worker.web_url, customer)
    found = await read_topic(services.bootstrap, "interventions", _for(customer), timeout_s=2)
    assert found == []
    assert state["profile"]["late_events"] == 1


async def test_a_customer_quiet_at_payment_hears_from_us_with_no_further_event(
    private_stack, worker_factory
):
    worker = worker_factory(private_stack, checkout_stall_ms=3000, timer_tick_s=0.2)
    customer = unique("quiet")
    now = int(time.time() * 1000)
    await _reach_payment(worker.web_url, customer, now)
    started = time.monotonic()

    [stall] = await read_topic(private_stack.bootstrap, "interventions", _for(customer),
                               timeout_s=30)  # fmt: skip

    waited = time.monotonic() - started
    assert (stall["reason"], stall["kind"]) == ("checkout_stall", "assist")
    assert stall["fired_ts"] == now + 100 + 3000
    # Due after the stall (3 s) and the allowed lateness (5 s), then the next tick.
    assert 7.0 <= waited <= 15.0, waited


async def test_a_customer_who_goes_on_at_payment_then_goes_quiet_hears_from_us(
    private_stack, worker_factory
):
    # Each event at payment moves the stall on; the timer set by the first comes up
    # first, finds nothing due yet, and must be armed again for the moved time.
    worker = worker_factory(private_stack, checkout_stall_ms=3000, timer_tick_s=0.2)
    customer = unique("goes-on")
    now = int(time.time() * 1000)
    await _reach_payment(worker.web_url, customer, now)
    await post(f"{worker.web_url}/v1/events", {"events": [
        event(customer, "form_focus", field="card_number", ts=now + 1_500),
    ]})  # fmt: skip

    [stall] = await read_topic(private_stack.bootstrap, "interventions", _for(customer),
                               timeout_s=30)  # fmt: skip

    assert stall["reason"] == "checkout_stall"
    assert stall["fired_ts"] == now + 1_500 + 3_000


async def test_the_wall_clock_never_fires_a_silence_the_data_cancelled(
    private_stack, worker_factory
):
    worker = worker_factory(private_stack, checkout_stall_ms=3000, timer_tick_s=0.2)
    customer = unique("cancelled")
    now = int(time.time() * 1000)
    await _reach_payment(worker.web_url, customer, now)
    await wait_for_customer(worker.web_url, customer)

    # The worker is frozen (a GC pause, a slow host); meanwhile the customer goes on
    # typing. When it wakes, its wall clock is past the stall, the event still on the broker.
    os.kill(worker.process.pid, signal.SIGSTOP)
    try:
        typing = event(customer, "form_focus", field="card_number", ts=now + 1_500)
        await produce(private_stack.bootstrap, CLICKS, [(customer.encode(), orjson.dumps(typing))])
        await asyncio.sleep(9)
    finally:
        os.kill(worker.process.pid, signal.SIGCONT)

    await wait_for_customer(worker.web_url, customer, lambda s: s["profile"]["events"] == 3)
    found = await read_topic(private_stack.bootstrap, "interventions", _for(customer),
                             timeout_s=2.5)  # fmt: skip
    assert found == []  # its new silence (from 1.5 s) is due at 4.5 s + 5 s: not yet


async def test_idle_customers_expire_with_a_tombstone(private_stack, worker_factory):
    ttl_days = 10 / 86_400  # 10 s of event time
    worker = worker_factory(private_stack, customer_ttl_days=ttl_days, expiry_sweep_interval_s=0.5)
    old, now = unique("idle"), int(time.time() * 1000)
    await post(f"{worker.web_url}/v1/events", event(old, "page_view", ts=now - 60_000))
    await wait_for_customer(worker.web_url, old)

    # Traffic on every partition moves every watermark past the idle customer's TTL.
    busy = [c for ids in customers_per_partition(8, "busy").values() for c in ids]
    others = [event(customer, "page_view", ts=now) for customer in busy]
    assert (await post(f"{worker.web_url}/v1/events", {"events": others}))[0] == 202

    deadline = time.monotonic() + 15
    while (answer := await get(f"{worker.web_url}/v1/customers/{old}"))[0] != 404:
        assert time.monotonic() < deadline, f"the idle customer was not deleted: {answer[:2]}"
        await asyncio.sleep(0.2)
    changelog = "nudgeflow-customer_to_state-changelog"
    tombstones = await _tombstones(private_stack.bootstrap, changelog, old)
    assert tombstones == 1
    metrics = await metric_families(worker.web_url)
    assert _value(metrics, "nudgeflow_customers_expired") >= 1
    assert _value(metrics, "nudgeflow_active_customers") == 64


async def _reach_payment(web_url: str, customer: str, now: int) -> None:
    """A cart, then the payment step 100 ms later."""
    await post(f"{web_url}/v1/events", {"events": [
        event(customer, "add_to_cart", product_id="p1", value=40.0, ts=now),
        event(customer, "checkout_step", step="payment", value=40.0, ts=now + 100),
    ]})  # fmt: skip


async def _tombstones(bootstrap: str, topic: str, key: str) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                fetch_max_wait_ms=50)  # fmt: skip
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        count, idle = 0, 0
        while idle < 5:
            batches = await consumer.getmany(timeout_ms=200)
            records = [r for rs in batches.values() for r in rs]
            idle = 0 if records else idle + 1
            count += sum(1 for r in records if r.key == key.encode() and r.value is None)
        return count
    finally:
        await consumer.stop()


def _value(families, name: str) -> float:
    family = families.get(name)
    return sum(s.value for s in family.samples if not s.name.endswith("_created")) if family else 0


async def test_a_silence_pending_at_a_restart_is_heard_from_the_next_worker(
    private_stack, worker_factory
):
    settings = {"checkout_stall_ms": 4000, "timer_tick_s": 0.2}
    first = worker_factory(private_stack, **settings)
    customer = unique("restart")
    now = int(time.time() * 1000)
    await _reach_payment(first.web_url, customer, now)
    await wait_for_customer(first.web_url, customer)
    await asyncio.sleep(1)  # one commit interval: the state is on the changelog
    first.stop()

    # Nobody clicks any more: the next worker must rebuild its timers from the table alone.
    worker_factory(private_stack, **settings)
    [stall] = await read_topic(private_stack.bootstrap, "interventions", _for(customer),
                               timeout_s=30)  # fmt: skip

    assert stall["reason"] == "checkout_stall"
    assert stall["fired_ts"] == now + 100 + 4000
