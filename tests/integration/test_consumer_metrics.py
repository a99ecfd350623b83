"""The consumer metrics of a live worker: lag and committed offset per partition, owned
partitions, rebalances, table recovery and readiness (app.runtime.ops_metrics)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest

from app.ingest.partitioning import customer_partition
from tests.integration import crash_replay as crash
from tests.integration.clients import event, metric_families, post, unique, wait_for_customer

pytestmark = pytest.mark.integration

_PARTITIONS = 8  # worker_env's default NUDGEFLOW_TOPIC_PARTITIONS


def _samples(families: dict[str, Any], family: str, **labels: str) -> list[float]:
    return [s.value for s in families[family].samples
            if all(s.labels.get(k) == v for k, v in labels.items())
            and not s.name.endswith("_created")]  # fmt: skip


async def _until(web_url: str, check: Any, timeout_s: float = 20.0) -> dict[str, Any]:
    """The worker's metric families once ``check(families)`` holds (asserted)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        families = await metric_families(web_url)
        if check(families):
            return families
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError({name: [(s.labels, s.value) for s in f.samples]
                                  for name, f in families.items()
                                  if name.startswith("nudgeflow_consumer")})  # fmt: skip
        await asyncio.sleep(0.25)


async def test_lag_is_what_waits_after_the_committed_offset(private_stack, worker_factory):
    customer = unique("lag")
    partition = str(customer_partition(customer, _PARTITIONS))
    clicks = {"topic": "clicks", "partition": partition}

    first = worker_factory(private_stack)  # ready; the gauges follow within a second
    families = await _until(first.web_url, lambda f: _samples(f, "nudgeflow_ready") == [1])
    assert _samples(families, "nudgeflow_assigned_partitions") == [_PARTITIONS]
    assert _samples(families, "nudgeflow_rebalances") == [1]
    for table in ("customer_to_state", "partition_models"):
        assert _samples(families, "nudgeflow_table_recovery_remaining_records", table=table) == [0]
    assert _samples(families, "nudgeflow_catch_up_remaining_records") == [0]  # nothing waited
    # Empty partitions are known to have no lag, before anything is committed on them.
    assert _samples(families, "nudgeflow_consumer_lag_records", **clicks) == [0]

    events = [event(customer, "page_view") for _ in range(3)]
    status, _ = await post(f"{first.web_url}/v1/events", {"events": events})
    assert status == 202
    # Committed every 0.5 s: the three events are behind the committed offset, lag 0.
    await _until(first.web_url, lambda f: (
        _samples(f, "nudgeflow_consumer_committed_offset", **clicks) == [3]
        and _samples(f, "nudgeflow_consumer_lag_records", **clicks) == [0]))  # fmt: skip
    first.stop()

    # A worker that commits only every hour: what it processes stays after the committed
    # offset, which it read from the broker when it took the partition.
    second = worker_factory(private_stack, broker_commit_interval_s=3600)
    events = [event(customer, "page_view") for _ in range(5)]
    status, _ = await post(f"{second.web_url}/v1/events", {"events": events})
    assert status == 202
    families = await _until(second.web_url, lambda f: (
        _samples(f, "nudgeflow_events_processed") == [5]
        and _samples(f, "nudgeflow_consumer_lag_records", **clicks) == [5]))  # fmt: skip
    assert _samples(families, "nudgeflow_consumer_committed_offset", **clicks) == [3]
    assert _samples(families, "nudgeflow_ready") == [1]
    feedback = _samples(families, "nudgeflow_consumer_lag_records", topic="intervention-feedback")
    assert feedback == [0] * _PARTITIONS


