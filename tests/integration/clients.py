"""Contract-speaking clients for integration tests: HTTP, Kafka and Redis."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from app.ingest.partitioning import customer_partition
from app.tools.simulator import SimulationConfig, simulate
from config.settings import Settings

_ids = itertools.count()
_DEFAULT_PARTITIONS: int = Settings.model_fields["topic_partitions"].default


def unique(prefix: str) -> str:
    """An id no other test uses (tests share topics, so they filter by customer)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def customers_per_partition(
    count: int, prefix: str, partitions: int = _DEFAULT_PARTITIONS
) -> dict[int, list[str]]:
    """``count`` new customer ids on each of ``partitions`` ``clicks`` partitions (by
    default as many as a test worker has: the setting's default)."""
    found: dict[int, list[str]] = {p: [] for p in range(partitions)}
    while any(len(ids) < count for ids in found.values()):
        customer = unique(prefix)
        ids = found[customer_partition(customer, partitions)]
        if len(ids) < count:
            ids.append(customer)
    return found


def event(customer_id: str, type_: str = "click", **fields: Any) -> dict[str, Any]:
    """A valid contract event; ``ts`` defaults to now."""
    return {
        "event_id": fields.pop("event_id", f"ev-{next(_ids)}-{uuid.uuid4().hex[:6]}"),
        "customer_id": customer_id,
        "session_id": fields.pop("session_id", "s1"),
        "type": type_,
        "ts": fields.pop("ts", int(time.time() * 1000)),
        **fields,
    }


def simulated_replay(config: SimulationConfig, close_after_ms: int) -> list[bytes]:
    """A simulation's events as ``clicks`` lines, then one event on every partition
    ``close_after_ms`` after the last: every watermark moves past the simulation's end, so
    its last silences and session timeouts fire too."""
    result = simulate(config)
    lines = [orjson.dumps(event) for event in result.events]
    end_ms = max(event["ts"] for event in result.events)
    lines += [
        orjson.dumps({"event_id": f"close-{n}", "customer_id": f"close-{n}", "session_id": "x",
                      "type": "page_view", "ts": end_ms + close_after_ms})
        for n in range(128)
    ]  # fmt: skip
    return lines


def rage_clicks(customer_id: str, n: int = 3, **fields: Any) -> list[dict[str, Any]]:
    """``n`` clicks on one button, 200 ms apart."""
    start = int(time.time() * 1000)
    return [
        event(customer_id, "click", ts=start + 200 * i, element="#pay", x=100 + i, y=200, **fields)
        for i in range(n)
    ]


async def post(
    url: str, body: bytes | object, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """POST ``body`` (bytes as they are, anything else as JSON); return status and JSON."""
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url, data=data, headers={"Content-Type": "application/json", **(headers or {})}
        ) as response,
    ):
        return response.status, orjson.loads(await response.read() or b"null")


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, await response.read(), dict(response.headers)


async def metric_families(web_url: str) -> dict[str, Metric]:
    """A worker's ``GET /metrics``, parsed: family name (no ``_total``) → family."""
    status, body, _ = await get(f"{web_url}/metrics")
    assert status == 200, status
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


#: Every event a worker has finished with: folded, dropped as a repeat, or rejected.
_COUNTED = ("nudgeflow_events_processed", "nudgeflow_events_duplicate", "nudgeflow_events_rejected")


async def events_counted(web_url: str) -> float:
    """The events a worker has finished with (processed, duplicate or rejected)."""
    families = await metric_families(web_url)
    return sum(
        sample.value
        for name in _COUNTED
        if name in families
        for sample in families[name].samples
        if sample.name.endswith("_total")
    )


async def produce(bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes]]) -> None:
    """Write raw (key, value) messages straight to a topic."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def read_topic(
    bootstrap: str,
    topic: str,
    match: Callable[[dict[str, Any]], bool],
    *,
    want: int = 1,
    timeout_s: float = 15.0,
    settle_s: float = 0.0,
) -> list[dict[str, Any]]:
    """Read ``topic`` from the beginning until ``want`` JSON values match (or time runs out).

    With ``settle_s`` it keeps reading that long after reaching ``want``, so a test
    can assert that no *extra* value arrives.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                fetch_max_wait_ms=50)  # fmt: skip
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        settle_until: float | None = None
        while loop.time() < (settle_until or deadline):
            batches = await consumer.getmany(timeout_ms=100)
            for records in batches.values():
                for record in records:
                    try:
                        value = orjson.loads(record.value)
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(value, dict) and match(value):
                        found.append(value)
            if len(found) >= want and settle_until is None:
                if not settle_s:
                    break
                settle_until = loop.time() + settle_s
        return found
    finally:
        await consumer.stop()


async def read_redis_stream(
    redis_url: str,
    match: Callable[[dict[str, Any]], bool],
    *,
    want: int = 1,
    timeout_s: float = 10.0,
) -> list[dict[str, Any]]:
    """Interventions on ``nudgeflow:interventions`` that match, once ``want`` are there."""
    client = aioredis.from_url(redis_url)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            entries = await client.xrange("nudgeflow:interventions")
            found = [v for _, fields in entries if match(v := orjson.loads(fields[b"data"]))]
            if len(found) >= want or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()


async def wait_for_customer(
    web_url: str,
    customer_id: str,
    ready: Callable[[dict[str, Any]], bool] = lambda s: True,
    timeout_s: float = 10.0,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``GET /v1/customers/{id}`` until the customer exists and ``ready(state)`` holds
    (``headers``: an ``X-Api-Key`` where the worker requires keys)."""
    deadline = time.monotonic() + timeout_s
    state: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        status, body, _ = await get(f"{web_url}/v1/customers/{customer_id}", headers)
        if status == 200:
            state = orjson.loads(body)
            if ready(state):
                return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"customer {customer_id} not as expected in {timeout_s} s: {state}")
