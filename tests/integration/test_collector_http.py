"""POST /v1/events against a running worker on the real broker (contract §1)."""

from __future__ import annotations

import orjson
import pytest

from tests.integration.clients import event, post, read_topic, unique, wait_for_customer

pytestmark = pytest.mark.integration


async def test_single_event_is_accepted_and_reaches_customer_state(worker):
    customer = unique("single")
    status, body = await post(f"{worker.web_url}/v1/events", event(customer, "page_view", page="/"))
    assert (status, body) == (202, {"accepted": 1, "rejected": 0, "errors": []})
    state = await wait_for_customer(worker.web_url, customer)
    assert state["profile"]["events"] == 1
    assert state["session"]["page"] == "/"


async def test_mixed_batch_reports_each_rejection_and_keeps_it_on_clicks_failed(worker, services):
    customer = unique("mixed")
    bad_type = event(customer, "teleport")
    no_ts = event(customer)
    del no_ts["ts"]
    batch = {"events": [event(customer), bad_type, event(customer), no_ts]}
    status, body = await post(f"{worker.web_url}/v1/events", batch)
    assert status == 202
    assert body["accepted"] == 2 and body["rejected"] == 2
    assert body["errors"] == [
        {
            "index": 1,
            "event_id": bad_type["event_id"],
            "error": "type: unknown event type 'teleport'",
        },
        {"index": 3, "event_id": no_ts["event_id"], "error": "ts: missing"},
    ]
    failed = await read_topic(services.bootstrap, "clicks-failed", _payload_of(customer), want=2)
    assert sorted(r["reason"] for r in failed) == ["missing_field", "unknown_type"]
    assert {r["payload"]["event_id"] for r in failed} == {bad_type["event_id"], no_ts["event_id"]}


async def test_all_bad_batch_is_400_with_the_same_body_shape(worker):
    customer = unique("allbad")
    status, body = await post(
        f"{worker.web_url}/v1/events", {"events": [event(customer, "nope"), {"event_id": "x"}]}
    )
    assert status == 400
    assert body["accepted"] == 0 and body["rejected"] == 2 and len(body["errors"]) == 2


@pytest.mark.parametrize(
    ("body", "status", "error_start"),
    [
        (b"{not json", 400, "body: not valid JSON"),
        (b"[1, 2]", 400, "body: must be an event object"),
        (orjson.dumps({"events": [{}] * 501}), 400, "events: at most 500 per request"),
        (b'{"events": [' + b'"x",' * 400_000 + b'"x"]}', 413, "body: larger than"),
    ],
    ids=["not-json", "array", "501-events", "1.2-MiB"],
)
async def test_bad_bodies_get_a_clear_error(worker, services, body, status, error_start):
    got_status, got = await post(f"{worker.web_url}/v1/events", body)
    assert got_status == status
    assert got["error"].startswith(error_start)


async def test_bad_body_is_kept_on_clicks_failed(worker, services):
    marker = unique("garbage-body")
    status, _ = await post(f"{worker.web_url}/v1/events", f"<<{marker}>>".encode())
    assert status == 400
    failed = await read_topic(
        services.bootstrap, "clicks-failed", lambda r: marker in r.get("payload_text", "")
    )
    assert failed and failed[0]["reason"] == "invalid_json" and failed[0]["source"] == "http"


async def test_accepted_events_go_to_clicks_keyed_by_customer(worker, services):
    customer = unique("keyed")
    await post(
        f"{worker.web_url}/v1/events", event(customer, "search", query="red shoes", results=0)
    )
    on_clicks = await read_topic(
        services.bootstrap, "clicks", lambda r: r.get("customer_id") == customer
    )
    assert on_clicks[0]["query"] == "red shoes" and isinstance(on_clicks[0]["ts"], int)


def _payload_of(customer: str):
    return lambda r: (
        isinstance(r.get("payload"), dict) and r["payload"].get("customer_id") == customer
    )