async def test_a_worker_behind_commits_at_the_behind_interval_then_as_often_as_ever(
    private_stack, worker_factory
):
    # While at least a batch (1 000 events) waits, ticks every 0.1 s pass without a
    # commit, up to the behind interval (an hour here); once the backlog is drained, every
    # tick commits again and the lag goes to 0.
    worker, events, draining = await _drain_backlog(private_stack, worker_factory, 2_000, 30)
    assert draining[-1][2] - draining[0][2] <= 1  # no commit while behind (one tick may race)

    drained = draining[-1]
    await _until(worker.web_url, lambda f: (
        _commits(f) >= drained[2] + 3
        and sum(_samples(f, "nudgeflow_consumer_committed_offset", topic="clicks")) == events
        and set(_samples(f, "nudgeflow_consumer_lag_records", topic="clicks")) == {0}))  # fmt: skip


async def test_a_worker_behind_commits_once_ten_thousand_customers_changed(
    private_stack, worker_factory
):
    # The records of a commit's changed customers are all built before any is sent: while
    # behind, a commit waits for no more than 10 000 of them (the next tick commits). How
    # many commits fit in the drain depends on how fast the broker takes their records,
    # so what is checked is what they wrote: at least one commit's worth, where the behind
    # interval (an hour) alone would let none but a racing tick with a few.
    _worker, _events, draining = await _drain_backlog(private_stack, worker_factory, 40_000, 2)
    assert draining[-1][3] - draining[0][3] >= 10_000


async def _drain_backlog(
    services: Any, worker_factory: Any, customers: int, visits: int
) -> tuple[Any, int, list[tuple[float, float, float, float]]]:
    """A worker (commit ticks every 0.1 s, an hour apart while behind) started on a backlog
    of ``visits`` page views of each of ``customers`` customers, followed until it processed
    them all; the worker, the event count and (seconds, processed, commits, changelog
    writes) polled while more than two batches waited."""
    interval_s = 0.1
    ids = [unique("behind") for _ in range(customers)]
    start = int(time.time() * 1000) - 600_000
    events = [event(c, "page_view", ts=start + 1_000 * i, page=f"/p/{i}")
              for i in range(visits) for c in ids]  # fmt: skip
    await crash.produce(services, [orjson.dumps(e) for e in events])
    worker = worker_factory(services, caught_up=False, broker_commit_interval_s=interval_s,
                            broker_commit_interval_behind_s=3600)  # fmt: skip
    polls: list[tuple[float, float, float, float]] = []
    deadline = time.monotonic() + 60
    while not polls or polls[-1][1] < len(events):
        assert time.monotonic() < deadline, polls[-1:]
        families = await metric_families(worker.web_url)
        processed = _samples(families, "nudgeflow_events_processed")[0]
        writes = _samples(families, "nudgeflow_changelog_writes")[0]
        polls.append((time.monotonic(), processed, _commits(families), writes))
        await asyncio.sleep(0.05)
    draining = [p for p in polls if 0 < p[1] <= len(events) - 2_000]
    assert draining[-1][0] - draining[0][0] >= 5 * interval_s  # long enough to show ticks
    return worker, len(events), draining


def _commits(families: dict[str, Any]) -> float:
    return next(s.value for s in families["nudgeflow_commit_seconds"].samples
                if s.name == "nudgeflow_commit_seconds_count")  # fmt: skip


async def test_states_beyond_the_decoded_max_are_held_encoded_and_read_back(
    private_stack, worker_factory
):
    worker = worker_factory(private_stack, decoded_states_max=2)
    customers = [unique("encoded") for _ in range(3)]
    events = [event(customer, "page_view") for customer in customers]
    status, _ = await post(f"{worker.web_url}/v1/events", {"events": events})
    assert status == 202
    await _until(worker.web_url, lambda f: (
        _samples(f, "nudgeflow_events_processed") == [3]
        and _samples(f, "nudgeflow_active_customers") == [3]
        and _samples(f, "nudgeflow_states_decoded") == [2]))  # fmt: skip
    # Whichever one is held encoded reads back as it was written, and the read is counted
    # (so is the expiry sweep's, should it pass meanwhile).
    for customer in customers:
        state = await wait_for_customer(worker.web_url, customer)
        assert state["profile"]["events"] == 1, state
    await _until(worker.web_url, lambda f: _samples(f, "nudgeflow_state_decodes")[0] >= 1)
