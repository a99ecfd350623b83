"""API keys, publishable keys, stream tokens and CORS on a worker that requires keys
(contract §1, HTTP collector; README: security)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from app.access import stream_token
from app.runtime.embedded import EmbeddedStack, free_port
from app.runtime.testing import Services, WorkerProcess, start_worker, worker_env
from tests.integration.clients import event, get, metric_families, post, unique

pytestmark = pytest.mark.integration

SECRET, OTHER_SECRET, PUBLISHABLE = "key-one", "key-two", "pk-browser-key"
STREAM_SECRET = "stream-secret-of-the-shop-backend"


@pytest.fixture(scope="module")
def secured_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """One worker requiring keys, on a stack of its own, for the whole module."""
    root: Path = tmp_path_factory.mktemp("secured")
    stack = EmbeddedStack.start(free_port(), free_port(), root / "stack")
    services = Services(stack.broker_url, stack.redis_url, embedded=True)
    env = worker_env(services, root / "worker", api_keys=f"{SECRET},{OTHER_SECRET}",
                     ingest_keys=PUBLISHABLE, stream_token_secret=STREAM_SECRET,
                     cors_origins="https://shop.example")  # fmt: skip
    process = start_worker(env, root / "worker" / "worker.log")
    try:
        yield process
    finally:
        process.stop()
        stack.stop()


async def test_api_key_is_required_when_configured(secured_worker):
    url = f"{secured_worker.web_url}/v1/events"
    body = event(unique("keys"))
    assert (await post(url, body))[0] == 401
    assert (await post(url, body, {"X-Api-Key": "wrong"}))[0] == 401
    assert (await post(url, body, {"X-Api-Key": OTHER_SECRET}))[0] == 202


# Every route under /v1/ that reads or writes customer data, with a request that passes
# the door; what each answers past it does not matter here (404, 400, 503 ...).
_GUARDED = [
    ("POST", "/v1/events", "events"),
    ("POST", "/v1/feedback", "feedback"),
    ("GET", "/v1/customers/{customer}", None),
    ("GET", "/v1/stats/uplift", None),
    ("GET", "/v1/interventions/stream?customer_id={customer}", None),
]


async def _call(web_url: str, method: str, path: str, headers: dict[str, str]) -> int:
    customer = unique("door")
    url = web_url + path.format(customer=customer)
    bodies = {"/v1/events": event(customer),
              "/v1/feedback": {"intervention_id": "i-unknown", "customer_id": customer,
                               "outcome": "shown", "ts": event(customer)["ts"]}}  # fmt: skip
    if method == "POST":
        return (await post(url, bodies[path], headers))[0]
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(url, headers=headers) as response,
    ):
        return response.status  # a stream is left at its headers


@pytest.mark.parametrize(("method", "path", "_name"), _GUARDED, ids=[p for _, p, _ in _GUARDED])
async def test_every_customer_data_route_needs_a_key(secured_worker, method, path, _name):
    url = secured_worker.web_url
    assert await _call(url, method, path, {}) == 401
    assert await _call(url, method, path, {"X-Api-Key": "key-one-but-longer"}) == 401
    assert await _call(url, method, path, {"X-Api-Key": SECRET}) not in (401, 403)


@pytest.mark.parametrize(
    ("method", "path", "_name"), _GUARDED[1:], ids=[p for _, p, _ in _GUARDED[1:]]
)
async def test_a_publishable_key_only_sends_events(secured_worker, method, path, _name):
    assert await _call(secured_worker.web_url, method, path, {"X-Api-Key": PUBLISHABLE}) == 403


async def test_a_publishable_key_sends_events_in_a_header_or_the_url(secured_worker):
    url = f"{secured_worker.web_url}/v1/events"
    customer = unique("publishable")
    assert (await post(url, event(customer), {"X-Api-Key": PUBLISHABLE}))[0] == 202
    # sendBeacon sets no header: the key comes in the URL.
    assert (await post(f"{url}?api_key={PUBLISHABLE}", event(customer)))[0] == 202
    assert (await post(f"{url}?api_key=pk-wrong", event(customer)))[0] == 401


async def test_the_customer_view_takes_no_key_from_the_url(secured_worker):
    status, _, _ = await get(f"{secured_worker.web_url}/v1/customers/c-1?api_key={SECRET}")
    assert status == 401


async def test_a_stream_token_opens_its_customers_stream_only(secured_worker):
    base = f"{secured_worker.web_url}/v1/interventions/stream"
    customer = unique("token")
    token = stream_token(customer, STREAM_SECRET)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.get(base, params={"customer_id": customer, "token": token}) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/event-stream"
        other = {"customer_id": unique("someone-else"), "token": token}
        async with session.get(base, params=other) as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"] == "ApiKey"
        wrong_secret = stream_token(customer, "not-the-stream-secret-at-all")
        async with session.get(base, params={"customer_id": customer, "token": wrong_secret}) as r:
            assert r.status == 401


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json",
                                  "/v1/tracker.js"])  # fmt: skip
async def test_operations_routes_stay_open(secured_worker, path):
    status, _, _ = await get(f"{secured_worker.web_url}{path}")
    assert status == 200


async def test_refusals_are_counted_without_keys_or_addresses(secured_worker):
    await post(f"{secured_worker.web_url}/v1/events", event(unique("count")), {"X-Api-Key": "x"})
    await get(f"{secured_worker.web_url}/v1/stats/uplift", {"X-Api-Key": PUBLISHABLE})
    families = await metric_families(secured_worker.web_url)
    refused = {s.labels["reason"]: s.value for s in families["nudgeflow_http_refused"].samples
               if s.name.endswith("_total")}  # fmt: skip
    assert refused["unauthorized"] >= 1 and refused["forbidden"] >= 1
    _, body, _ = await get(f"{secured_worker.web_url}/metrics")
    text = body.decode()
    assert "127.0.0.1" not in text and "key-one" not in text and PUBLISHABLE not in text


async def test_cors_allows_only_the_configured_origins(secured_worker):
    url = f"{secured_worker.web_url}/v1/events"
    async with aiohttp.ClientSession() as session:
        preflight = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
        async with session.options(url, headers=preflight) as response:
            assert response.status in (200, 204)
            assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example"
            assert "X-Api-Key" in response.headers["Access-Control-Allow-Headers"]
        async with session.options(
            url, headers={**preflight, "Origin": "https://evil.example"}
        ) as response:
            assert "Access-Control-Allow-Origin" not in response.headers


async def test_keys_are_compared_in_constant_time_and_never_leak_into_the_log(secured_worker):
    # Many wrong keys, some sharing a prefix with a real one: all refused alike.
    url = f"{secured_worker.web_url}/v1/customers/c-1"
    tries = ["k", "key", "key-on", "key-one-", "KEY-ONE", "key-one\u00e9", "\ud800"]
    statuses = []
    for given in tries:
        try:
            status, _, _ = await get(url, {"X-Api-Key": given})
        except (UnicodeEncodeError, ValueError):  # the client cannot send it: fine
            continue
        statuses.append(status)
    assert statuses and set(statuses) == {401}
    await asyncio.sleep(0.2)
    log = secured_worker.log_path.read_text(errors="replace")
    assert SECRET not in log and PUBLISHABLE not in log and STREAM_SECRET not in log
