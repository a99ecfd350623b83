"""Feedback (contract §3) on the real embedded Redis and through a worker on the real broker."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis

from app.errors import InvalidEvent
from app.feedback import Feedback, FeedbackStore
from app.runtime.embedded import free_port, start_redis
from app.runtime.testing import Services
from app.runtime.topics import REDIS_INTERVENTION_KEY
from tests.integration.clients import (
    event,
    metric_families,
    post,
    produce,
    read_redis_stream,
    read_topic,
    unique,
    wait_for_customer,
)

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


# --- through a worker: HTTP, the topic, the customer view ------------------------------------


async def delivered_intervention(worker: Any, services: Services, customer: str) -> dict[str, Any]:
    """A real intervention for ``customer`` (a failed payment gets one at once), once it is
    indexed in Redis (its stream entry and index entry are written together)."""
    failed = event(customer, "payment_failed", step="payment", value=42.0, error="declined")
    assert (await post(f"{worker.web_url}/v1/events", failed))[0] == 202
    [on_kafka] = await read_topic(services.bootstrap, "interventions", _for(customer))
    assert on_kafka["reason"] == "payment_failure"
    assert await read_redis_stream(services.redis_url, _for(customer))
    return on_kafka


def feedback(intervention: dict[str, Any], outcome: str, **overrides: Any) -> dict[str, Any]:
    return {"intervention_id": intervention["intervention_id"],
            "customer_id": intervention["customer_id"], "outcome": outcome,
            "ts": int(time.time() * 1000), **overrides}  # fmt: skip


async def counter(web_url: str, family: str, **labels: str) -> float:
    """One series of a worker's counter (``family`` without ``_total``)."""
    found = (await metric_families(web_url)).get(family)
    samples = found.samples if found else []
    return sum(s.value for s in samples if s.name.endswith("_total") and s.labels == labels)


async def wait_for_counter(web_url: str, family: str, value: float, **labels: str) -> None:
    deadline = time.monotonic() + 10
    while (seen := await counter(web_url, family, **labels)) < value:
        assert time.monotonic() < deadline, f"{family}{labels} = {seen}, expected {value}"
        await asyncio.sleep(0.05)


async def test_feedback_over_http_and_the_topic_shows_in_the_customer_view(worker, services):
    customer = unique("feedback")
    intervention = await delivered_intervention(worker, services, customer)
    url = f"{worker.web_url}/v1/feedback"
    shown_before = await counter(worker.web_url, "nudgeflow_feedback", outcome="shown")
    accepted_before = await counter(worker.web_url, "nudgeflow_feedback", outcome="accepted")

    shown = feedback(intervention, "shown")
    status, body = await post(url, shown)

    assert (status, body) == (202, {"intervention_id": intervention["intervention_id"],
                                    "outcome": "shown"})  # fmt: skip
    state = await wait_for_customer(worker.web_url, customer)
    [seen] = state["interventions"]
    assert (seen["intervention_id"], seen["outcome"], seen["outcome_ts"]) == (
        intervention["intervention_id"], "shown", shown["ts"],
    )  # fmt: skip
    # Other readers of the topic see what the HTTP view took.
    [on_topic] = await read_topic(services.bootstrap, "intervention-feedback", _for(customer))
    assert on_topic == shown

    # Feedback produced straight onto the topic is applied by the agent.
    accepted = feedback(intervention, "accepted", ts=shown["ts"] + 1_000)
    await produce(services.bootstrap, "intervention-feedback",
                  [(customer.encode(), orjson.dumps(accepted))])  # fmt: skip
    state = await wait_for_customer(
        worker.web_url, customer, lambda s: s["interventions"][0].get("outcome") == "accepted"
    )
    assert state["interventions"][0]["outcome_ts"] == accepted["ts"]

    # The HTTP feedback came back to the agent on the topic (before the produced one, on the
    # same partition): it was counted once, by the view.
    assert await counter(worker.web_url, "nudgeflow_feedback", outcome="shown") == shown_before + 1
    accepted_now = await counter(worker.web_url, "nudgeflow_feedback", outcome="accepted")
    assert accepted_now == accepted_before + 1

    # An older outcome arriving late does not hide the newer one.
    assert (await post(url, feedback(intervention, "dismissed", ts=shown["ts"] - 5_000)))[0] == 202
    state = await wait_for_customer(worker.web_url, customer)
    assert state["interventions"][0]["outcome"] == "accepted"


