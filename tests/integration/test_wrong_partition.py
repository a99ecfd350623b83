"""Events on another ``clicks`` partition than their customer's are forwarded, not processed
there: a producer with librdkafka's default partitioner (CRC32) must not split a customer."""

from __future__ import annotations

import itertools
import zlib

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from agents.process_clicks import FORWARDED_HEADER
from app.ingest.partitioning import customer_partition
from app.runtime.topics import CLICKS
from tests.integration.clients import (
    metric_families,
    post,
    rage_clicks,
    read_topic,
    unique,
    wait_for_customer,
)

pytestmark = pytest.mark.integration

PARTITIONS = 8  # the test workers' NUDGEFLOW_TOPIC_PARTITIONS default


def _crc32_partition(key: str) -> int:
    """Where librdkafka's default ``consistent_random`` partitioner puts a key."""
    return zlib.crc32(key.encode()) % PARTITIONS


def _customer_split_by_crc32(prefix: str) -> str:
    return next(
        c for c in (unique(prefix) for _ in itertools.count())
        if _crc32_partition(c) != customer_partition(c, PARTITIONS)
    )  # fmt: skip


async def _produce_to(bootstrap: str, partition: int, key: str, value: bytes,
                      headers: list[tuple[str, bytes]] | None = None) -> None:  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(CLICKS, value, key=key.encode(), partition=partition,
                                     headers=headers)  # fmt: skip
    finally:
        await producer.stop()


def _for(customer: str):
    return lambda v: v.get("customer_id") == customer


async def _forwarded(web_url: str) -> float:
    families = await metric_families(web_url)
    return sum(s.value for s in families["nudgeflow_events_forwarded"].samples
               if s.name.endswith("_total"))  # fmt: skip


async def test_a_rage_click_split_between_the_collector_and_a_crc32_producer_fires_once(
    worker, services
):
    customer = _customer_split_by_crc32("split")
    first, second, third = rage_clicks(customer)
    forwarded_before = await _forwarded(worker.web_url)

    assert (await post(f"{worker.web_url}/v1/events", {"events": [first, second]}))[0] == 202
    await _produce_to(services.bootstrap, _crc32_partition(customer), customer,
                      orjson.dumps(third))  # fmt: skip

    [nudge] = await read_topic(services.bootstrap, "interventions", _for(customer))
    assert nudge["reason"] == "rage_click" and nudge["signals"]["clicks"] == 3
    state = await wait_for_customer(worker.web_url, customer,
                                    lambda s: s["profile"]["events"] == 3)  # fmt: skip
    assert state["profile"]["events"] == 3
    assert await _forwarded(worker.web_url) == forwarded_before + 1


async def test_an_event_forwarded_once_and_still_misplaced_goes_to_clicks_failed(worker, services):
    customer = _customer_split_by_crc32("bounced")
    [click] = rage_clicks(customer, n=1)
    wrong = _crc32_partition(customer)

    await _produce_to(services.bootstrap, wrong, customer, orjson.dumps(click),
                      headers=[(FORWARDED_HEADER, b"3")])  # fmt: skip

    [kept] = await read_topic(services.bootstrap, "clicks-failed",
                              lambda v: click["event_id"] in orjson.dumps(v).decode())  # fmt: skip
    assert kept["reason"] == "wrong_partition"
    assert "NUDGEFLOW_TOPIC_PARTITIONS" in kept["error"]
