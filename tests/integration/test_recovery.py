"""Table state survives a worker restart: recovery from the changelog is exact."""

from __future__ import annotations

import time

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from app.runtime.compat import fetch_true_highwaters
from tests.integration.clients import event, get, post, produce, unique, wait_for_customer

pytestmark = pytest.mark.integration


async def test_restarted_worker_recovers_every_table_update(private_stack, worker_factory):
    customers = [unique("recover") for _ in range(200)]
    first = worker_factory(private_stack)
    start = int(time.time() * 1000)
    # Bursts put many changelog records in each produce batch: the case Tansu's
    # ListOffsets gets wrong, so without the shim the newest updates would be lost.
    for round_ in range(5):
        batch = [event(c, "page_view", page=f"/p{round_}", ts=start + round_) for c in customers]
        assert (await post(f"{first.web_url}/v1/events", {"events": batch}))[0] == 202
    for customer in customers:
        await wait_for_customer(first.web_url, customer, lambda s: s["profile"]["events"] == 5)
    first.stop()

    second = worker_factory(private_stack)
    for customer in customers:
        state = await wait_for_customer(second.web_url, customer, timeout_s=2)
        assert state["profile"]["events"] == 5, customer
        assert state["session"]["page"] == "/p4"
    # The event-id memory was recovered too: a late sender retry changes nothing.
    retry = event(customers[0], "page_view", page="/retry", ts=start)
    retry["event_id"] = "once-" + customers[0]
    for _ in range(2):
        await post(f"{second.web_url}/v1/events", retry)
    state = await wait_for_customer(
        second.web_url, customers[0], lambda s: s["profile"]["events"] == 6
    )
    assert state["profile"]["events"] == 6


async def test_tansu_list_offsets_needs_the_fetch_high_watermark(private_stack):
    """Tansu 0.6 reports the last batch's base offset + 1 as the end offset.

    If this test starts failing, Tansu fixed ListOffsets and the shim in
    app/runtime/compat can go.
    """
    topic = unique("multi-record-batch")
    from app.runtime.topics import TopicSpec, declare_topics

    await declare_topics(private_stack.broker_url, [TopicSpec(topic, 1)], 1)
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=private_stack.bootstrap, linger_ms=50)
    await producer.start()
    try:
        futures = [await producer.send(topic, orjson.dumps(i), partition=0) for i in range(10)]
        for future in futures:
            await future
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(bootstrap_servers=private_stack.bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        reported = (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()
    true = await fetch_true_highwaters([private_stack.bootstrap], [tp])
    assert true[tp] == 10
    assert reported < 10, "Tansu now answers ListOffsets correctly: drop the shim"


async def test_events_written_straight_to_kafka_are_counted_as_kafka(private_stack, worker_factory):
    worker = worker_factory(private_stack)
    customer = unique("direct")
    await produce(private_stack.bootstrap, "clicks",
                  [(customer.encode(), orjson.dumps(event(customer, "page_view")))])  # fmt: skip
    await wait_for_customer(worker.web_url, customer)

    _, body, _ = await get(f"{worker.web_url}/metrics")
    assert 'nudgeflow_events_received_total{source="kafka"} 1.0' in body.decode()
    assert 'nudgeflow_events_received_total{source="http"} 0.0' in body.decode()
