"""``examples/chatbot_consumer.py`` on the real Redis and a real worker: each intervention
handled once, a crashed consumer's entry taken over, duplicates skipped, feedback recorded."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import ResponseError

from app.runtime.embedded import free_port
from examples.chatbot_consumer import STREAM, ChatbotConsumer, Intervention
from tests.integration.clients import event, post, unique, wait_for_customer

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).parents[2] / "examples" / "chatbot_consumer.py"


@pytest.fixture
async def group(redis: aioredis.Redis) -> AsyncIterator[str]:
    """A consumer group of the test's own on the shared stream, destroyed afterwards."""
    name = unique("chatbot")
    try:
        yield name
    finally:
        with contextlib.suppress(ResponseError):  # the test failed before creating it
            await redis.xgroup_destroy(STREAM, name)


@pytest.fixture
async def feedback_receiver() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A stand-in for a worker's ``POST /v1/feedback``: its URL and what it received."""
    received: list[dict[str, Any]] = []

    async def feedback(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({}, status=202)

    app = web.Application()
    app.router.add_post("/v1/feedback", feedback)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        await runner.cleanup()


class Recorder:
    """A handler that records what it handles; with ``hang`` it never returns (a consumer
    that dies mid-handling)."""

    def __init__(self, hang: bool = False) -> None:
        self.handled: list[Intervention] = []
        self.hang = hang
        self.called = asyncio.Event()

    async def __call__(self, intervention: Intervention) -> None:
        self.handled.append(intervention)
        self.called.set()
        if self.hang:
            await asyncio.Event().wait()


def intervention(customer: str, intervention_id: str) -> bytes:
    """A contract intervention (§2) as delivery writes it to the stream."""
    return orjson.dumps({
        "intervention_id": intervention_id, "customer_id": customer, "session_id": "s1",
        "kind": "assist", "reason": "payment_failure", "score": 0.9, "signals": {},
        "explanation": "The payment was declined.", "context": {}, "event_id": "e1",
        "event_ts": 1_714_564_800_000, "emitted_ts": 1_714_564_800_010,
    })  # fmt: skip


async def until(condition: Callable[[], Any], timeout_s: float = 10.0) -> None:
    """Wait until ``condition()`` (or what it awaits to) is true."""
    deadline = time.monotonic() + timeout_s
    while not (await done if inspect.isawaitable(done := condition()) else done):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def pending(redis: aioredis.Redis, group: str) -> int:
    return int((await redis.xpending(STREAM, group))["pending"])


async def test_the_example_handles_an_intervention_once_and_its_feedback_shows(
    worker, services, redis, group, tmp_path
):
    customer = unique("chatbot-customer")
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(EXAMPLE), "--redis-url", services.redis_url, "--group", group,
             "--consumer", "bot-1", "--nudgeflow-url", worker.web_url],
            stdout=stdout, stderr=stderr,
        )  # fmt: skip
    try:

        async def group_exists() -> bool:
            try:
                groups = await redis.xinfo_groups(STREAM)
            except ResponseError:  # no stream yet
                return False
            return any(g["name"].decode() == group for g in groups)

        await until(group_exists)
        failed = event(customer, "payment_failed", error="declined")
        assert (await post(f"{worker.web_url}/v1/events", failed))[0] == 202

        state = await wait_for_customer(
            worker.web_url, customer,
            lambda s: bool(s["interventions"]) and s["interventions"][0].get("outcome")
            == "delivered",
        )  # fmt: skip
        [handled] = state["interventions"]
        assert handled["reason"] == "payment_failure"
        await asyncio.sleep(1)  # nothing more comes
        printed = [line for line in out.read_text().splitlines() if customer in line]
        assert len(printed) == 1 and handled["intervention_id"] in printed[0], printed
        assert await pending(redis, group) == 0
        process.terminate()
        assert process.wait(10) == 0, err.read_text()  # a clean stop on SIGTERM
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


