"""Server-sent interventions (contract §3): the shared reader on the real Redis, and
``GET /v1/interventions/stream`` on real workers, up to 1 000 open streams."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
import psutil
import pytest
import redis.asyncio as aioredis

from app.deliver.sse import KEEP_ALIVE, InterventionHub, Subscription, intervention_events
from app.runtime.embedded import free_port
from app.runtime.testing import Services, WorkerProcess
from tests.integration.clients import event, get, metric_families, post, unique

pytestmark = pytest.mark.integration

STREAM = "nudgeflow:interventions"
MINUTE_MS = 60_000


# --- a client of the stream -----------------------------------------------------------------


class EventStream:
    """An open ``GET /v1/interventions/stream``, read in the background: its messages
    (``event``, ``id``, ``data``) and how many comments (heartbeats) came."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.messages: list[dict[str, str]] = []
        self.comments = 0
        self.ended = asyncio.Event()
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            async for raw in self.response.content:
                line = raw.decode().removesuffix("\n")
                if line.startswith(":"):
                    self.comments += 1
                elif line:
                    name, _, value = line.partition(": ")
                    fields[name] = value
                    continue
                elif fields:
                    self.messages.append(fields)
                    fields = {}
                self._changed.set()
        except (aiohttp.ClientError, ConnectionError):
            pass
        finally:
            self.ended.set()
            self._changed.set()

    async def wait_until(
        self, done: Callable[[EventStream], bool], timeout_s: float = 10.0
    ) -> None:
        async with asyncio.timeout(timeout_s):
            while not done(self):
                assert not self.ended.is_set(), f"stream ended; got {self.messages}"
                self._changed.clear()
                await self._changed.wait()

    async def close(self) -> None:
        self.response.close()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


@contextlib.asynccontextmanager
async def open_stream(
    web_url: str, headers: dict[str, str] | None = None, **query: str
) -> AsyncIterator[EventStream]:
    async with aiohttp.ClientSession() as session:
        response = await session.get(f"{web_url}/v1/interventions/stream", params=query,
                                     headers=headers or {})  # fmt: skip
        assert response.status == 200, (response.status, await response.text())
        stream = EventStream(response)
        try:
            yield stream
        finally:
            await stream.close()


async def redis_entries(redis_url: str, customer: str) -> list[tuple[str, dict[str, Any]]]:
    """The customer's entries on the interventions stream: (entry id, intervention)."""
    client = aioredis.from_url(redis_url)
    try:
        entries = await client.xrange(STREAM)
    finally:
        await client.aclose()
    decoded = [(i.decode(), orjson.loads(f[b"data"])) for i, f in entries]
    return [(i, value) for i, value in decoded if value.get("customer_id") == customer]


async def wait_for_entries(redis_url: str, customer: str, want: int) -> list[tuple[str, Any]]:
    deadline = time.monotonic() + 15
    while len(found := await redis_entries(redis_url, customer)) < want:
        assert time.monotonic() < deadline, f"{customer}: {len(found)} entries, not {want}"
        await asyncio.sleep(0.05)
    return found


def received(stream: EventStream) -> list[tuple[str, Any]]:
    assert all(m["event"] == "intervention" for m in stream.messages), stream.messages
    return [(m["id"], orjson.loads(m["data"])) for m in stream.messages]


def payment_failed(customer: str, **fields: Any) -> dict[str, Any]:
    return event(customer, "payment_failed", error="declined", **fields)


def rage_clicks_at(customer: str, ts: int, **fields: Any) -> list[dict[str, Any]]:
    """Three clicks on one button 200 ms apart from ``ts`` (a rage click)."""
    return [event(customer, "click", ts=ts + 200 * i, element="#pay", x=100 + i, y=200, **fields)
            for i in range(3)]  # fmt: skip


async def sse_clients(web_url: str) -> float:
    family = (await metric_families(web_url))["nudgeflow_sse_clients"]
    return family.samples[0].value


# --- the shared reader, in this process, on a stream key of each test's own -----------------


