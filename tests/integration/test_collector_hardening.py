"""The collector facing the internet: rate limits, content types, slow clients, and no
client address kept anywhere (README: security).

Each test speaks from its own loopback address (127.0.0.x), so each has buckets of its own;
the worker trusts 127.0.0.2 only as a proxy.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis

from app.runtime.embedded import EmbeddedStack, free_port
from app.runtime.testing import Services, WorkerProcess, start_worker, worker_env
from tests.integration.clients import event, metric_families, read_topic, unique

pytestmark = pytest.mark.integration

SECRET, KEY_LIMITED, PUBLISHABLE = "secret-key", "secret-two", "pk-shop"
_PROXY = "127.0.0.2"
_IDLE_TIMEOUT_S, _BODY_TIMEOUT_S = 2.0, 1.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, Path]]:
    root = tmp_path_factory.mktemp("hardening")
    embedded = EmbeddedStack.start(free_port(), free_port(), root / "stack")
    try:
        yield Services(embedded.broker_url, embedded.redis_url, embedded=True), root
    finally:
        embedded.stop()


@pytest.fixture(scope="module")
def limited(stack: tuple[Services, Path]) -> Iterator[WorkerProcess]:
    services, root = stack
    env = worker_env(
        services, root / "worker", api_keys=f"{SECRET},{KEY_LIMITED}", ingest_keys=PUBLISHABLE,
        rate_limit_ip_per_s="0.5", rate_limit_ip_burst="3", rate_limit_key_per_s="0.5",
        rate_limit_key_burst="20", trusted_proxies=_PROXY,
        http_idle_timeout_s=str(_IDLE_TIMEOUT_S), http_body_timeout_s=str(_BODY_TIMEOUT_S),
    )  # fmt: skip
    process = start_worker(env, root / "worker" / "worker.log")
    try:
        yield process
    finally:
        process.stop()


@asynccontextmanager
async def client_at(address: str) -> AsyncIterator[aiohttp.ClientSession]:
    """A client whose requests come from ``address`` (any 127.0.0.0/8 address works)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0), force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


async def send(
    session: aiohttp.ClientSession, web_url: str, headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, dict[str, str], object]:  # fmt: skip
    data = body if body is not None else orjson.dumps(event(unique("rl")))
    headers = {"Content-Type": "application/json", **(headers or {})}
    async with session.post(f"{web_url}/v1/events", data=data, headers=headers) as response:
        return response.status, dict(response.headers), orjson.loads(await response.read())


async def _rate_limited(web_url: str) -> dict[str, float]:
    families = await metric_families(web_url)
    return {s.labels["scope"]: s.value for s in families["nudgeflow_rate_limited"].samples
            if s.name.endswith("_total")}  # fmt: skip


async def test_an_address_gets_its_burst_then_429_with_retry_after(limited):
    before = await _rate_limited(limited.web_url)
    async with client_at("127.0.0.10") as session:
        # No key: refused, but counted first, so guessing keys is as slow as anything else.
        assert [(await send(session, limited.web_url))[0] for _ in range(3)] == [401] * 3
        status, headers, body = await send(session, limited.web_url)
        assert status == 429
        assert int(headers["Retry-After"]) >= 1
        assert "rate limit" in body["error"]
        await asyncio.sleep(int(headers["Retry-After"]))
        assert (await send(session, limited.web_url))[0] == 401  # a token again
    after = await _rate_limited(limited.web_url)
    assert after["ip"] == before["ip"] + 1 and after["key"] == before["key"]


async def test_a_publishable_key_is_limited_by_address(limited):
    async with client_at("127.0.0.13") as session:
        statuses = [(await send(session, limited.web_url, {"X-Api-Key": PUBLISHABLE}))[0]
                    for _ in range(4)]  # fmt: skip
    assert statuses == [202, 202, 202, 429]


async def test_a_secret_key_is_limited_by_its_key_not_its_address(limited):
    before = await _rate_limited(limited.web_url)
    async with client_at("127.0.0.12") as session:
        statuses = [(await send(session, limited.web_url, {"X-Api-Key": KEY_LIMITED}))[0]
                    for _ in range(21)]  # fmt: skip
    # 20 > the address burst (3): the address does not count; the key's burst (20) does.
    assert statuses == [202] * 20 + [429]
    after = await _rate_limited(limited.web_url)
    assert after["key"] == before["key"] + 1


async def test_x_forwarded_for_is_ignored_from_an_untrusted_peer(limited):
    async with client_at("127.0.0.11") as session:
        statuses = [
            (await send(session, limited.web_url, {"X-Forwarded-For": f"198.51.100.{n}"}))[0]
            for n in range(4)
        ]
    assert statuses == [401, 401, 401, 429]


async def test_x_forwarded_for_names_the_client_behind_a_trusted_proxy(limited):
    async with client_at(_PROXY) as session:
        # Six clients behind the proxy, one request each: none is limited.
        for n in range(6):
            headers = {"X-Forwarded-For": f"203.0.113.{n}"}
            assert (await send(session, limited.web_url, headers))[0] == 401
        # One client, its own address written first by itself: the proxy's entry counts.
        statuses = [
            (await send(session, limited.web_url,
                        {"X-Forwarded-For": f"6.6.6.{n}, 203.0.113.77"}))[0]
            for n in range(4)
        ]  # fmt: skip
    assert statuses == [401, 401, 401, 429]


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain;charset=UTF-8",  # sendBeacon of a string
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "",
    ],
)
async def test_a_body_that_is_not_json_gets_415(limited, content_type):
    address = f"127.0.1.{abs(hash(content_type)) % 200 + 1}"
    async with client_at(address) as session:
        status, _, body = await send(
            session, limited.web_url, {"X-Api-Key": SECRET, "Content-Type": content_type}
        )
    assert status == 415 and body["error"].startswith("Content-Type:")


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/json;charset=UTF-8"],
)
async def test_json_with_or_without_a_charset_is_accepted(limited, content_type):
    async with client_at("127.0.0.14") as session:
        status, _, _ = await send(
            session, limited.web_url, {"X-Api-Key": SECRET, "Content-Type": content_type}
        )
    assert status == 202