async def test_a_crashed_consumers_entry_is_taken_over(redis, group, feedback_receiver):
    url, feedback = feedback_receiver
    customer, intervention_id = unique("chatbot-customer"), unique("i")
    async with aiohttp.ClientSession() as http:
        dying = Recorder(hang=True)
        crashed = ChatbotConsumer(redis, http, group=group, consumer="bot-1",
                                  nudgeflow_url=url, handler=dying, claim_idle_s=1.0)  # fmt: skip
        await crashed.create_group()
        running = asyncio.create_task(crashed.run(asyncio.Event()))
        await redis.xadd(STREAM, {"data": intervention(customer, intervention_id)})
        await asyncio.wait_for(dying.called.wait(), 10)
        running.cancel()  # killed mid-handling: read, never acknowledged
        await asyncio.gather(running, return_exceptions=True)
        assert await pending(redis, group) == 1

        taking_over = Recorder()
        other = ChatbotConsumer(redis, http, group=group, consumer="bot-2", nudgeflow_url=url,
                                handler=taking_over, claim_idle_s=1.0)  # fmt: skip
        stop = asyncio.Event()
        running = asyncio.create_task(other.run(stop))
        await until(lambda: taking_over.handled)
        await until(lambda: feedback)
        stop.set()
        await asyncio.wait_for(running, 10)

    assert [i["intervention_id"] for i in taking_over.handled] == [intervention_id]
    assert [(f["intervention_id"], f["customer_id"], f["outcome"]) for f in feedback] == [
        (intervention_id, customer, "delivered")
    ]
    assert abs(feedback[0]["ts"] - time.time() * 1000) < 60_000
    assert await pending(redis, group) == 0


async def test_a_restarted_consumer_first_finishes_its_own_pending_entries(
    redis, group, feedback_receiver
):
    url, feedback = feedback_receiver
    intervention_id = unique("i")
    async with aiohttp.ClientSession() as http:

        def consumer(handler: Recorder) -> ChatbotConsumer:
            return ChatbotConsumer(redis, http, group=group, consumer="bot-1", nudgeflow_url=url,
                                   handler=handler, claim_idle_s=600.0)  # fmt: skip

        dying = Recorder(hang=True)
        await consumer(dying).create_group()
        running = asyncio.create_task(consumer(dying).run(asyncio.Event()))
        await redis.xadd(STREAM, {"data": intervention(unique("c"), intervention_id)})
        await asyncio.wait_for(dying.called.wait(), 10)
        running.cancel()  # killed mid-handling, and restarted before its claim ran out
        await asyncio.gather(running, return_exceptions=True)

        restarted = Recorder()
        await consumer(restarted).finish_own_pending()

    assert [i["intervention_id"] for i in restarted.handled] == [intervention_id]
    assert [f["intervention_id"] for f in feedback] == [intervention_id]
    assert await pending(redis, group) == 0


async def test_copies_of_an_intervention_are_handled_once(redis, group, feedback_receiver):
    url, feedback = feedback_receiver
    customer, intervention_id, other_id = unique("c"), unique("i"), unique("i")
    async with aiohttp.ClientSession() as http:
        handler = Recorder()
        consumer = ChatbotConsumer(redis, http, group=group, consumer="bot-1", nudgeflow_url=url,
                                   handler=handler, claim_idle_s=1.0)  # fmt: skip
        await consumer.create_group()
        for data in (intervention(customer, intervention_id), intervention(customer, other_id),
                     intervention(customer, intervention_id)):  # fmt: skip
            await redis.xadd(STREAM, {"data": data})
        stop = asyncio.Event()
        running = asyncio.create_task(consumer.run(stop))
        await until(lambda: len(feedback) >= 2)
        await redis.xadd(STREAM, {"data": intervention(customer, intervention_id)})  # later
        await asyncio.sleep(1)
        stop.set()
        await asyncio.wait_for(running, 10)

    assert [i["intervention_id"] for i in handler.handled] == [intervention_id, other_id]
    assert sorted(f["intervention_id"] for f in feedback) == sorted([intervention_id, other_id])
    assert await pending(redis, group) == 0  # the copies are acknowledged too
