"""Customer id pseudonyms under NUDGEFLOW_CUSTOMER_ID_SALT (app/ingest/customer_ids.py)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from app.ingest.customer_ids import (
    PSEUDONYM_LENGTH,
    hash_customer_id,
    is_pseudonym,
    pseudonymise_payload,
    resolve_customer_id,
)

SALT = "a-salt-of-at-least-16-characters"


@pytest.mark.parametrize("customer_id", ["c-1", "x" * 128, "ü-ñ-日本", "\U0001f600", "a/b?c"])
def test_the_pseudonym_is_hex_hmac_sha256(customer_id):
    expected = hmac.new(SALT.encode(), customer_id.encode(), hashlib.sha256).hexdigest()
    pseudonym = hash_customer_id(customer_id, SALT)
    assert pseudonym == expected
    assert len(pseudonym) == PSEUDONYM_LENGTH <= 128 and is_pseudonym(pseudonym)


def test_the_salt_matters_and_the_hash_is_stable():
    assert hash_customer_id("c-1", SALT) == hash_customer_id("c-1", SALT)
    assert hash_customer_id("c-1", SALT) != hash_customer_id("c-1", SALT + "x")
    assert hash_customer_id("c-1", SALT) != hash_customer_id("c-2", SALT)


def test_an_id_with_lone_surrogates_hashes():
    assert is_pseudonym(hash_customer_id("\udcff\ud800", SALT))


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [("0" * 64, True), ("a" * 64, True), ("A" * 64, False), ("0" * 63, False),
     ("g" * 64, False), ("0" * 65, False), ("", False)],
)  # fmt: skip
def test_is_pseudonym(candidate, expected):
    assert is_pseudonym(candidate) is expected


def test_pseudonymise_payload_copies_and_hashes():
    payload = {"customer_id": "c-1", "event_id": "e-1", "props": {"a": 1}}
    kept = pseudonymise_payload(payload, SALT)
    assert kept == {**payload, "customer_id": hash_customer_id("c-1", SALT)}
    assert payload["customer_id"] == "c-1"  # not mutated


@pytest.mark.parametrize("payload", ["c-1", ["c-1"], 12, None, True])
def test_pseudonymise_payload_keeps_nothing_that_is_not_an_object(payload):
    assert pseudonymise_payload(payload, SALT) is None


def test_pseudonymise_payload_without_customer_id():
    assert pseudonymise_payload({"event_id": "e-1"}, SALT) == {"event_id": "e-1"}


def test_resolve_customer_id_takes_the_raw_or_the_stored_id():
    stored = hash_customer_id("c-1", SALT)
    assert resolve_customer_id("c-1", SALT, stored) == stored
    assert resolve_customer_id(stored, SALT, stored) == stored
    assert resolve_customer_id("c-1", SALT, None) == stored
    assert resolve_customer_id("c-2", SALT, stored) == hash_customer_id("c-2", SALT)
