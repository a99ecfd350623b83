"""API keys, publishable ingest keys and per-customer stream tokens.

Three kinds of credential, from most to least powerful:

- a **secret API key** (``NUDGEFLOW_API_KEYS``) reads and writes everything under ``/v1/``;
  it belongs on servers (the shop's backend, chatbot services);
- a **publishable ingest key** (``NUDGEFLOW_INGEST_KEYS``) may only send click events. It is
  meant to be embedded in a shop's pages, so it is public: it can neither read a customer nor
  post feedback;
- a **stream token** opens the server-sent interventions of one customer only: the hex
  HMAC-SHA256 of the ``customer_id`` keyed with ``NUDGEFLOW_STREAM_TOKEN_SECRET``, minted by
  the shop's backend for the page it serves, so a browser's chat widget needs no read key.

Every comparison takes constant time, and every configured key is compared, so the time
taken says nothing about which key (or how much of one) matched.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import Enum

__all__ = ["Access", "Credentials", "stream_token"]


class Access(Enum):
    """What a request's credential allows."""

    #: Keys are not required by this deployment.
    OPEN = "open"
    #: A secret API key: everything under ``/v1/``.
    SECRET = "secret"
    #: A publishable key: ``POST /v1/events`` only.
    INGEST = "ingest"
    #: A stream token: the interventions stream of the customer it was minted for.
    STREAM = "stream"
    #: Keys are required and none (or a wrong one) was given.
    DENIED = "denied"


def stream_token(customer_id: str, secret: str) -> str:
    """The token that opens ``customer_id``'s interventions stream: hex HMAC-SHA256 of the
    id (UTF-8) keyed with the secret (UTF-8). The shop's backend mints it.

    Examples
    --------
    >>> stream_token("c-42", "a-long-random-stream-secret")[:16]
    '9068d141360898ff'
    """
    return hmac.new(_utf8(secret), _utf8(customer_id), hashlib.sha256).hexdigest()


@dataclass(slots=True, frozen=True)
class Credentials:
    """The credentials a deployment accepts (all empty: an open deployment).

    Examples
    --------
    >>> creds = Credentials(secret_keys=("s3cret-key",), ingest_keys=("pk-shop",),
    ...                     stream_secret="a-long-random-stream-secret")
    >>> creds.check("s3cret-key"), creds.check("pk-shop"), creds.check("nope")
    (<Access.SECRET: 'secret'>, <Access.INGEST: 'ingest'>, <Access.DENIED: 'denied'>)
    >>> creds.check_stream("", "c-42", stream_token("c-42", "a-long-random-stream-secret"))
    <Access.STREAM: 'stream'>
    >>> creds.check_stream("pk-shop", "c-42", "")  # an ingest key, which reads nothing
    <Access.INGEST: 'ingest'>
    >>> Credentials().check("")
    <Access.OPEN: 'open'>
    """

    secret_keys: tuple[str, ...] = ()
    ingest_keys: tuple[str, ...] = ()
    stream_secret: str = ""

    @property
    def required(self) -> bool:
        """Whether requests to ``/v1/`` need a credential at all."""
        return bool(self.secret_keys)

    def check(self, given: str) -> Access:
        """What the key ``given`` (``X-Api-Key``, empty when absent) allows."""
        if not self.required:
            return Access.OPEN
        given_bytes = _utf8(given)
        # Compare against every key, without stopping at a match.
        secret = _matches_any(given_bytes, self.secret_keys)
        ingest = _matches_any(given_bytes, self.ingest_keys)
        if secret:
            return Access.SECRET
        return Access.INGEST if ingest else Access.DENIED

    def check_stream(self, given_key: str, customer_id: str, token: str) -> Access:
        """What a request for ``customer_id``'s interventions stream may do: a secret key,
        or a token minted for that very customer, opens it (``STREAM`` for the token);
        otherwise what the key alone allows (``INGEST``, ``DENIED``)."""
        access = self.check(given_key)
        if access in (Access.OPEN, Access.SECRET):
            return access
        if self.stream_secret and token:
            expected = stream_token(customer_id, self.stream_secret).encode()
            if hmac.compare_digest(_utf8(token), expected):
                return Access.STREAM
        return access


def _matches_any(given: bytes, keys: tuple[str, ...]) -> bool:
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given, _utf8(key))
    return matched


def _utf8(text: str) -> bytes:
    # Header and URL values may hold lone surrogates (undecodable bytes): they must
    # compare unequal, not raise.
    return text.encode("utf-8", "surrogatepass")