@pytest.mark.parametrize(
    ("change", "status", "error_pattern"),
    [
        ({"outcome": None}, 400, "outcome: missing"),
        ({"outcome": "liked"}, 400, "outcome: unknown outcome 'liked'; one of delivered, shown"),
        ({"customer_id": ""}, 400, "customer_id: must be 1–128 characters"),  # noqa: RUF001
        ({"intervention_id": 42}, 400, "intervention_id: must be a string, got integer"),
        ({"ts": 1_714_564_800}, 400, r"ts: before 2000-01-01; ts must be milliseconds"),
        ({"ts": 9_999_999_999_999}, 400, r"ts: \d+ s ahead of the receiver's clock"),
        ({"intervention_id": "0" * 32}, 404, "intervention not found"),
        ({"customer_id": "someone-else"}, 409, "customer_id: not the customer"),
    ],
)
async def test_bad_feedback_is_refused_with_the_field_named(
    worker, services, change: dict[str, Any], status: int, error_pattern: str
):
    customer = unique("badfeedback")
    intervention = await delivered_intervention(worker, services, customer)
    body = {k: v for k, v in {**feedback(intervention, "shown"), **change}.items()
            if v is not None}  # fmt: skip

    got_status, got_body = await post(f"{worker.web_url}/v1/feedback", body)

    assert got_status == status
    assert re.match(error_pattern, got_body["error"]), got_body
    state = await wait_for_customer(worker.web_url, customer)
    assert "outcome" not in state["interventions"][0]


@pytest.mark.parametrize(
    ("body", "status", "reason", "error_start"),
    [
        (b"{not json", 400, "invalid_json", "body: not valid JSON"),
        (b"[]", 400, "not_an_object", "body: must be a feedback object, got array"),
        (b"", 400, "invalid_json", "body: not valid JSON"),
        (b'{"pad": "' + b"x" * 20_000 + b'"}', 413, "too_large", "body: larger than 16384 bytes"),
    ],
)
async def test_a_body_that_is_no_feedback_is_refused_and_counted(
    worker, body: bytes, status: int, reason: str, error_start: str
):
    before = await counter(worker.web_url, "nudgeflow_feedback_rejected", reason=reason)
    got_status, got_body = await post(f"{worker.web_url}/v1/feedback", body)
    assert got_status == status
    assert got_body["error"].startswith(error_start)
    after = await counter(worker.web_url, "nudgeflow_feedback_rejected", reason=reason)
    assert after == before + 1


async def test_bad_feedback_on_the_topic_is_counted_and_the_agent_goes_on(worker, services):
    customer = unique("topicfeedback")
    intervention = await delivered_intervention(worker, services, customer)
    url = worker.web_url
    before = {reason: await counter(url, "nudgeflow_feedback_rejected", reason=reason)
              for reason in ("invalid_json", "unknown_intervention", "customer_mismatch",
                             "unknown_outcome")}  # fmt: skip
    key = customer.encode()
    await produce(services.bootstrap, "intervention-feedback", [
        (key, b"not json at all"),
        (key, orjson.dumps(feedback(intervention, "shown", intervention_id="f" * 32))),
        (key, orjson.dumps(feedback(intervention, "shown", customer_id="someone-else"))),
        (key, orjson.dumps(feedback(intervention, "purchased"))),
        (key, orjson.dumps(feedback(intervention, "converted"))),
    ])  # fmt: skip

    state = await wait_for_customer(
        url, customer, lambda s: s["interventions"][0].get("outcome") == "converted"
    )
    assert state["interventions"][0]["intervention_id"] == intervention["intervention_id"]
    for reason, count in before.items():  # read before the valid one after them: all counted
        assert await counter(url, "nudgeflow_feedback_rejected", reason=reason) == count + 1
    assert worker.process.poll() is None


async def test_without_redis_feedback_is_503_and_the_view_still_answers(
    private_stack, worker_factory
):
    no_redis = Services(private_stack.broker_url, f"redis://127.0.0.1:{free_port()}/0",
                        embedded=True)  # fmt: skip
    worker = worker_factory(no_redis, api_keys="key-one")
    customer = unique("noredis")
    keyed = {"X-Api-Key": "key-one"}
    failed = event(customer, "payment_failed", step="payment", error="declined")
    assert (await post(f"{worker.web_url}/v1/events", failed, keyed))[0] == 202
    [intervention] = await read_topic(private_stack.bootstrap, "interventions", _for(customer))
    url = f"{worker.web_url}/v1/feedback"
    assert (await post(url, feedback(intervention, "shown")))[0] == 401

    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=orjson.dumps(feedback(intervention, "shown")),
                     headers={**keyed, "Content-Type": "application/json"}) as response,
    ):  # fmt: skip
        assert response.status == 503
        assert response.headers["Retry-After"].isdigit()
        assert orjson.loads(await response.read()) == {"error": "feedback store unavailable, retry"}

    state = await wait_for_customer(
        worker.web_url, customer, lambda s: bool(s["interventions"]), headers=keyed
    )  # the customer view needs the key too
    assert "outcome" not in state["interventions"][0]
    await wait_for_counter(worker.web_url, "nudgeflow_feedback_rejected", 1,
                           reason="store_unavailable")  # fmt: skip


def _for(customer: str):
    return lambda value: value.get("customer_id") == customer
