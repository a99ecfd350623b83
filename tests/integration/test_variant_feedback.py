"""Response variants on a worker: a price-hesitation offer carries the variant its partition's
bandit picked, and the first verdict on it, however it comes, teaches the bandit once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from app.decide.variants import VARIANTS
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

LEARNED = ("nudgeflow_model_learned", {"model": "variants"})
ALREADY = ("nudgeflow_variant_rewards_skipped", {"cause": "already_learned"})


async def counter(web_url: str, family: str, labels: dict[str, str]) -> float:
    found = (await metric_families(web_url)).get(family)
    samples = found.samples if found else []
    return sum(s.value for s in samples if s.name.endswith("_total") and s.labels == labels)


async def wait_for(web_url: str, family: str, labels: dict[str, str], value: float) -> None:
    deadline = time.monotonic() + 15
    while (seen := await counter(web_url, family, labels)) < value:
        assert time.monotonic() < deadline, f"{family}{labels} = {seen}, expected {value}"
        await asyncio.sleep(0.05)


def feedback(intervention: dict[str, Any], outcome: str, ts_ms: int) -> dict[str, Any]:
    return {
        "intervention_id": intervention["intervention_id"],
        "customer_id": intervention["customer_id"],
        "outcome": outcome,
        "ts": ts_ms,
    }


async def test_an_offer_carries_a_variant_and_one_verdict_teaches_the_bandit_once(
    private_stack, worker_factory
):
    worker = worker_factory(private_stack)
    customer = unique("variant")
    now_ms = int(time.time() * 1000)
    views = [event(customer, "product_view", page="/p/9", product_id="p9", value=80.0,
                   ts=now_ms + 1_000 * i) for i in range(3)]  # fmt: skip
    assert (await post(f"{worker.web_url}/v1/events", {"events": views}))[0] == 202

    [offer] = await read_topic(private_stack.bootstrap, "interventions",
                               lambda v: v.get("customer_id") == customer)  # fmt: skip
    assert (offer["kind"], offer["reason"]) == ("offer", "product_hesitation")
    variant = offer["context"]["variant"]
    assert variant in VARIANTS["product_hesitation"]
    [on_stream] = await read_redis_stream(private_stack.redis_url,
                                          lambda v: v.get("customer_id") == customer)  # fmt: skip
    assert on_stream["context"]["variant"] == variant
    redis = aioredis.from_url(private_stack.redis_url)
    try:
        indexed = orjson.loads(await redis.get(REDIS_INTERVENTION_KEY.format(
            offer["intervention_id"])))  # fmt: skip
    finally:
        await redis.aclose()
    assert indexed["variant"] == variant  # so that feedback knows what was shown
    learned = await counter(worker.web_url, *LEARNED)
    already = await counter(worker.web_url, *ALREADY)
    url = f"{worker.web_url}/v1/feedback"

    # "shown" is no verdict; "accepted" is, and goes through the view and then the topic.
    assert (await post(url, feedback(offer, "shown", now_ms + 5_000)))[0] == 202
    assert (await post(url, feedback(offer, "accepted", now_ms + 6_000)))[0] == 202
    await wait_for(worker.web_url, *LEARNED, learned + 1)

    # The same verdict again, and a later one straight on the topic: taught nothing more.
    assert (await post(url, feedback(offer, "accepted", now_ms + 6_000)))[0] == 202
    converted = feedback(offer, "converted", now_ms + 7_000)
    await produce(private_stack.bootstrap, "intervention-feedback",
                  [(customer.encode(), orjson.dumps(converted))])  # fmt: skip
    await wait_for(worker.web_url, *ALREADY, already + 2)
    state = await wait_for_customer(
        worker.web_url, customer, lambda s: s["interventions"][0].get("outcome") == "converted"
    )
    assert state["interventions"][0]["context"]["variant"] == variant
    assert await counter(worker.web_url, *LEARNED) == learned + 1
    families = await metric_families(worker.web_url)
    held = [s.value for s in families["nudgeflow_model_examples"].samples
            if s.labels == {"model": "variants"}]  # fmt: skip
    assert held == [1.0]
