"""Clicks in, interventions out: the customer agent on the real broker and Redis (contract §2)."""

from __future__ import annotations

import time

import orjson
import pytest

from tests.integration.clients import (
    event,
    get,
    post,
    produce,
    rage_clicks,
    read_redis_stream,
    read_topic,
    unique,
    wait_for_customer,
)

pytestmark = pytest.mark.integration

CONTRACT_FIELDS = {
    "intervention_id", "customer_id", "session_id", "kind", "reason", "score", "signals",
    "explanation", "context", "event_id", "event_ts", "emitted_ts",
}  # fmt: skip


def _for(customer: str):
    return lambda value: value.get("customer_id") == customer


async def test_rage_click_gives_an_assist_on_kafka_and_redis(worker, services):
    customer = unique("rage")
    clicks = rage_clicks(customer, page="/checkout")
    assert (await post(f"{worker.web_url}/v1/events", {"events": clicks}))[0] == 202

    on_kafka = await read_topic(services.bootstrap, "interventions", _for(customer))
    on_redis = await read_redis_stream(services.redis_url, _for(customer))
    assert on_kafka == on_redis
    intervention = on_kafka[0]
    assert set(intervention) >= CONTRACT_FIELDS
    assert (intervention["kind"], intervention["reason"]) == ("assist", "rage_click")
    assert intervention["event_id"] == clicks[-1]["event_id"]
    assert intervention["event_ts"] == clicks[-1]["ts"]
    assert intervention["signals"]["clicks"] == 3
    assert 0 <= intervention["score"] <= 1 and intervention["explanation"]
    assert intervention["context"]["page"] == "/checkout"


async def test_payment_failure_gives_an_assist(worker, services):
    customer = unique("pay")
    await post(f"{worker.web_url}/v1/events", event(customer, "payment_failed", step="payment",
                                                   value=59.9, error="card_declined"))  # fmt: skip
    [intervention] = await read_topic(services.bootstrap, "interventions", _for(customer))
    assert intervention["reason"] == "payment_failure" and intervention["kind"] == "assist"
    assert intervention["context"]["cart_value"] == 59.9


async def test_step_loop_gives_an_assist(worker, services):
    customer = unique("loop")
    start = int(time.time() * 1000)
    steps = ["cart", "shipping", "cart", "shipping", "cart"]
    events = [
        event(customer, "checkout_step", step=s, ts=start + 1000 * i) for i, s in enumerate(steps)
    ]
    await post(f"{worker.web_url}/v1/events", {"events": events})
    [intervention] = await read_topic(services.bootstrap, "interventions", _for(customer))
    assert (
        intervention["reason"] == "step_loop" and intervention["event_id"] == events[-1]["event_id"]
    )


async def test_sender_retry_is_processed_once_and_fires_once(worker, services):
    customer = unique("retry")
    clicks = rage_clicks(customer)
    for _ in range(3):  # the sender retries the whole batch
        assert (await post(f"{worker.web_url}/v1/events", {"events": clicks}))[0] == 202
    found = await read_topic(services.bootstrap, "interventions", _for(customer), settle_s=1.5)
    assert len(found) == 1
    state = await wait_for_customer(worker.web_url, customer)
    assert state["profile"]["events"] == 3


async def test_one_intervention_per_reason_per_session(worker, services):
    customer = unique("once")
    await post(f"{worker.web_url}/v1/events", {"events": rage_clicks(customer)})
    await read_topic(services.bootstrap, "interventions", _for(customer))
    await post(f"{worker.web_url}/v1/events", {"events": rage_clicks(customer)})
    await post(f"{worker.web_url}/v1/events", {"events": rage_clicks(customer, session_id="s2")})
    found = await read_topic(
        services.bootstrap, "interventions", _for(customer), want=2, settle_s=1.5
    )
    assert [i["session_id"] for i in found] == ["s1", "s2"]


async def test_garbage_on_clicks_is_kept_and_the_agent_goes_on(worker, services):
    customer = unique("direct")
    marker = unique("garbage")
    clicks = rage_clicks(customer)
    await produce(
        services.bootstrap,
        "clicks",
        [
            (customer.encode(), f"not json {marker}".encode()),
            (customer.encode(), b"\xff\xfe" + marker.encode()),
            (customer.encode(), orjson.dumps({"event_id": marker, "type": "click"})),
            *[(customer.encode(), orjson.dumps(c)) for c in clicks],
        ],
    )
    [intervention] = await read_topic(services.bootstrap, "interventions", _for(customer))
    assert intervention["reason"] == "rage_click"
    failed = await read_topic(services.bootstrap, "clicks-failed", _mentions(marker), want=3)
    assert sorted(r["reason"] for r in failed) == ["invalid_json", "invalid_json", "missing_field"]
    assert all(r["source"] == "kafka" and r["origin"]["topic"] == "clicks" for r in failed)
    assert (await get(f"{worker.web_url}/healthz"))[0] == 200
    assert worker.process.poll() is None


def _mentions(marker: str):
    """Matches a clicks-failed record whose kept payload, in any form, contains ``marker``."""

    def match(record: dict) -> bool:
        kept = bytes.fromhex(record.get("payload_hex", "")).decode(errors="replace")
        kept += str(record.get("payload_text", "")) + str(record.get("payload", ""))
        return marker in kept

    return match
