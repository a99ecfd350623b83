"""The door of the HTTP API (app/runtime/guard.py), on real aiohttp requests and a movable
clock: which credential opens which route, and the order of keys and rate limits."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request
from prometheus_client import CollectorRegistry

from app.access import Access, stream_token
from app.runtime.guard import Guard, Refusal, Route
from app.runtime.metrics import Metrics
from config import Settings

SECRET, PUBLISHABLE, STREAM_SECRET = "secret-key", "pk-shop", "stream-secret-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def guard(**settings: object) -> tuple[Guard, Clock, Metrics]:
    defaults: dict[str, object] = {"api_keys": SECRET, "ingest_keys": PUBLISHABLE,
                                   "stream_token_secret": STREAM_SECRET}  # fmt: skip
    clock = Clock()
    metrics = Metrics.create(CollectorRegistry())
    return Guard(Settings(**{**defaults, **settings}), metrics, clock), clock, metrics


def request(path: str = "/v1/events", peer: str = "203.0.113.9", **headers: str):
    class Transport:
        def get_extra_info(self, name: str, default: object = None) -> object:
            return (peer, 40000) if name == "peername" else default

    return make_mocked_request("GET", path, headers=headers, transport=Transport())


@pytest.mark.parametrize(
    ("route", "path", "headers", "expected"),
    [
        (Route.INGEST, "/v1/events", {"X-Api-Key": SECRET}, Access.SECRET),
        (Route.INGEST, "/v1/events", {"X-Api-Key": PUBLISHABLE}, Access.INGEST),
        (Route.INGEST, f"/v1/events?api_key={PUBLISHABLE}", {}, Access.INGEST),
        (Route.INGEST, "/v1/events", {}, 401),
        (Route.READ_WRITE, "/v1/customers/c", {"X-Api-Key": SECRET}, Access.SECRET),
        (Route.READ_WRITE, "/v1/customers/c", {"X-Api-Key": PUBLISHABLE}, 403),
        (Route.READ_WRITE, f"/v1/customers/c?api_key={SECRET}", {}, 401),  # no key in URLs
        (Route.STREAM, f"/v1/interventions/stream?api_key={SECRET}", {}, Access.SECRET),
        (Route.STREAM, "/v1/interventions/stream", {"X-Api-Key": PUBLISHABLE}, 403),
        (Route.STREAM, "/v1/interventions/stream?token=00", {}, 401),
    ],
)
def test_which_credential_opens_which_route(route, path, headers, expected):
    door, _, _ = guard()
    admitted = door.admit(request(path, **headers), route, customer_id="c-1")
    if isinstance(expected, int):
        assert isinstance(admitted, Refusal) and admitted.status == expected
    else:
        assert admitted is expected


def test_a_stream_token_opens_only_its_customer():
    door, _, _ = guard()
    token = stream_token("c-1", STREAM_SECRET)
    path = f"/v1/interventions/stream?token={token}"
    assert door.admit(request(path), Route.STREAM, customer_id="c-1") is Access.STREAM
    refused = door.admit(request(path), Route.STREAM, customer_id="c-2")
    assert isinstance(refused, Refusal) and refused.status == 401


def test_an_open_deployment_is_limited_by_address_only():
    door, clock, metrics = guard(api_keys="", ingest_keys="", stream_token_secret="",
                                 rate_limit_ip_per_s=1.0, rate_limit_ip_burst=2)  # fmt: skip
    assert [door.admit(request(), Route.READ_WRITE) for _ in range(2)] == [Access.OPEN] * 2
    refused = door.admit(request(), Route.READ_WRITE)
    assert isinstance(refused, Refusal) and refused.status == 429
    assert refused.headers == {"Retry-After": "1"}
    assert door.admit(request(peer="203.0.113.10"), Route.READ_WRITE) is Access.OPEN
    clock.now_s = 1.0
    assert door.admit(request(), Route.READ_WRITE) is Access.OPEN
    assert metrics.rate_limited.labels(scope="ip")._value.get() == 1


def test_wrong_keys_spend_the_address_budget_before_they_are_judged():
    door, _, metrics = guard(rate_limit_ip_per_s=0.1, rate_limit_ip_burst=2)
    statuses = [door.admit(request(**{"X-Api-Key": f"guess-{n}"}), Route.INGEST)
                for n in range(3)]  # fmt: skip
    assert [s.status for s in statuses if isinstance(s, Refusal)] == [401, 401, 429]
    assert statuses[2].headers["Retry-After"] == "10"
    assert metrics.http_refused.labels(reason="unauthorized")._value.get() == 2


def test_a_secret_key_skips_the_address_bucket_and_spends_its_own():
    door, _, metrics = guard(rate_limit_ip_per_s=0.1, rate_limit_ip_burst=1,
                             rate_limit_key_per_s=0.1, rate_limit_key_burst=3)  # fmt: skip
    keyed = {"X-Api-Key": SECRET}
    answers = [door.admit(request(**keyed), Route.READ_WRITE) for _ in range(4)]
    assert answers[:3] == [Access.SECRET] * 3
    assert isinstance(answers[3], Refusal) and answers[3].status == 429
    assert metrics.rate_limited.labels(scope="key")._value.get() == 1
    assert metrics.rate_limited.labels(scope="ip")._value.get() == 0


def test_a_forwarded_request_is_checked_but_not_limited_again():
    door, _, _ = guard(rate_limit_ip_per_s=0.1, rate_limit_ip_burst=1)
    for _ in range(5):
        assert door.admit(request(**{"X-Api-Key": SECRET}), Route.READ_WRITE,
                          limit=False) is Access.SECRET  # fmt: skip
    refused = door.admit(request(), Route.READ_WRITE, limit=False)
    assert isinstance(refused, Refusal) and refused.status == 401


def test_forwarded_for_counts_only_from_a_trusted_proxy(caplog):
    door, _, _ = guard(api_keys="", ingest_keys="", stream_token_secret="",
                       rate_limit_ip_per_s=0.1, rate_limit_ip_burst=1,
                       trusted_proxies="10.0.0.0/8")  # fmt: skip
    behind = [door.admit(request(peer="10.0.0.1", **{"X-Forwarded-For": f"198.51.100.{n}"}),
                         Route.INGEST) for n in range(3)]  # fmt: skip
    assert behind == [Access.OPEN] * 3
    spoofed = [door.admit(request(peer="203.0.113.1", **{"X-Forwarded-For": f"198.51.100.{n}"}),
                          Route.INGEST) for n in range(10, 12)]  # fmt: skip
    assert spoofed[0] is Access.OPEN and isinstance(spoofed[1], Refusal)
    warnings = [r.getMessage() for r in caplog.records if "X-Forwarded-For" in r.getMessage()]
    assert len(warnings) == 1 and "203.0.113.1" not in warnings[0]