@pytest.fixture
async def hub_factory(
    redis: aioredis.Redis, services: Services
) -> AsyncIterator[Callable[..., InterventionHub]]:
    hubs: list[InterventionHub] = []
    clients: list[aioredis.Redis] = []

    def _make(stream: str, **kwargs: Any) -> InterventionHub:
        client = aioredis.from_url(services.redis_url, client_name=stream.replace(":", "-"))
        clients.append(client)
        hubs.append(InterventionHub(client, stream=stream, **kwargs))
        return hubs[-1]

    try:
        yield _make
    finally:
        for hub in hubs:
            await hub.stop()
        for client in clients:
            await client.aclose()
        if hubs:
            await redis.delete(*(hub.stream for hub in hubs))


async def xadd(redis: aioredis.Redis, stream: str, customer: str, n: int = 0) -> str:
    data = orjson.dumps({"intervention_id": f"i-{customer}-{n}", "customer_id": customer})
    return (await redis.xadd(stream, {"data": data})).decode()


async def next_entries(subscription: Subscription, want: int) -> list[str]:
    """The ids of the next ``want`` entries a subscription gets (fails after 5 s)."""
    ids: list[str] = []
    async with asyncio.timeout(5):
        while len(ids) < want:
            batch = await subscription.next_batch(5)
            assert batch is not None, "subscription closed"
            ids += [entry_id for entry_id, _ in batch]
    return ids


async def test_the_reader_fans_entries_out_to_their_customers_subscriptions(redis, hub_factory):
    stream = unique("sse-hub")
    hub = hub_factory(stream)
    first, second, other = (await hub.subscribe("c-1"), await hub.subscribe("c-1"),
                            await hub.subscribe("c-2"))  # fmt: skip

    ids = [await xadd(redis, stream, "c-1", 1), await xadd(redis, stream, "c-3"),
           await xadd(redis, stream, "c-2"), await xadd(redis, stream, "c-1", 2)]  # fmt: skip
    await redis.xadd(stream, {"data": b"not json"})  # skipped, reads on
    await redis.xadd(stream, {"other": b"field"})
    last = await xadd(redis, stream, "c-2", 2)

    assert await next_entries(first, 2) == [ids[0], ids[3]]
    assert await next_entries(second, 2) == [ids[0], ids[3]]
    assert await next_entries(other, 2) == [ids[2], last]
    assert hub.subscribers == 3


async def test_the_reader_starts_with_the_first_subscriber_and_stops_with_the_last(
    redis, hub_factory
):
    stream = unique("sse-hub")
    hub = hub_factory(stream)
    name = stream.replace(":", "-")

    async def blocked_readers() -> int:
        await asyncio.sleep(0.2)
        return sum(c["name"] == name and c["cmd"] == "xread" for c in await redis.client_list())

    assert await blocked_readers() == 0
    subscriptions = [await hub.subscribe(f"c-{n}") for n in range(50)]
    assert await blocked_readers() == 1  # one XREAD for every subscription
    for subscription in subscriptions[:-1]:
        hub.unsubscribe(subscription)
    assert await blocked_readers() == 1
    hub.unsubscribe(subscriptions[-1])
    assert await blocked_readers() == 0
    assert hub.subscribers == 0

    again = await hub.subscribe("c-1")  # a new reader, from the stream's end
    entry_id = await xadd(redis, stream, "c-1")
    assert await next_entries(again, 1) == [entry_id]


async def test_stop_ends_every_subscription(hub_factory):
    hub = hub_factory(unique("sse-hub"))
    subscriptions = [await hub.subscribe("c-1"), await hub.subscribe("c-2")]

    await hub.stop()

    assert [await s.next_batch(5) for s in subscriptions] == [None, None]
    assert hub.subscribers == 0
    late = await hub.subscribe("c-1")  # a stream opened while the worker stops ends at once
    assert await late.next_batch(5) is None


