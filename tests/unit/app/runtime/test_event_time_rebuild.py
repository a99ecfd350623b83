"""``EventTime.rebuild``: clocks and timers from the recovered table, without holding the loop."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry

from app.detect.pipeline import Rules
from app.runtime.event_time import _REBUILD_CHUNK, EventTime
from app.runtime.metrics import Metrics
from tables.changelogged import StoreMaps
from tables.customer_state import encode_state
from tables.customer_to_state import CustomerStore
from tests.factories import T0_MS, click, fold

PARTITIONS = {0, 1}


def recovered(customers: int) -> EventTime:
    """Event time over a store as recovery leaves it: every state encoded, half of the
    customers on each partition, each with a checkout step (a stall is due)."""
    values: dict[str, Any] = {}
    partitions: dict[str, int] = {}
    for n in range(customers):
        key = f"c{n}"
        step = click(customer_id=key, type="checkout_step", step="payment", value=30.0,
                     ts_ms=T0_MS + n)  # fmt: skip
        state = fold([click(customer_id=key, type="add_to_cart", value=30.0, ts_ms=T0_MS), step])
        assert state is not None
        values[key], partitions[key] = encode_state(state), n % 2
    table: Any = SimpleNamespace(name="customer_to_state")
    store = CustomerStore(table, StoreMaps(values, partitions), decoded_max=customers)
    return EventTime(store, Rules(), None, Metrics.create(CollectorRegistry()), 300_000,
                     lambda: PARTITIONS)  # fmt: skip


async def test_the_rebuild_reads_every_customer_and_lets_the_loop_run_meanwhile() -> None:
    customers = 3 * _REBUILD_CHUNK + 10
    event_time = recovered(customers)
    turns = 0

    async def other_work() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    before = turns
    await event_time.rebuild(now_ms=T0_MS + 10 * 60_000)
    during = turns - before
    other.cancel()
    assert during >= 3, "the loop had a turn every chunk of customers"
    assert event_time.pending() == customers
    assert {p: c.newest_ts_ms for p, c in event_time.clocks.items()} == {
        0: T0_MS + customers - 2,
        1: T0_MS + customers - 1,
    }
    assert not event_time.stale
    assert event_time.customers.decoded_count() == 0, "the states stay encoded"


async def test_a_rebalance_during_the_rebuild_leaves_it_to_be_done_again() -> None:
    event_time = recovered(2 * _REBUILD_CHUNK)

    async def rebalance() -> None:
        await asyncio.sleep(0)
        event_time.stale = True  # what the worker's on_partitions_assigned handler does

    rebalanced = asyncio.create_task(rebalance())
    await event_time.rebuild(now_ms=T0_MS)
    await rebalanced
    assert event_time.stale
