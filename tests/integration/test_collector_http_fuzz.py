"""Fuzzing a running worker: 2 500 generated and hostile ``POST /v1/events`` requests
(Hypothesis bodies, wrong content types, bodies over the limit), on a stack of its own.

No answer is a 5xx, the worker stays alive, and every event is accounted for: what the
answers say was accepted is on ``clicks``, what they say was rejected (and every body
refused as a whole) is on ``clicks-failed`` with its reason, and the worker's metrics count
exactly that. The document at ``/openapi.json`` of the same worker (demo on) is valid and
names every route it serves.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate

from app.ingest.collector import MAX_BODY_BYTES
from app.runtime.embedded import EmbeddedStack, free_port
from app.runtime.testing import Services, WorkerProcess, start_worker, worker_env
from app.runtime.web import OPENAPI_DOCUMENT
from tests.hostile_bodies import hostile_bodies
from tests.integration.clients import event, get, metric_families, read_topic, unique

pytestmark = pytest.mark.integration

_REQUESTS = 2_500
_CONCURRENCY = 8
_SALT = "fuzzing-salt-0123456789"
_JSON_TYPES = ["application/json", "application/json; charset=utf-8",
               "application/json;charset=UTF-8"]  # fmt: skip
_OTHER_TYPES = ["text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "", "text/html",
                "application/json; charset=utf-16", "multipart/form-data; boundary=zz"]  # fmt: skip


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, WorkerProcess]]:
    root: Path = tmp_path_factory.mktemp("fuzz")
    stack = EmbeddedStack.start(free_port(), free_port(), root / "stack")
    services = Services(stack.broker_url, stack.redis_url, embedded=True)
    env = worker_env(services, root / "worker", demo="true", customer_id_salt=_SALT)
    process = start_worker(env, root / "worker" / "worker.log")
    try:
        yield services, process
    finally:
        process.stop()
        stack.stop()


def _bodies(count: int) -> list[bytes]:
    bodies: list[bytes] = []

    @settings(max_examples=count, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(body=hostile_bodies())
    def collect(body: bytes) -> None:
        bodies.append(body)

    collect()
    return bodies[:count]


def _big_bodies() -> list[bytes]:
    page = "/p" + "x" * 2000
    near_limit = {"events": [event(f"fz-big-{n}", page=page) for n in range(480)]}
    return [b"x" * (MAX_BODY_BYTES + 1), b'{"events": [' + b'"x",' * 300_000 + b'"x"]}',
            orjson.dumps(near_limit)]  # fmt: skip


async def _totals(web_url: str) -> dict[str, float]:
    families = await metric_families(web_url)

    def total(name: str, **labels: str) -> float:
        return sum(s.value for s in families[name].samples if s.name.endswith("_total")
                   and all(s.labels.get(k) == v for k, v in labels.items()))  # fmt: skip

    return {
        "received": total("nudgeflow_events_received", source="http"),
        "rejected": total("nudgeflow_events_rejected"),
        "unsupported": total("nudgeflow_http_refused", reason="unsupported_media_type"),
    }


async def test_hostile_requests_get_no_5xx_and_every_event_is_accounted_for(fuzzed):
    services, worker = fuzzed
    rng = random.Random(11)
    bodies = _bodies(_REQUESTS - 3) + _big_bodies()
    requests = [(body, rng.choice(_JSON_TYPES) if rng.random() < 0.9 else rng.choice(_OTHER_TYPES))
                for body in bodies]  # fmt: skip
    before = await _totals(worker.web_url)
    statuses: Counter[int] = Counter()
    accepted = rejected = refused_bodies = unsupported = 0
    url = f"{worker.web_url}/v1/events"
    connector = aiohttp.TCPConnector(limit=_CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def send(body: bytes, content_type: str) -> tuple[int, object]:
            headers = {"Content-Type": content_type}  # "" sends the header empty
            async with session.post(url, data=body, headers=headers) as response:
                return response.status, orjson.loads(await response.read())

        answers = await asyncio.gather(*(send(body, kind) for body, kind in requests))
    for status, answer in answers:
        statuses[status] += 1
        assert isinstance(answer, dict)
        if "accepted" in answer:
            assert status in (202, 400)
            accepted += answer["accepted"]
            rejected += answer["rejected"]
            assert len(answer["errors"]) == answer["rejected"]
        elif status == 415:
            unsupported += 1
        else:
            assert status in (400, 413) and answer["error"]
            refused_bodies += 1
    assert not [s for s in statuses if s >= 500], statuses
    assert set(statuses) <= {202, 400, 413, 415}, statuses
    assert statuses[202] > 100 and statuses[400] > 100 and statuses[413] >= 2

    # The worker is alive and still takes events.
    assert worker.process.poll() is None
    assert (await get(f"{worker.web_url}/healthz"))[0] == 200
    after = await _totals(worker.web_url)
    assert after["received"] - before["received"] == accepted + rejected
    assert after["rejected"] - before["rejected"] == rejected + refused_bodies
    assert after["unsupported"] - before["unsupported"] == unsupported

    # What the answers said is what the topics hold (this stack has no other sender).
    on_clicks = await read_topic(services.bootstrap, "clicks", lambda r: True, want=accepted,
                                 timeout_s=60, settle_s=1.0)  # fmt: skip
    failed = await read_topic(services.bootstrap, "clicks-failed", lambda r: True,
                              want=rejected + refused_bodies, timeout_s=60,
                              settle_s=1.0)  # fmt: skip
    assert len(on_clicks) == accepted
    assert len(failed) == rejected + refused_bodies
    assert all(r["reason"] and r["error"] and r["source"] == "http" for r in failed)
    # Under the salt, no raw customer id reached Kafka.
    assert all(len(r["customer_id"]) == 64 for r in on_clicks)
    assert not any(isinstance(r.get("payload"), dict)
                   and str(r["payload"].get("customer_id", "")).startswith("fz-")
                   for r in failed)  # fmt: skip
    print(
        f"\n{len(requests)} requests: {dict(statuses)}; {accepted} events accepted, "
        f"{rejected} rejected, {refused_bodies} bodies refused, {unsupported} not JSON"
    )


async def test_the_served_openapi_document_is_valid_and_every_route_answers(fuzzed):
    _, worker = fuzzed
    status, body, headers = await get(f"{worker.web_url}/openapi.json")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert body == OPENAPI_DOCUMENT
    document = orjson.loads(body)
    validate(document)
    customer = unique("openapi")
    concrete = {"/v1/customers/{customer_id}": f"/v1/customers/{customer}",
                "/demo/{file}": "/demo/index.html"}  # fmt: skip
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        for path, item in document["paths"].items():
            for method, operation in item.items():
                if method == "get" and path == "/v1/interventions/stream":
                    url = f"{worker.web_url}{path}?customer_id={customer}"
                else:
                    url = f"{worker.web_url}{concrete.get(path, path)}"
                data = orjson.dumps(event(customer)) if method == "post" else None
                headers = {"Content-Type": "application/json"} if data else {}
                async with session.request(method.upper(), url, data=data, headers=headers,
                                           allow_redirects=False) as response:  # fmt: skip
                    documented = set(operation["responses"])
                    assert str(response.status) in documented, (method, path, response.status)
        async with session.get(f"{worker.web_url}/v1/undocumented") as response:
            assert response.status == 404
