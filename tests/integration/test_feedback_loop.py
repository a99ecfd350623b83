"""Feedback (contract §3) on the real embedded Redis and through a worker on the real broker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis

from app.errors import InvalidEvent
from app.feedback import Feedback, FeedbackStore
from app.runtime.embedded import free_port, start_redis
from app.runtime.topics import REDIS_INTERVENTION_KEY

pytestmark = pytest.mark.integration

TS_MS = 1_714_564_800_000
DAY_S = 86_400


# --- the store, on a Redis of this module's own (so counts start from nothing) --------------


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = start_redis(free_port(), Path(tmp_path_factory.mktemp("feedback-redis")))
    try:
        yield f"redis://127.0.0.1:{server.port}/0"
    finally:
        server.stop()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


async def index(redis: aioredis.Redis, intervention_id: str, customer_id: str, reason: str) -> None:
    """What delivery writes for a delivered intervention."""
    indexed = {"customer_id": customer_id, "session_id": "s1", "reason": reason,
               "kind": "assist", "emitted_ts": TS_MS}  # fmt: skip
    await redis.set(REDIS_INTERVENTION_KEY.format(intervention_id), orjson.dumps(indexed))


async def test_store_reads_the_delivery_index(redis: aioredis.Redis) -> None:
    store = FeedbackStore(redis, DAY_S)
    await index(redis, "i-1", "c-1", "rage_click")

    indexed = await store.intervention("i-1")
    assert indexed is not None and indexed["reason"] == "rage_click"
    assert await store.intervention("i-unknown") is None


async def test_store_keeps_the_newest_ts_per_outcome(redis: aioredis.Redis) -> None:
    store = FeedbackStore(redis, DAY_S)
    indexed = {"customer_id": "c-1", "reason": "rage_click"}
    for outcome, ts_ms in [("shown", TS_MS + 5), ("shown", TS_MS + 1), ("delivered", TS_MS)]:
        await store.record(Feedback("i-1", "c-1", outcome, ts_ms), indexed)

    kept = await redis.hgetall("nudgeflow:outcomes:i-1")
    assert kept == {b"shown": str(TS_MS + 5).encode(), b"delivered": str(TS_MS).encode()}
    assert 0 < await redis.ttl("nudgeflow:outcomes:i-1") <= DAY_S
    assert await store.latest_outcomes(["i-1"]) == {"i-1": {"outcome": "shown", "ts": TS_MS + 5}}


async def test_store_latest_outcomes_in_one_call(redis: aioredis.Redis) -> None:
    store = FeedbackStore(redis, DAY_S)
    indexed = {"customer_id": "c-1", "reason": "payment_failure"}
    for intervention_id, outcome, ts_ms in [
        ("i-1", "shown", TS_MS), ("i-1", "accepted", TS_MS + 10),
        ("i-2", "accepted", TS_MS), ("i-2", "dismissed", TS_MS),  # a tie: the funnel decides
        ("i-3", "converted", TS_MS), ("i-3", "shown", TS_MS + 1),  # the newest ts wins
    ]:  # fmt: skip
        await store.record(Feedback(intervention_id, "c-1", outcome, ts_ms), indexed)

    latest = await store.latest_outcomes(["i-1", "i-2", "i-3", "i-none", "i-1"])

    assert latest == {
        "i-1": {"outcome": "accepted", "ts": TS_MS + 10},
        "i-2": {"outcome": "accepted", "ts": TS_MS},
        "i-3": {"outcome": "shown", "ts": TS_MS + 1},
    }
    assert await store.latest_outcomes([]) == {}


async def test_store_counts_each_intervention_once_per_reason_and_outcome(
    redis: aioredis.Redis,
) -> None:
    store = FeedbackStore(redis, DAY_S)
    rage = {"customer_id": "c-1", "reason": "rage_click"}
    payment = {"customer_id": "c-2", "reason": "payment_failure"}
    for _ in range(3):  # retries, or the HTTP path and the topic both applying it
        await store.record(Feedback("i-1", "c-1", "shown", TS_MS), rage)
    await store.record(Feedback("i-1", "c-1", "accepted", TS_MS + 1), rage)
    await store.record(Feedback("i-2", "c-1", "shown", TS_MS), rage)
    await store.record(Feedback("i-3", "c-2", "dismissed", TS_MS), payment)

    assert await store.outcome_counts() == {
        "rage_click": {"shown": 2, "accepted": 1},
        "payment_failure": {"dismissed": 1},
    }
    assert 0 < await redis.ttl("nudgeflow:feedback:rage_click:shown") <= DAY_S


async def test_store_counts_nothing_without_feedback(redis: aioredis.Redis) -> None:
    assert await FeedbackStore(redis, DAY_S).outcome_counts() == {}


async def test_store_applies_only_feedback_the_index_allows(redis: aioredis.Redis) -> None:
    store = FeedbackStore(redis, DAY_S)
    await index(redis, "i-1", "c-1", "form_struggle")

    await store.apply(Feedback("i-1", "c-1", "accepted", TS_MS))
    for feedback, reason in [
        (Feedback("i-unknown", "c-1", "shown", TS_MS), "unknown_intervention"),
        (Feedback("i-1", "c-2", "converted", TS_MS + 1), "customer_mismatch"),
    ]:
        with pytest.raises(InvalidEvent) as caught:
            await store.apply(feedback)
        assert caught.value.reason == reason

    assert await store.outcome_counts() == {"form_struggle": {"accepted": 1}}
    assert await store.latest_outcomes(["i-1", "i-unknown"]) == {
        "i-1": {"outcome": "accepted", "ts": TS_MS}
    }


def test_store_wants_a_positive_retention() -> None:
    with pytest.raises(ValueError, match="retention_s"):
        FeedbackStore(aioredis.Redis(), 0)