async def test_a_body_that_is_not_what_its_encoding_says_is_400(limited):
    async with client_at("127.0.0.15") as session:
        status, _, body = await send(
            session, limited.web_url, {"X-Api-Key": SECRET, "Content-Encoding": "gzip"},
            body=b"not gzip at all",
        )  # fmt: skip
    assert status == 400, body


def _port(web_url: str) -> int:
    return int(web_url.rsplit(":", 1)[1])


def _raw_connection(web_url: str, address: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", _port(web_url)), timeout=10,
                                    source_address=(address, 0))  # fmt: skip
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _closed(sock: socket.socket) -> bool:
    sock.settimeout(0.01)
    try:
        return sock.recv(65536) == b""
    except (TimeoutError, BlockingIOError):
        return False
    except OSError:  # reset
        return True


def _trickle_until_closed(sock: socket.socket, chunks: Iterator[bytes], limit_s: float) -> float:
    """Send a chunk every 0.25 s until the server closes the connection; its time."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        try:
            sock.sendall(next(chunks))
        except OSError:
            return time.monotonic() - started
        if _closed(sock):
            return time.monotonic() - started
        time.sleep(0.25)
    raise AssertionError(f"the connection was still open after {limit_s} s")


def _header_bytes() -> Iterator[bytes]:
    yield b"POST /v1/events HTTP/1.1\r\nHost: x\r\n"
    n = 0
    while True:
        n += 1
        yield f"X-Slow-{n}: y\r\n".encode()


async def test_a_client_trickling_its_headers_is_cut_off(limited):
    def run() -> float:
        with _raw_connection(limited.web_url, "127.0.0.16") as sock:
            return _trickle_until_closed(sock, _header_bytes(), limit_s=_IDLE_TIMEOUT_S + 8)

    elapsed = await asyncio.to_thread(run)
    assert _IDLE_TIMEOUT_S - 0.5 <= elapsed <= _IDLE_TIMEOUT_S + 3


async def test_an_idle_connection_is_closed(limited):
    def run() -> float:
        with _raw_connection(limited.web_url, "127.0.0.17") as sock:
            return _trickle_until_closed(sock, iter(lambda: b"", None), _IDLE_TIMEOUT_S + 8)

    elapsed = await asyncio.to_thread(run)
    assert elapsed <= _IDLE_TIMEOUT_S + 3


async def test_a_client_trickling_its_body_gets_408_and_is_cut_off(limited):
    head = (
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"X-Api-Key: {SECRET}\r\nContent-Length: 1000\r\n\r\n"
    ).encode()

    def run() -> tuple[float, bytes]:
        with _raw_connection(limited.web_url, "127.0.0.18") as sock:
            sock.sendall(head)
            started = time.monotonic()
            answer = b""
            while time.monotonic() - started < _BODY_TIMEOUT_S + 8:
                try:
                    sock.sendall(b" ")
                    sock.settimeout(0.25)
                    chunk = sock.recv(65536)
                except (TimeoutError, BlockingIOError):
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                answer += chunk
            return time.monotonic() - started, answer

    elapsed, answer = await asyncio.to_thread(run)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"not received within" in answer
    # The answer, then at most aiohttp's lingering time (2 s) reading what still comes.
    assert elapsed <= _BODY_TIMEOUT_S + 2 + 2


async def test_no_client_address_is_kept_anywhere(limited, stack):
    services, _ = stack
    marker = unique("no-ip")
    async with client_at(_PROXY) as session:
        forwarded = {"X-Forwarded-For": "198.51.100.234", "X-Api-Key": SECRET}
        bad = event(marker, "teleport")
        good = event(marker)
        status, _, _ = await send(session, limited.web_url, forwarded,
                                  orjson.dumps({"events": [good, bad]}))  # fmt: skip
        assert status == 202
        assert (await send(session, limited.web_url, forwarded, b"{garbage " + marker.encode()))[
            0
        ] == 400
    # A malformed request, which aiohttp logs as an error "from <address>".
    with _raw_connection(limited.web_url, "127.0.0.19") as sock:
        sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
        assert b" 400 Bad Request" in sock.recv(65536)
    accepted = await read_topic(services.bootstrap, "clicks",
                                lambda r: r.get("customer_id") == marker)  # fmt: skip
    failed = await read_topic(
        services.bootstrap, "clicks-failed", lambda r: marker in orjson.dumps(r).decode(), want=2
    )
    assert accepted and len(failed) == 2
    everything = orjson.dumps([accepted, failed]).decode() + limited.log_path.read_text(
        errors="replace"
    )
    client = aioredis.from_url(services.redis_url)
    try:
        keys = [key.decode(errors="replace") async for key in client.scan_iter()]
    finally:
        await client.aclose()
    everything += " ".join(keys)
    # The worker's own address (127.0.0.1) is in its log; its clients' are nowhere.
    clients = ["198.51.100.234", "203.0.113.77", _PROXY] + [f"127.0.0.{n}" for n in range(10, 20)]
    assert "Error handling request" in everything  # the malformed request was logged
    assert [address for address in clients if address in everything] == []