async def test_a_subscriber_that_does_not_keep_up_is_dropped_alone(redis, hub_factory, caplog):
    stream = unique("sse-hub")
    hub = hub_factory(stream, max_pending=2)
    stuck, reading = await hub.subscribe("c-1"), await hub.subscribe("c-1")

    with caplog.at_level(logging.WARNING, logger="app.deliver.sse"):
        ids = []
        for n in range(5):  # one at a time, so the reading one never holds more than one
            ids.append(await xadd(redis, stream, "c-1", n))
            assert await next_entries(reading, 1) == ids[-1:]

    assert await stuck.next_batch(5) is None
    assert hub.subscribers == 1
    assert "SSE client of customer c-1 dropped" in caplog.text


async def test_a_redis_that_refuses_fails_the_subscription():
    client = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    hub = InterventionHub(client)

    with pytest.raises(aioredis.ConnectionError):
        await hub.subscribe("c-1")
    assert hub.subscribers == 0
    await hub.stop()
    await client.aclose()


async def test_heartbeats_while_nothing_arrives(hub_factory):
    hub = hub_factory(unique("sse-hub"))
    subscription = await hub.subscribe("c-1")
    chunks = intervention_events(hub, subscription, None, heartbeat_s=0.2)

    started = time.monotonic()
    async with contextlib.aclosing(chunks):
        assert [await anext(chunks), await anext(chunks)] == [KEEP_ALIVE, KEEP_ALIVE]
    assert 0.4 <= time.monotonic() - started < 2


async def test_resume_replays_the_missed_entries_then_live_ones_each_once(redis, hub_factory):
    stream = unique("sse-hub")
    hub = hub_factory(stream)
    seen = await xadd(redis, stream, "c-1", 0)  # the client's Last-Event-ID
    await xadd(redis, stream, "c-2", 0)
    subscription, witness = await hub.subscribe("c-1"), await hub.subscribe("c-1")
    # Added after the subscription and before the replay: both the live reader and the
    # replay have them; the stream must carry each once.
    missed = [await xadd(redis, stream, "c-1", n) for n in (1, 2)]
    assert await next_entries(witness, 2) == missed  # the reader has fanned them out
    chunks = intervention_events(hub, subscription, seen, heartbeat_s=30)

    async with contextlib.aclosing(chunks):
        replayed = await anext(chunks)
        live = await xadd(redis, stream, "c-1", 3)
        following = await anext(chunks)

    assert ids_of(replayed) == missed
    assert ids_of(following) == [live]


async def test_resume_pages_through_a_long_stream(redis, hub_factory):
    stream = unique("sse-hub")
    hub = hub_factory(stream)
    seen = await xadd(redis, stream, "c-1", 0)
    async with redis.pipeline(transaction=False) as pipe:
        for n in range(1, 1_201):  # over two replay pages of other customers' entries
            pipe.xadd(stream, {"data": orjson.dumps({"customer_id": f"c-{n % 7 + 2}"})})
            if n % 400 == 0:
                pipe.xadd(stream, {"data": orjson.dumps({"customer_id": "c-1", "n": n})})
        await pipe.execute()
    subscription = await hub.subscribe("c-1")

    replayed = [entry async for page in hub.replay("c-1", seen) for entry in page]

    assert [orjson.loads(data)["n"] for _, data in replayed] == [400, 800, 1200]
    hub.unsubscribe(subscription)


def ids_of(chunk: bytes) -> list[str]:
    return [line[4:] for line in chunk.decode().split("\n") if line.startswith("id: ")]


# --- through a worker -----------------------------------------------------------------------


async def test_a_subscriber_gets_its_customers_intervention_and_no_one_elses(worker, services):
    customer, other = unique("sse"), unique("sse-other")
    async with (
        open_stream(worker.web_url, customer_id=customer) as mine,
        open_stream(worker.web_url, customer_id=other) as theirs,
    ):
        headers = mine.response.headers
        assert headers["Content-Type"] == "text/event-stream"
        assert headers["Cache-Control"] == "no-cache"
        assert headers["X-Accel-Buffering"] == "no"
        assert await sse_clients(worker.web_url) >= 2

        assert (await post(f"{worker.web_url}/v1/events", payment_failed(customer)))[0] == 202
        await mine.wait_until(lambda s: len(s.messages) >= 1)

        [(entry_id, intervention)] = await redis_entries(services.redis_url, customer)
        assert intervention["reason"] == "payment_failure"
        [message] = mine.messages
        assert message["event"] == "intervention"
        assert message["id"] == entry_id
        assert orjson.loads(message["data"]) == intervention

        assert (await post(f"{worker.web_url}/v1/events", payment_failed(other)))[0] == 202
        await theirs.wait_until(lambda s: len(s.messages) >= 1)
        await asyncio.sleep(0.5)
        assert [i["customer_id"] for _, i in received(theirs)] == [other]
        assert [i["customer_id"] for _, i in received(mine)] == [customer]


