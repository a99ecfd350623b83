"""The door of the HTTP API: credentials and rate limits, before a view reads a body.

The rules themselves are pure (``app.access``); this module reads them off an aiohttp
request and the settings, and keeps the buckets. The client address lives only in the
rate-limit buckets, in memory, and only until its bucket is full again: it is never logged,
counted by value or written anywhere.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, cast

from app.access import Access, Credentials, TokenBuckets, TrustedProxies, bucket_key, client_ip

if TYPE_CHECKING:
    from aiohttp import web as aiohttp_web
    from faust.web import Request

    from app.runtime.metrics import Metrics
    from config import Settings

__all__ = ["Guard", "Refusal", "Route"]

log = logging.getLogger(__name__)

# Buckets kept per scope: about 200 bytes each, so 20 MB at most per worker. A bucket is
# dropped as soon as it is full again, so only a flood of distinct clients reaches this.
_MAX_BUCKETS = 100_000
_FORWARDED_FOR = "X-Forwarded-For"


class Route(Enum):
    """What a route does with customer data, which decides the credential it needs."""

    #: ``POST /v1/events``: a secret or a publishable key.
    INGEST = "ingest"
    #: Everything else under ``/v1/`` but the stream: a secret key.
    READ_WRITE = "read_write"
    #: ``GET /v1/interventions/stream``: a secret key or the customer's stream token.
    STREAM = "stream"


@dataclass(slots=True, frozen=True)
class Refusal:
    """A request turned away at the door: its status, JSON body and extra headers."""

    status: int
    body: dict[str, str]
    headers: dict[str, str]


class Guard:
    """Checks credentials and rate limits of the requests to ``/v1/``.

    Parameters
    ----------
    settings
        Keys, stream secret, rate limits and trusted proxies.
    metrics
        ``rate_limited{scope}`` and ``http_refused{reason}`` are counted here.
    clock
        Monotonic seconds (tests move it).
    """

    def __init__(
        self, settings: Settings, metrics: Metrics, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.credentials = Credentials(
            secret_keys=tuple(key.get_secret_value() for key in settings.api_keys),
            ingest_keys=tuple(key.get_secret_value() for key in settings.ingest_keys),
            stream_secret=settings.stream_token_secret.get_secret_value(),
        )
        self._proxies = TrustedProxies(settings.trusted_proxies)
        self._key_buckets = _buckets(settings.rate_limit_key_per_s, settings.rate_limit_key_burst)
        self._ip_buckets = _buckets(settings.rate_limit_ip_per_s, settings.rate_limit_ip_burst)
        self._metrics = metrics
        self._clock = clock
        self._warned_untrusted_forwarding = False

    def admit(
        self, request: Request, route: Route, customer_id: str = "", *, limit: bool = True
    ) -> Refusal | Access:
        """What ``request`` may do on ``route``, or why it is refused (401, 403, 429).

        ``customer_id`` is the raw id a stream request names (its token is checked
        against it). A browser can set no header on ``EventSource`` or ``sendBeacon``:
        on those routes the key may come as ``?api_key=`` too. ``limit`` False: the
        credential is checked, the rate limits are not (a request another worker
        forwards was limited there).
        """
        headers, query = request.headers, request.query
        given = headers.get("X-Api-Key", "")
        if not given and route is not Route.READ_WRITE:
            given = query.get("api_key", "")
        if route is Route.STREAM:
            access = self.credentials.check_stream(given, customer_id, query.get("token", ""))
        else:
            access = self.credentials.check(given)
        # A secret key belongs to a server, which may send for many people from one
        # address: its key's bucket is its limit. Everyone else is also counted by address,
        # before the key is judged, so guessing keys is as slow as any other request.
        if limit and access is not Access.SECRET and self._ip_buckets is not None:
            wait_s = self._ip_buckets.take(self._client_bucket(request), self._clock())
            if wait_s:
                return self._too_many("ip", wait_s)
        if access is Access.DENIED:
            self._metrics.http_refused.labels(reason="unauthorized").inc()
            problem = "X-Api-Key missing or wrong"
            if route is Route.STREAM:
                problem += ", and no valid token for this customer_id"
            return Refusal(401, {"error": problem}, {"WWW-Authenticate": "ApiKey"})
        if access is Access.INGEST and route is not Route.INGEST:
            self._metrics.http_refused.labels(reason="forbidden").inc()
            return Refusal(403, {"error": "X-Api-Key: a publishable key may only send events"}, {})
        if limit and access in (Access.SECRET, Access.INGEST) and self._key_buckets is not None:
            wait_s = self._key_buckets.take(given, self._clock())
            if wait_s:
                return self._too_many("key", wait_s)
        return access

    def refused(self, reason: str) -> None:
        """Count a request a view refused before using its body (415, 408)."""
        self._metrics.http_refused.labels(reason=reason).inc()

    def _client_bucket(self, request: Request) -> str:
        # faust.web.Request is abstract; its aiohttp driver hands views aiohttp's own.
        peer = cast("aiohttp_web.Request", request).remote
        forwarded_for = request.headers.get(_FORWARDED_FOR)
        if forwarded_for and not self._proxies.trusts(peer or ""):
            self._warn_untrusted_forwarding()
        return bucket_key(client_ip(peer, forwarded_for, self._proxies))

    def _warn_untrusted_forwarding(self) -> None:
        if not self._warned_untrusted_forwarding:
            self._warned_untrusted_forwarding = True
            # No address in the message: it would be a client's.
            log.warning(
                "requests carry %s from a peer that is not in NUDGEFLOW_TRUSTED_PROXIES: it "
                "is ignored, and the clients behind such a proxy share its rate limit",
                _FORWARDED_FOR,
            )

    def _too_many(self, scope: str, wait_s: float) -> Refusal:
        self._metrics.rate_limited.labels(scope=scope).inc()
        retry_after_s = max(1, math.ceil(wait_s))
        what = "this API key" if scope == "key" else "this client address"
        return Refusal(
            429,
            {"error": f"rate limit of {what} exceeded, retry in {retry_after_s} s"},
            {"Retry-After": str(retry_after_s)},
        )


def _buckets(rate_per_s: float, burst: int) -> TokenBuckets | None:
    return TokenBuckets(rate_per_s, burst, _MAX_BUCKETS) if rate_per_s > 0 else None
