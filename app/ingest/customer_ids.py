"""Pseudonymous customer ids: ``NUDGEFLOW_CUSTOMER_ID_SALT``.

With a salt, the collector replaces each event's ``customer_id`` with the hex HMAC-SHA256 of
it (UTF-8), keyed with the salt (UTF-8), before the event enters Kafka: topics, tables,
Redis and interventions then hold only the pseudonym (64 hex characters, within the
contract's 128). The same function turns the raw id a caller gives over HTTP (feedback, the
customer view, the interventions stream) into the pseudonym the state is kept under.

Producers that write to the ``clicks`` topic directly must hash the id themselves, with this
function or its equivalent, e.g.
``printf %s "$customer_id" | openssl dgst -sha256 -hmac "$salt"``.

Pure: no I/O, no settings.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

__all__ = [
    "PSEUDONYM_LENGTH",
    "hash_customer_id",
    "is_pseudonym",
    "pseudonymise_payload",
    "resolve_customer_id",
]

#: Characters of a hashed customer id (hex SHA-256).
PSEUDONYM_LENGTH = 64
_HEX = frozenset("0123456789abcdef")


def hash_customer_id(customer_id: str, salt: str) -> str:
    """The pseudonym of ``customer_id``: hex HMAC-SHA256 keyed with ``salt``.

    Examples
    --------
    >>> hash_customer_id("c-42", "a-long-random-salt-value")[:16]
    'e9dbdb8f0d39f0f8'
    >>> len(hash_customer_id("c-42", "a-long-random-salt-value"))
    64
    """
    # surrogatepass: an id from a URL may hold lone surrogates; it hashes, never raises.
    return hmac.new(
        salt.encode("utf-8", "surrogatepass"),
        customer_id.encode("utf-8", "surrogatepass"),
        hashlib.sha256,
    ).hexdigest()


def is_pseudonym(customer_id: str) -> bool:
    """Whether ``customer_id`` has the form of a hashed id (64 lowercase hex characters).

    Examples
    --------
    >>> is_pseudonym(hash_customer_id("c-42", "a-long-random-salt-value")), is_pseudonym("c-42")
    (True, False)
    """
    return len(customer_id) == PSEUDONYM_LENGTH and _HEX.issuperset(customer_id)


def pseudonymise_payload(payload: object, salt: str) -> object:
    """A rejected event as it may be kept on ``clicks-failed`` under a salt: an object with
    its ``customer_id`` hashed (whatever its JSON type), and ``None`` for anything else
    (a value that is not an object could hold a raw id anywhere).

    Not mutated: an object is copied.

    Examples
    --------
    >>> salt = "a-long-random-salt-value"
    >>> kept = pseudonymise_payload({"customer_id": "c-42", "type": "nope"}, salt)
    >>> kept["customer_id"][:8], kept["type"]
    ('e9dbdb8f', 'nope')
    >>> pseudonymise_payload("c-42 typed as a string", salt) is None
    True
    """
    if not isinstance(payload, dict):
        return None
    kept: dict[str, Any] = dict(payload)
    customer_id = kept.get("customer_id")
    if customer_id is not None:
        text = customer_id if isinstance(customer_id, str) else repr(customer_id)
        kept["customer_id"] = hash_customer_id(text, salt)
    return kept


def resolve_customer_id(given: str, salt: str, known: str | None) -> str:
    """The stored id a caller means by ``given``: ``known`` (the id nudgeflow holds, e.g. an
    intervention's) when ``given`` is it or its raw form, else the pseudonym of ``given``.

    A chatbot may quote an intervention's (hashed) ``customer_id`` or the shop's raw one;
    both name the same customer.

    Examples
    --------
    >>> salt = "a-long-random-salt-value"
    >>> stored = hash_customer_id("c-42", salt)
    >>> resolve_customer_id("c-42", salt, stored) == stored
    True
    >>> resolve_customer_id(stored, salt, stored) == stored
    True
    >>> resolve_customer_id("c-43", salt, stored) == hash_customer_id("c-43", salt)
    True
    """
    pseudonym = hash_customer_id(given, salt)
    if known is not None and given == known:
        return known
    return pseudonym