async def test_last_event_id_resumes_with_exactly_the_missed_interventions(worker, services):
    customer = unique("sse-resume")
    now = int(time.time() * 1000)
    collector = f"{worker.web_url}/v1/events"

    async def send(events: list[dict[str, Any]]) -> None:
        assert (await post(collector, {"events": events}))[0] == 202

    # One visit each, far enough apart in event time for the policy's cooldowns.
    async with open_stream(worker.web_url, customer_id=customer) as first:
        await send([payment_failed(customer, session_id="s1", ts=now - 27 * MINUTE_MS)])
        await first.wait_until(lambda s: len(s.messages) >= 1)
        [(first_id, _)] = received(first)

    await send([payment_failed(customer, session_id="s2", ts=now - 16 * MINUTE_MS)])
    await send(rage_clicks_at(customer, now - 13 * MINUTE_MS, session_id="s3"))
    missed = (await wait_for_entries(services.redis_url, customer, 3))[1:]
    assert {i["reason"] for _, i in missed} == {"payment_failure", "rage_click"}

    async with open_stream(worker.web_url, {"Last-Event-ID": first_id},
                           customer_id=customer) as resumed:  # fmt: skip
        await resumed.wait_until(lambda s: len(s.messages) >= len(missed))
        await send([payment_failed(customer, session_id="s4", ts=now - MINUTE_MS)])
        everything = await wait_for_entries(services.redis_url, customer, len(missed) + 2)
        await resumed.wait_until(lambda s: len(s.messages) >= len(everything) - 1)
        await asyncio.sleep(0.5)  # nothing more comes
        assert received(resumed) == everything[1:]

    # ?last_event_id= does the same, for EventSource polyfills that cannot set the header.
    async with open_stream(worker.web_url, customer_id=customer,
                           last_event_id=everything[-2][0]) as polyfill:  # fmt: skip
        await polyfill.wait_until(lambda s: len(s.messages) >= 1)
        await asyncio.sleep(0.3)
        assert received(polyfill) == everything[-1:]


async def test_keys_cors_and_bad_requests(private_stack, worker_factory):
    worker = worker_factory(private_stack, api_keys="key-one", cors_origins="https://shop.example")
    url = f"{worker.web_url}/v1/interventions/stream"
    shop = {"Origin": "https://shop.example"}

    for query, headers in [("customer_id=c1", {}), ("customer_id=c1&api_key=nope", {}),
                           ("customer_id=c1", {"X-Api-Key": "nope", **shop})]:  # fmt: skip
        status, body, answered = await get(f"{url}?{query}", headers)
        assert status == 401, (query, headers, body)
    assert answered["Access-Control-Allow-Origin"] == "https://shop.example"  # readable: 401

    async with open_stream(worker.web_url, {"X-Api-Key": "key-one", **shop},
                           customer_id="c1") as by_header:  # fmt: skip
        assert by_header.response.headers["Access-Control-Allow-Origin"] == "https://shop.example"
        assert by_header.response.headers["Vary"] == "Origin"
    async with open_stream(worker.web_url, {"Origin": "https://evil.example"},
                           customer_id="c1", api_key="key-one") as by_query:  # fmt: skip
        assert "Access-Control-Allow-Origin" not in by_query.response.headers

    async with aiohttp.ClientSession() as session:
        preflight = {**shop, "Access-Control-Request-Method": "GET",
                     "Access-Control-Request-Headers": "last-event-id, x-api-key"}  # fmt: skip
        async with session.options(url, headers=preflight) as response:
            assert response.status == 204
            assert "Last-Event-ID" in response.headers["Access-Control-Allow-Headers"]

    key = {"X-Api-Key": "key-one"}
    for query, headers, error in [
        ("", key, "customer_id: required"),
        ("customer_id=", key, "customer_id: required"),
        (f"customer_id={'x' * 129}", key, "customer_id: required"),
        ("customer_id=c1", {**key, "Last-Event-ID": "$"}, "Last-Event-ID"),
        ("customer_id=c1&last_event_id=12", key, "Last-Event-ID"),
    ]:
        status, body, _ = await get(f"{url}?{query}", headers)
        assert status == 400 and error in orjson.loads(body)["error"], (query, body)


