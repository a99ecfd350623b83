"""NUDGEFLOW_CUSTOMER_ID_SALT on a running worker: raw customer ids never reach Kafka or
Redis, and the shop's raw id still works over HTTP (the stream, the customer view,
feedback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis

from app.access import stream_token
from app.ingest.customer_ids import hash_customer_id
from app.runtime.embedded import EmbeddedStack, free_port
from app.runtime.testing import Services, WorkerProcess, start_worker, worker_env
from tests.integration.clients import event, get, post, rage_clicks, read_topic, unique
from tests.integration.test_sse_stream import open_stream, received

pytestmark = pytest.mark.integration

SALT, KEY, STREAM_SECRET = "the-shops-salt-0123456789", "server-key", "stream-secret-0123456789"
_KEYED = {"X-Api-Key": KEY}


@pytest.fixture(scope="module")
def salted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, WorkerProcess]]:
    root: Path = tmp_path_factory.mktemp("salted")
    stack = EmbeddedStack.start(free_port(), free_port(), root / "stack")
    services = Services(stack.broker_url, stack.redis_url, embedded=True)
    env = worker_env(services, root / "worker", customer_id_salt=SALT, api_keys=KEY,
                     stream_token_secret=STREAM_SECRET)  # fmt: skip
    process = start_worker(env, root / "worker" / "worker.log")
    try:
        yield services, process
    finally:
        process.stop()
        stack.stop()


async def test_the_raw_id_opens_the_stream_reads_the_view_and_gives_feedback(salted):
    services, worker = salted
    raw = unique("raw-customer")
    pseudonym = hash_customer_id(raw, SALT)
    token = stream_token(raw, STREAM_SECRET)  # minted by the shop's backend for its page
    async with open_stream(worker.web_url, customer_id=raw, token=token) as stream:
        status, _ = await post(f"{worker.web_url}/v1/events",
                               {"events": rage_clicks(raw)}, _KEYED)  # fmt: skip
        assert status == 202
        await stream.wait_until(lambda s: len(s.messages) >= 1)
    [(_, intervention)] = received(stream)
    assert intervention["customer_id"] == pseudonym

    # The customer view, by the shop's raw id or by the pseudonym an intervention carries.
    for asked in (raw, pseudonym):
        status, body, _ = await get(f"{worker.web_url}/v1/customers/{asked}", _KEYED)
        assert status == 200, (asked, body)
        assert orjson.loads(body)["customer_id"] == pseudonym
    assert (await get(f"{worker.web_url}/v1/customers/{unique('never')}", _KEYED))[0] == 404

    # Feedback with either id; another customer's is refused.
    feedback = {"intervention_id": intervention["intervention_id"], "outcome": "shown",
                "ts": intervention["event_ts"]}  # fmt: skip
    for given in (raw, pseudonym):
        status, answer = await post(f"{worker.web_url}/v1/feedback",
                                    {**feedback, "customer_id": given}, _KEYED)  # fmt: skip
        assert status == 202, answer
    status, _ = await post(f"{worker.web_url}/v1/feedback",
                           {**feedback, "customer_id": unique("other")}, _KEYED)  # fmt: skip
    assert status == 409

    # Nothing under the raw id in Kafka or Redis; the events and the rejects are there.
    await post(f"{worker.web_url}/v1/events", event(raw, "teleport"), _KEYED)
    await post(f"{worker.web_url}/v1/events", f"<<not json {raw}>>".encode(), _KEYED)
    on_clicks = await read_topic(services.bootstrap, "clicks",
                                 lambda r: r.get("customer_id") == pseudonym, want=3)  # fmt: skip
    assert len(on_clicks) == 3
    failed = await read_topic(services.bootstrap, "clicks-failed", lambda r: True, want=2,
                              settle_s=0.5)  # fmt: skip
    assert {r["reason"] for r in failed} >= {"unknown_type", "invalid_json"}
    assert any(r.get("payload", {}) and r["payload"]["customer_id"] == pseudonym
               for r in failed)  # fmt: skip
    topics = ["clicks", "clicks-failed", "interventions", "intervention-feedback"]
    for topic in topics:
        records = await read_topic(services.bootstrap, topic, lambda r: True, want=10**6,
                                   timeout_s=2)  # fmt: skip
        assert raw not in orjson.dumps(records).decode(), topic
    client = aioredis.from_url(services.redis_url)
    try:
        dump = []
        async for key in client.scan_iter():
            dump.append(key)
            kind = (await client.type(key)).decode()
            if kind == "stream":
                dump.append(repr(await client.xrange(key)).encode())
            elif kind == "hash":
                dump.append(repr(await client.hgetall(key)).encode())
            elif kind == "string":
                dump.append(await client.get(key) or b"")
            elif kind == "set":
                dump.append(repr(await client.smembers(key)).encode())
    finally:
        await client.aclose()
    assert raw.encode() not in b" ".join(dump)
    assert pseudonym.encode() in b" ".join(dump)
