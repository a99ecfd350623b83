"""A client other than the worker's (librdkafka, by confluent-kafka) on the shared stack:
it produces events a worker processes, and reads the interventions in a consumer group."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, Producer

from app.runtime.topics import CLICKS, INTERVENTIONS
from tests.integration.clients import rage_clicks, unique, wait_for_customer

pytestmark = pytest.mark.integration


def _produce(bootstrap: str, customer: str, events: list[dict[str, Any]]) -> None:
    # Kafka's default partitioner, not librdkafka's (the README's contract).
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    failed: list[object] = []

    def delivered(error: object, _message: object) -> None:
        if error is not None:
            failed.append(error)

    for event in events:
        producer.produce(CLICKS, orjson.dumps(event), key=customer.encode(), on_delivery=delivered)
    assert producer.flush(30) == 0 and not failed, failed


def _read_intervention(bootstrap: str, customer: str, timeout_s: float) -> dict[str, Any]:
    # Tansu answers a JoinGroup after half the session timeout (librdkafka's default: 45 s).
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("librdkafka"),
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "session.timeout.ms": 4000, "heartbeat.interval.ms": 500})  # fmt: skip
    consumer.subscribe([INTERVENTIONS])
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            intervention = orjson.loads(message.value())
            if intervention["customer_id"] == customer:
                consumer.commit(message, asynchronous=False)
                return dict(intervention)
        raise AssertionError(f"no intervention for {customer} in {timeout_s} s")
    finally:
        consumer.close()


async def test_librdkafka_produces_clicks_and_reads_interventions_in_a_group(services, worker):
    customer = unique("librdkafka")
    await asyncio.to_thread(_produce, services.bootstrap, customer, rage_clicks(customer))
    await wait_for_customer(worker.web_url, customer, lambda s: s["profile"]["events"] == 3)
    intervention = await asyncio.to_thread(_read_intervention, services.bootstrap, customer, 30)
    assert intervention["reason"] == "rage_click"