async def test_no_stream_without_redis(private_stack, worker_factory):
    nowhere = Services(private_stack.broker_url, f"redis://127.0.0.1:{free_port()}/0", True)
    worker = worker_factory(nowhere)

    status, body, headers = await get(f"{worker.web_url}/v1/interventions/stream?customer_id=c1")

    assert (status, headers.get("Retry-After")) == (503, "5"), body
    assert orjson.loads(body) == {"error": "intervention stream unavailable, retry"}


async def cpu_share(process: psutil.Process, seconds: float) -> float:
    """The share of one core ``process`` used over the next ``seconds``."""
    before = process.cpu_times()
    await asyncio.sleep(seconds)
    after = process.cpu_times()
    return (after.user - before.user + after.system - before.system) / seconds


async def test_a_thousand_idle_streams_are_cheap(private_stack, worker_factory):
    # Heartbeats every 4 s (NUDGEFLOW_SSE_HEARTBEAT_S), not 15: one round within 5 s of idling.
    worker: WorkerProcess = worker_factory(private_stack, sse_heartbeat_s=4)
    process = psutil.Process(worker.process.pid)
    customers = [unique("sse-many") for _ in range(1_000)]
    url = f"{worker.web_url}/v1/interventions/stream"
    await asyncio.sleep(2)  # past the start-up work
    cpu_before = await cpu_share(process, 4)
    rss_before = process.memory_info().rss

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        opening = time.monotonic()
        responses = await asyncio.gather(
            *(session.get(url, params={"customer_id": c}) for c in customers)
        )
        open_s = time.monotonic() - opening
        assert {r.status for r in responses} == {200}
        streams = [EventStream(r) for r in responses]
        assert await sse_clients(worker.web_url) == 1_000
        await asyncio.sleep(1)
        rss_per_stream = (process.memory_info().rss - rss_before) / 1_000

        sending = time.monotonic()
        await post(f"{worker.web_url}/v1/events", payment_failed(customers[500]))
        await streams[500].wait_until(lambda s: len(s.messages) >= 1, timeout_s=5)
        intervention_s = time.monotonic() - sending
        assert [i["customer_id"] for _, i in received(streams[500])] == [customers[500]]

        cpu_open = await cpu_share(process, 5)  # idle but for one round of heartbeats
        assert all(s.comments >= 1 for s in streams), "every stream had a heartbeat"
        assert sum(len(s.messages) for s in streams) == 1

        for stream in streams[:500]:  # the worker notices at their next heartbeat
            await stream.close()
        async with asyncio.timeout(20):
            while await sse_clients(worker.web_url) != 500:
                await asyncio.sleep(0.2)

        stopping = time.monotonic()
        await asyncio.to_thread(worker.stop)
        stop_s = time.monotonic() - stopping
        async with asyncio.timeout(5):
            await asyncio.gather(*(s.ended.wait() for s in streams[500:]))
        for stream in streams:
            await stream.close()

    print(f"\n1 000 SSE streams on one worker: opened in {open_s:.1f} s, "
          f"RSS +{rss_per_stream / 1024:.1f} KiB per stream, "
          f"CPU {cpu_before:.1%} of a core idle -> {cpu_open:.1%} with the streams open, "
          f"intervention to its subscriber in {intervention_s * 1000:.0f} ms, "
          f"worker stopped with 500 open in {stop_s:.1f} s")  # fmt: skip
    assert rss_per_stream < 64 * 1024
    assert cpu_open < cpu_before + 0.25
    assert intervention_s < 2
    assert stop_s < 15
