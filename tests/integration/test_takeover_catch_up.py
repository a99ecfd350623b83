"""After a takeover the survivor answers for a partition only once it has processed again
what the dead owner processed but never committed (issue 12): ``503`` with ``Retry-After``
meanwhile, never a false ``404``; then ``200``, and ``404`` for a customer never seen."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import orjson
import pytest
import redis.asyncio as aioredis

from app.runtime.topics import FEEDBACK, REDIS_INTERVENTION_KEY, REDIS_OUTCOMES_KEY
from tests.integration import crash_replay as crash
from tests.integration.clients import (
    customers_per_partition,
    event,
    get,
    metric_families,
    post,
    produce,
    unique,
    wait_for_customer,
)

pytestmark = pytest.mark.integration

_PARTITIONS = 8
# Events ahead of each partition's last customer: processing them again is the catch-up,
# which the test must catch in the act (polling every 50 ms): ~0.3 s at a worker's pace.
_AHEAD_PER_PARTITION = 2_000
# Neither worker commits during the test (commits are timed only, and wait an hour), so
# everything the killed owner processed lies after the committed offsets.
_NO_COMMITS = {"broker_commit_interval_s": 3600}
_CATCHING_UP = "customer state is catching up after a takeover, retry"


async def test_the_survivor_answers_503_until_it_has_processed_the_dead_owners_tail(
    private_stack, worker_factory
):
    survivor = worker_factory(private_stack, **_NO_COMMITS)
    held_alone = await _partitions_held(survivor.web_url)  # every partition of every topic
    victim = await asyncio.to_thread(worker_factory, private_stack, **_NO_COMMITS)
    deadline = time.monotonic() + 30
    while not 0 < await _partitions_held(survivor.web_url) < held_alone:  # the join settled
        assert time.monotonic() < deadline, "the pair never settled"
        await asyncio.sleep(0.05)
    ahead = customers_per_partition(_AHEAD_PER_PARTITION, "ahead", _PARTITIONS)
    last = [ids[0] for ids in customers_per_partition(1, "last", _PARTITIONS).values()]
    never = [ids[0] for ids in customers_per_partition(1, "never", _PARTITIONS).values()]
    start = int(time.time() * 1000)
    events = [event(c, "page_view", ts=start) for ids in ahead.values() for c in ids]
    for first in range(0, len(events), 500):  # all on the broker before the last customers
        status, _ = await post(
            f"{survivor.web_url}/v1/events", {"events": events[first : first + 500]}
        )
        assert status == 202
    status, _ = await post(f"{survivor.web_url}/v1/events",
                           {"events": [event(c, "page_view", ts=start) for c in last]})  # fmt: skip
    assert status == 202
    for customer in last:  # each the last event of its partition, processed by its owner
        await wait_for_customer(survivor.web_url, customer, timeout_s=30)
    assert set((await crash.committed(private_stack)).values()) == {0}, "a worker committed"

    victim.process.kill()  # kill -9: what it processed is after the committed offsets
    victim.process.wait()

    statuses: Counter[tuple[int, str]] = Counter()
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, f"no catch-up in 60 s: {statuses}"
        for customer in last:
            status, body, headers = await get(f"{survivor.web_url}/v1/customers/{customer}")
            # Before the catch-up a 404 would be false: the customer's event is on the broker.
            assert status in (200, 503), (customer, status, body)
            if status == 503:
                assert headers.get("Retry-After") and orjson.loads(body)["error"]
            statuses[status, orjson.loads(body).get("error", "")] += 1
        status, body, _ = await get(f"{survivor.web_url}/readyz")
        readiness = orjson.loads(body)
        if status == 200 and readiness["assigned_partitions"] == held_alone:
            break
        await asyncio.sleep(0.05)
    assert readiness["caught_up"] and readiness["catch_up_remaining_records"] == 0
    # The catch-up was seen: the survivor took partitions whose events it had to process again.
    assert statuses[503, _CATCHING_UP], statuses

    # Caught up: every customer is there, and one never seen is a 404 (not a 503) at once.
    for customer in last:
        state = await wait_for_customer(survivor.web_url, customer, timeout_s=0.5)
        assert state["profile"]["events"] == 1, customer
    for customer in never:
        status, body, _ = await get(f"{survivor.web_url}/v1/customers/{customer}")
        assert status == 404 and orjson.loads(body)["error"] == "customer not found", customer
    families = await metric_families(survivor.web_url)
    deadline = time.monotonic() + 5  # the gauges follow within a second
    while families["nudgeflow_catch_up_remaining_records"].samples[0].value != 0:
        assert time.monotonic() < deadline, "the catch-up gauge stayed above 0"
        await asyncio.sleep(0.2)
        families = await metric_families(survivor.web_url)


async def _partitions_held(web_url: str) -> int:
    """The partitions a worker holds, once ready (0 until then)."""
    status, body, _ = await get(f"{web_url}/readyz")
    return int(orjson.loads(body)["assigned_partitions"]) if status == 200 else 0


async def test_feedback_on_partitions_never_committed_reaches_redis_after_a_takeover(
    private_stack, worker_factory
):
    # ``intervention-feedback`` goes through Faust's own stream path, not the clicks queue:
    # a partition the group never committed on must still be read in full by the worker
    # that takes it over, whatever that worker fetched while flow was stopped.
    survivor = worker_factory(private_stack, **_NO_COMMITS)
    held_alone = await _partitions_held(survivor.web_url)
    victim = await asyncio.to_thread(worker_factory, private_stack, **_NO_COMMITS)
    deadline = time.monotonic() + 30
    while not 0 < await _partitions_held(survivor.web_url) < held_alone:
        assert time.monotonic() < deadline, "the pair never settled"
        await asyncio.sleep(0.05)
    redis = aioredis.from_url(private_stack.redis_url)
    try:
        before = await _feedback_on_indexed_interventions(private_stack, redis, "before", 200)
        await _wait_until_recorded(redis, before, timeout_s=30)
        assert set((await crash.committed(private_stack, FEEDBACK)).values()) == {0}, "a commit"

        victim.process.kill()  # its partitions were never committed
        victim.process.wait()
        after = await _feedback_on_indexed_interventions(private_stack, redis, "after", 200)
        await _wait_until_recorded(redis, after, timeout_s=60)
    finally:
        await redis.aclose()


async def _feedback_on_indexed_interventions(
    services, redis: aioredis.Redis, prefix: str, count: int
) -> list[str]:
    """``count`` interventions indexed as delivery indexes them, and an ``accepted`` for
    each on ``intervention-feedback`` (keyed by customer, so on every partition)."""
    now_ms = int(time.time() * 1000)
    messages, ids = [], []
    for _ in range(count):
        intervention_id, customer = unique(f"{prefix}-i"), unique(f"{prefix}-c")
        indexed = {"customer_id": customer, "session_id": "s1", "reason": "rage_click",
                   "kind": "assist", "emitted_ts": now_ms}  # fmt: skip
        await redis.set(REDIS_INTERVENTION_KEY.format(intervention_id), orjson.dumps(indexed))
        feedback = {"intervention_id": intervention_id, "customer_id": customer,
                    "outcome": "accepted", "ts": now_ms}  # fmt: skip
        messages.append((customer.encode(), orjson.dumps(feedback)))
        ids.append(intervention_id)
    await produce(services.bootstrap, FEEDBACK, messages)
    return ids


async def _wait_until_recorded(redis: aioredis.Redis, ids: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        async with redis.pipeline(transaction=False) as pipe:
            for intervention_id in ids:
                pipe.exists(REDIS_OUTCOMES_KEY.format(intervention_id))
            missing = [i for i, found in zip(ids, await pipe.execute(), strict=True) if not found]
        if not missing:
            return
        assert time.monotonic() < deadline, f"{len(missing)} of {len(ids)} feedback never recorded"
        await asyncio.sleep(0.2)
