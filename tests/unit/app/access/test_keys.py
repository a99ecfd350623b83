"""Credentials: secret keys, publishable keys, stream tokens (app/access/keys.py)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from app.access import Access, Credentials, stream_token

_CREDS = Credentials(secret_keys=("secret-a", "secret-b"), ingest_keys=("pk-1",),
                     stream_secret="stream-secret-0123456789")  # fmt: skip


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("secret-a", Access.SECRET),
        ("secret-b", Access.SECRET),
        ("pk-1", Access.INGEST),
        ("", Access.DENIED),
        ("secret-", Access.DENIED),
        ("secret-a ", Access.DENIED),
        ("SECRET-A", Access.DENIED),
        ("pk-1pk-1", Access.DENIED),
        ("\udcff", Access.DENIED),  # an undecodable header byte: refused, not an error
        ("secret-a\ud800", Access.DENIED),
    ],
)
def test_check(given, expected):
    assert _CREDS.check(given) is expected


@pytest.mark.parametrize("given", ["", "anything", "secret-a"])
def test_an_open_deployment_needs_no_key(given):
    assert Credentials().check(given) is Access.OPEN
    assert Credentials().check_stream(given, "c-1", "") is Access.OPEN


def test_stream_token_is_hmac_sha256_of_the_customer_id():
    expected = hmac.new(b"stream-secret-0123456789", "c-\u00e9".encode(), hashlib.sha256)
    assert stream_token("c-\u00e9", "stream-secret-0123456789") == expected.hexdigest()


@pytest.mark.parametrize(
    ("key", "customer_id", "token", "expected"),
    [
        ("", "c-1", stream_token("c-1", "stream-secret-0123456789"), Access.STREAM),
        ("", "c-2", stream_token("c-1", "stream-secret-0123456789"), Access.DENIED),
        ("", "c-1", stream_token("c-1", "another-secret-0123456789"), Access.DENIED),
        ("", "c-1", stream_token("c-1", "stream-secret-0123456789").upper(), Access.DENIED),
        ("", "c-1", "", Access.DENIED),
        ("", "\udcff", "x", Access.DENIED),
        ("secret-a", "c-1", "", Access.SECRET),
        ("pk-1", "c-1", "", Access.INGEST),
        ("pk-1", "c-1", stream_token("c-1", "stream-secret-0123456789"), Access.STREAM),
    ],
)
def test_check_stream(key, customer_id, token, expected):
    assert _CREDS.check_stream(key, customer_id, token) is expected


def test_tokens_mean_nothing_without_a_stream_secret():
    creds = Credentials(secret_keys=("secret-a",))
    assert creds.check_stream("", "c-1", stream_token("c-1", "")) is Access.DENIED
