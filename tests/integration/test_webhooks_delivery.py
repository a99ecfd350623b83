"""Webhooks (contract §3) from a worker on the real broker to a local receiver.

One embedded stack and one worker serve the module: the worker POSTs every
intervention to five routes of one local receiver, each behaving differently
(answers at once, fails twice, always fails, asks to wait, hangs), so the tests
also show that one receiver's trouble does not hold the others. Each test follows
its own customers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition

from app.deliver.webhooks import verify
from app.runtime.compat import fetch_true_highwaters
from app.runtime.embedded import EmbeddedStack, free_port
from app.runtime.testing import Services, WorkerProcess, start_worker, worker_env
from app.runtime.topics import INTERVENTIONS, INTERVENTIONS_WEBHOOK_FAILED
from tests.integration.clients import event, metric_families, post, read_topic, unique

pytestmark = pytest.mark.integration

SECRET = "whsec-integration-test"
TIMEOUT_S = 1.5
ATTEMPTS = 3
# Jittered waits stay under 0.05 s and 0.1 s; the maximum leaves room for a Retry-After.
BACKOFF_S = 0.05
BACKOFF_MAX_S = 2.0
RETRY_AFTER_S = 1
ROUTES = ("ok", "flaky", "down", "limited", "hang")
PARTITIONS = 8


@dataclass
class Received:
    """One request the receiver got, and when (monotonic and Unix seconds)."""

    route: str
    headers: dict[str, str]
    body: bytes
    at_s: float
    unix_s: float

    @property
    def intervention(self) -> dict[str, Any]:
        value: dict[str, Any] = orjson.loads(self.body)
        return value


class Receiver:
    """A webhook receiver on a free port: ``/ok`` answers 200, ``/flaky`` 500 twice per
    intervention then 200, ``/down`` always 500, ``/limited`` 429 with ``Retry-After``
    once per intervention then 200, ``/hang`` answers only when the module ends."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.requests: list[Received] = []
        self.released = asyncio.Event()
        self._tries: Counter[tuple[str, str]] = Counter()
        self._runner: web.AppRunner | None = None

    def url(self, route: str) -> str:
        return f"{self.base_url}/{route}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{route}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        self.released.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        route = request.match_info["route"]
        body = await request.read()
        self.requests.append(
            Received(route, dict(request.headers), body, time.monotonic(), time.time())
        )
        intervention_id = request.headers.get("X-Nudgeflow-Intervention-Id", "")
        self._tries[route, intervention_id] += 1
        tries = self._tries[route, intervention_id]
        if route == "ok":
            return web.Response(status=200)
        if route == "flaky":
            return web.Response(status=500 if tries <= 2 else 200)
        if route == "limited" and tries == 1:
            return web.Response(status=429, headers={"Retry-After": str(RETRY_AFTER_S)})
        if route == "limited":
            return web.Response(status=204)
        if route == "hang":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.released.wait(), 60.0)
            return web.Response(status=200)
        return web.Response(status=500, text="receiver down")

    def of(self, customer_id: str, route: str) -> list[Received]:
        return [
            r
            for r in self.requests
            if r.route == route and r.intervention.get("customer_id") == customer_id
        ]

    async def wait_for(
        self, customer_id: str, route: str, want: int = 1, timeout_s: float = 15.0
    ) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while len(found := self.of(customer_id, route)) < want:
            assert time.monotonic() < deadline, f"{route}: {len(found)} of {want} requests"
            await asyncio.sleep(0.02)
        return found


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    embedded = EmbeddedStack.start(
        free_port(), free_port(), tmp_path_factory.mktemp("webhooks-stack")
    )
    try:
        yield Services(embedded.broker_url, embedded.redis_url, embedded=True)
    finally:
        embedded.stop()


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def webhook_settings(receiver: Receiver, **overrides: str) -> dict[str, str]:
    settings = {
        "webhook_urls": ",".join(receiver.url(route) for route in ROUTES),
        "webhook_secret": SECRET,
        "webhook_timeout_s": str(TIMEOUT_S),
        "webhook_max_attempts": str(ATTEMPTS),
        "webhook_backoff_s": str(BACKOFF_S),
        "webhook_backoff_max_s": str(BACKOFF_MAX_S),
        "topic_partitions": str(PARTITIONS),
    }
    return {**settings, **overrides}


