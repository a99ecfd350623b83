"""The policy and the holdout through the contract: cooldowns in event time, held-out
decisions recorded and not sent, and ``GET /v1/stats/uplift`` counting both groups."""

from __future__ import annotations

import itertools
import time

import orjson
import pytest

from app.decide.policy import in_holdout
from tests.integration.clients import (
    event,
    get,
    metric_families,
    post,
    read_topic,
    unique,
    wait_for_customer,
)

pytestmark = pytest.mark.integration

SHARE = 0.5
MINUTE_MS = 60_000


def _customer(prefix: str, held_out: bool) -> str:
    return next(
        c for c in (unique(prefix) for _ in itertools.count()) if in_holdout(c, SHARE) == held_out
    )


def _failed_then_bought(customer: str, now_ms: int) -> list[dict[str, object]]:
    return [
        event(customer, "add_to_cart", product_id="p1", value=40.0, ts=now_ms),
        event(customer, "payment_failed", error="declined", ts=now_ms + 1_000),
        event(customer, "purchase", value=40.0, ts=now_ms + 30_000),
    ]


def _for(customer: str):
    return lambda v: v.get("customer_id") == customer


async def _suppressed(web_url: str) -> dict[str, float]:
    families = await metric_families(web_url)
    return {
        sample.labels["cause"]: sample.value
        for sample in families["nudgeflow_interventions_suppressed"].samples
        if sample.name.endswith("_total")
    }


async def test_the_holdout_is_decided_for_not_sent_and_both_groups_are_counted(
    private_stack, worker_factory
):
    worker = worker_factory(private_stack, holdout_share=SHARE)
    treated, held_out = _customer("treated", False), _customer("held-out", True)
    now = int(time.time() * 1000)

    for customer in (treated, held_out):
        assert (await post(f"{worker.web_url}/v1/events",
                           {"events": _failed_then_bought(customer, now)}))[0] == 202  # fmt: skip

    sent = await read_topic(private_stack.bootstrap, "interventions", _for(treated))
    assert [i["reason"] for i in sent] == ["payment_failure"]
    view = await wait_for_customer(worker.web_url, held_out,
                                   lambda s: s["profile"]["purchases"] == 1)  # fmt: skip
    [recorded] = view["interventions"]
    assert (recorded["reason"], recorded["delivery"]) == ("payment_failure", "holdout")
    assert recorded["converted_ts"] == now + 30_000
    assert await read_topic(private_stack.bootstrap, "interventions", _for(held_out),
                            timeout_s=2) == []  # fmt: skip
    assert (await _suppressed(worker.web_url)).get("holdout", 0) >= 1

    status, body, _ = await get(f"{worker.web_url}/v1/stats/uplift")
    assert status == 200
    report = orjson.loads(body)["reasons"]["payment_failure"]
    for group in ("treated", "holdout"):
        assert report[group]["decisions"] == 1
        assert report[group]["converted"] == report[group]["converted_in_session"] == 1
    assert report["uplift"] == 0.0
    low, high = report["uplift_ci95"]
    assert low < 0 < high


async def test_cooldowns_run_in_event_time(private_stack, worker_factory):
    worker = worker_factory(private_stack)
    customer = unique("cooling")
    now = int(time.time() * 1000)
    burst = [
        event(customer, "click", element="#pay", x=10, y=10, ts=now + i * 200, session_id="s1")
        for i in range(3)
    ]
    # One minute later in event time (sent at once): within the overall cooldown.
    minute_later = [
        event(customer, "search", query=q, results=0, ts=now + MINUTE_MS + i * 5_000,
              session_id="s1")
        for i, q in enumerate(["shoes", "shoe", "sneakers"])
    ]  # fmt: skip
    # Three minutes later, a new visit: past both cooldowns for another reason.
    new_visit = [
        event(customer, "search", query=q, results=0, ts=now + 3 * MINUTE_MS + i * 5_000,
              session_id="s2")
        for i, q in enumerate(["boots", "boot", "wellies"])
    ]  # fmt: skip

    await post(f"{worker.web_url}/v1/events", {"events": burst + minute_later + new_visit})

    sent = await read_topic(private_stack.bootstrap, "interventions", _for(customer),
                            timeout_s=5)  # fmt: skip
    assert [(i["reason"], i["session_id"]) for i in sent] == [
        ("rage_click", "s1"),
        ("search_frustration", "s2"),
    ]
    assert (await _suppressed(worker.web_url)).get("cooldown", 0) >= 1
