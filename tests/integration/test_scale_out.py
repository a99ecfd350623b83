"""Two workers in one consumer group: partitions split, state exact, any worker answers."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from tests.integration.clients import event, get, metric_families, post, unique, wait_for_customer

pytestmark = pytest.mark.integration


async def test_second_worker_joins_under_load_and_state_stays_exact(private_stack, worker_factory):
    first = worker_factory(private_stack)
    customers = [unique("scale") for _ in range(60)]
    start = int(time.time() * 1000)
    rounds = 8

    async def send_rounds(worker_url: str, first_round: int, last_round: int) -> None:
        for r in range(first_round, last_round):
            batch = [event(c, "page_view", page=f"/r{r}", ts=start + r, event_id=f"{c}-{r}")
                     for c in customers]  # fmt: skip
            status, _ = await post(f"{worker_url}/v1/events", {"events": batch})
            assert status == 202
            await asyncio.sleep(0.2)

    sending = asyncio.create_task(send_rounds(first.web_url, 0, rounds // 2))
    second = await asyncio.to_thread(worker_factory, private_stack)  # joins: a rebalance
    await sending
    await send_rounds(second.web_url, rounds // 2, rounds)

    for worker in (first, second):
        _, body, _ = await get(f"{worker.web_url}/readyz")
        assert orjson.loads(body)["assigned_partitions"] > 0
    # Each customer lives on exactly one worker: the first dropped what it handed over.
    holding = [await _active_customers(worker.web_url) for worker in (first, second)]
    assert sum(holding) == len(customers) and min(holding) > 0, holding
    # ... and each partition's models live on exactly one worker: no double learning.
    models = [
        await _gauge(worker.web_url, "nudgeflow_model_partitions") for worker in (first, second)
    ]
    assert sum(models) == 8 and min(models) > 0, models
    for customer in customers:
        # Re-processing around the rebalance must not count an event twice.
        for worker in (first, second):
            state = await wait_for_customer(
                worker.web_url, customer, lambda s: s["profile"]["events"] >= rounds, timeout_s=20
            )
            assert state["profile"]["events"] == rounds, (customer, worker.web_url)
            assert state["session"]["page"] == f"/r{rounds - 1}"


async def _active_customers(web_url: str) -> int:
    return await _gauge(web_url, "nudgeflow_active_customers")


async def _gauge(web_url: str, name: str) -> int:
    families = await metric_families(web_url)
    return int(families[name].samples[0].value)


async def test_while_the_owner_is_dead_the_customer_view_says_503_then_recovers(
    private_stack, worker_factory
):
    first = worker_factory(private_stack)
    second = await asyncio.to_thread(worker_factory, private_stack)
    customers = [unique("owner") for _ in range(32)]
    start = int(time.time() * 1000)
    batch = [event(c, "page_view", ts=start) for c in customers]
    assert (await post(f"{first.web_url}/v1/events", {"events": batch}))[0] == 202
    for customer in customers:
        await wait_for_customer(first.web_url, customer, timeout_s=20)

    second.process.kill()  # kill -9: no goodbye to the group
    second.process.wait()

    statuses: set[int] = set()
    deadline = time.monotonic() + 60
    pending = set(customers)
    while pending and time.monotonic() < deadline:
        for customer in list(pending):
            status, body, headers = await get(f"{first.web_url}/v1/customers/{customer}")
            # Never a 404: until the survivor has processed again the dead owner's events
            # after its committed offsets, it answers 503 for the partitions it took over.
            assert status in (200, 503), (status, body)
            statuses.add(status)
            if status == 503:
                assert headers.get("Retry-After") and "error" in orjson.loads(body)
            else:
                pending.discard(customer)
        await asyncio.sleep(0.2)
    assert not pending, f"{len(pending)} customers never answered after the failover"
    assert 503 in statuses  # the dead owner's customers, until the survivor took them over