@pytest.fixture(scope="module")
def worker(
    stack: Services, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    data_dir = tmp_path_factory.mktemp("webhooks-worker")
    process = start_worker(
        worker_env(stack, data_dir, **webhook_settings(receiver)), data_dir / "worker.log"
    )
    try:
        yield process
    finally:
        process.stop()


async def payment_failed(worker: WorkerProcess, customer_id: str) -> None:
    failed = event(customer_id, "payment_failed", step="payment", error="declined")
    status, body = await post(f"{worker.web_url}/v1/events", failed)
    assert status == 202, body


def for_customer(customer_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda value: value.get("customer_id") == customer_id


def independent_signature(body: bytes, t: str) -> str:
    """Contract §3's v1, computed here without nudgeflow's code."""
    return hmac.new(SECRET.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()


async def test_a_receiver_gets_a_correctly_signed_post(
    stack: Services, receiver: Receiver, worker: WorkerProcess
) -> None:
    customer = unique("hook-ok")
    await payment_failed(worker, customer)

    [request] = await receiver.wait_for(customer, "ok")
    [intervention] = await read_topic(stack.bootstrap, INTERVENTIONS, for_customer(customer))

    assert request.intervention == intervention
    assert intervention["reason"] == "payment_failure"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Nudgeflow-Intervention-Id"] == intervention["intervention_id"]
    fields = dict(
        item.split("=", 1) for item in request.headers["X-Nudgeflow-Signature"].split(",")
    )
    assert set(fields) == {"t", "v1"}
    assert fields["v1"] == independent_signature(request.body, fields["t"])
    assert abs(int(fields["t"]) - time.time()) < 60
    assert verify(request.headers["X-Nudgeflow-Signature"], request.body, SECRET, 300, time.time())
    assert not verify(request.headers["X-Nudgeflow-Signature"], request.body, "other", 300,
                      time.time())  # fmt: skip


async def test_a_receiver_that_fails_twice_gets_it_on_the_third_try(
    stack: Services, receiver: Receiver, worker: WorkerProcess
) -> None:
    customer = unique("hook-flaky")
    await payment_failed(worker, customer)

    tries = await receiver.wait_for(customer, "flaky", want=3)
    await asyncio.sleep(0.5)  # no fourth try comes

    assert len(receiver.of(customer, "flaky")) == 3
    assert len({t.intervention["intervention_id"] for t in tries}) == 1
    for attempt in tries:  # each try is signed when it is sent
        signature = attempt.headers["X-Nudgeflow-Signature"]
        assert verify(signature, attempt.body, SECRET, 300, time.time())
    dead = await read_topic(stack.bootstrap, INTERVENTIONS_WEBHOOK_FAILED,
                            lambda v: v["url"] == receiver.url("flaky")
                            and v["intervention"]["customer_id"] == customer,
                            timeout_s=1.0)  # fmt: skip
    assert dead == []


async def test_a_receiver_that_always_fails_gets_a_dead_letter(
    stack: Services, receiver: Receiver, worker: WorkerProcess
) -> None:
    customer = unique("hook-down")
    await payment_failed(worker, customer)

    [failure] = await read_topic(stack.bootstrap, INTERVENTIONS_WEBHOOK_FAILED,
                                 lambda v: v["url"] == receiver.url("down")
                                 and v["intervention"]["customer_id"] == customer)  # fmt: skip
    [intervention] = await read_topic(stack.bootstrap, INTERVENTIONS, for_customer(customer))

    assert failure["intervention"] == intervention
    assert (failure["attempts"], failure["status"], failure["error"]) == (ATTEMPTS, 500, "HTTP 500")
    assert abs(failure["failed_ts"] / 1000 - time.time()) < 60
    assert len(receiver.of(customer, "down")) == ATTEMPTS
    families = await metric_families(worker.web_url)
    deliveries = {s.labels["outcome"]: s.value for s in families["nudgeflow_webhook_deliveries"]
                  .samples if s.name.endswith("_total")}  # fmt: skip
    assert deliveries["failed"] >= 1 and deliveries["retried"] >= ATTEMPTS - 1
    assert deliveries["delivered"] >= 1
    errors = {s.labels["channel"]: s.value for s in families["nudgeflow_delivery_errors"].samples
              if s.name.endswith("_total")}  # fmt: skip
    assert errors["webhook"] >= 1
    latency = families["nudgeflow_webhook_latency_seconds"].samples
    assert any(s.name.endswith("_count") and s.value >= ATTEMPTS for s in latency)


async def test_retry_after_is_honoured(receiver: Receiver, worker: WorkerProcess) -> None:
    customer = unique("hook-limited")
    await payment_failed(worker, customer)

    first, second = await receiver.wait_for(customer, "limited", want=2)

    # The jittered backoff alone would wait at most BACKOFF_S.
    assert second.at_s - first.at_s >= RETRY_AFTER_S - 0.05


async def test_a_hanging_receiver_holds_neither_the_click_stream_nor_other_receivers(
    stack: Services, receiver: Receiver, worker: WorkerProcess
) -> None:
    customers = [unique("hook-hang") for _ in range(5)]
    await payment_failed(worker, customers[0])
    await receiver.wait_for(customers[0], "hang")  # the hanging receiver holds a POST now

    for customer in customers[1:]:
        await payment_failed(worker, customer)
    on_kafka = await read_topic(stack.bootstrap, INTERVENTIONS,
                                lambda v: v["customer_id"] in customers, want=len(customers),
                                timeout_s=5.0)  # fmt: skip
    assert sorted(i["customer_id"] for i in on_kafka) == sorted(customers)
    for intervention in on_kafka:
        # Emitted as at any other time, and taken by the other receivers well before
        # a single hanging POST times out.
        emitted_s = intervention["emitted_ts"] / 1000
        assert emitted_s - intervention["event_ts"] / 1000 < 1.0
        [ok] = await receiver.wait_for(intervention["customer_id"], "ok")
        assert ok.unix_s - emitted_s < TIMEOUT_S

    [failure] = await read_topic(stack.bootstrap, INTERVENTIONS_WEBHOOK_FAILED,
                                 lambda v: v["url"] == receiver.url("hang")
                                 and v["intervention"]["customer_id"] == customers[0],
                                 timeout_s=TIMEOUT_S * ATTEMPTS + 10)  # fmt: skip
    assert (failure["attempts"], failure["status"]) == (ATTEMPTS, None)
    assert failure["error"] == f"no answer within {TIMEOUT_S} s"


async def test_offsets_are_committed_once_every_receiver_is_done(
    stack: Services, receiver: Receiver, worker: WorkerProcess
) -> None:
    customer = unique("hook-commit")
    await payment_failed(worker, customer)
    await read_topic(stack.bootstrap, INTERVENTIONS, for_customer(customer))
    tps = [TopicPartition(INTERVENTIONS, p) for p in range(PARTITIONS)]
    ends = await fetch_true_highwaters([stack.bootstrap], tps)

    # The hanging receiver gives up last: after ATTEMPTS timeouts.
    deadline = time.monotonic() + TIMEOUT_S * ATTEMPTS + 15
    while (committed := await committed_offsets(stack, tps)) != ends:
        assert time.monotonic() < deadline, f"committed {committed}, ends {ends}"
        await asyncio.sleep(0.2)
    assert len(receiver.of(customer, "hang")) == ATTEMPTS


async def committed_offsets(
    stack: Services, tps: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """The webhook group's committed offsets (0 where none), read without joining it."""
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, group_id="nudgeflow-webhooks",
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    try:
        return {tp: await consumer.committed(tp) or 0 for tp in tps}
    finally:
        await consumer.stop()


def test_urls_without_a_secret_stop_the_worker_at_start(
    stack: Services, receiver: Receiver, worker_factory: Callable[..., WorkerProcess]
) -> None:
    with pytest.raises(RuntimeError, match="NUDGEFLOW_WEBHOOK_SECRET") as error:
        worker_factory(stack, **webhook_settings(receiver, webhook_secret=""))
    assert "exited with 1" in str(error.value)
