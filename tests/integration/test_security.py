"""API keys and CORS on a worker that requires them (contract §1, HTTP collector)."""

from __future__ import annotations

import aiohttp
import pytest

from tests.integration.clients import event, post, unique

pytestmark = pytest.mark.integration


@pytest.fixture
def secured_worker(private_stack, worker_factory):
    return worker_factory(private_stack, api_keys="key-one,key-two",
                          cors_origins="https://shop.example")  # fmt: skip


async def test_api_key_is_required_when_configured(secured_worker):
    url = f"{secured_worker.web_url}/v1/events"
    body = event(unique("keys"))
    assert (await post(url, body))[0] == 401
    assert (await post(url, body, {"X-Api-Key": "wrong"}))[0] == 401
    assert (await post(url, body, {"X-Api-Key": "key-two"}))[0] == 202


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
