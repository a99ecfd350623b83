"""The webhook signature of contract §3: ``sign`` for senders, ``verify`` for receivers."""

from __future__ import annotations

import hashlib
import hmac

import orjson
import pytest

from app.deliver.webhooks import sign, verify

SECRET = "whsec-test"
T = 1_714_564_800  # 2024-05-01T12:00:00Z
BODY = orjson.dumps({"intervention_id": "3f2a9c0d", "customer_id": "c-1", "reason": "rage_click"})


def expected_mac(body: bytes, secret: str, t: int) -> str:
    """The contract's HMAC, computed here without nudgeflow's code."""
    message = str(t).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def test_known_answer() -> None:
    assert sign(BODY, SECRET, T) == f"t={T},v1={expected_mac(BODY, SECRET, T)}"


def test_known_answer_pinned() -> None:
    # Fixed bytes and a fixed digest: a change of encoding (the "." or the order) shows here.
    body = b'{"intervention_id":"i-1"}'
    assert sign(body, "s3cret", 1_700_000_000) == (
        "t=1700000000,v1=330285e221868814f622cfbd1d13505df1ed04c2e38449d9ff2c292ae2ba3ce5"
    )


@pytest.mark.parametrize(
    ("body", "secret", "t"),
    [
        (b"", SECRET, T),
        (BODY, "", T),
        (BODY, "s\u00e9cr\u00e8t", 0),
        ('{"explanation":"caf\u00e9 \u2615"}'.encode(), SECRET, T),
    ],
)
def test_signature_covers_the_body_bytes_time_and_secret(body: bytes, secret: str, t: int) -> None:
    header = sign(body, secret, t)

    assert header == f"t={t},v1={expected_mac(body, secret, t)}"
    assert verify(header, body, secret, tolerance_s=300, now=t)


@pytest.mark.parametrize("now", [T, T - 300, T + 300, T + 299.5])
def test_verify_accepts_within_the_tolerance(now: float) -> None:
    assert verify(sign(BODY, SECRET, T), BODY, SECRET, tolerance_s=300, now=now)


@pytest.mark.parametrize("now", [T + 301, T - 301, T + 86_400])
def test_verify_refuses_outside_the_tolerance(now: float) -> None:
    assert not verify(sign(BODY, SECRET, T), BODY, SECRET, tolerance_s=300, now=now)


def test_verify_refuses_another_body_or_secret() -> None:
    header = sign(BODY, SECRET, T)

    assert not verify(header, BODY + b" ", SECRET, tolerance_s=300, now=T)
    assert not verify(header, BODY.replace(b"c-1", b"c-2"), SECRET, tolerance_s=300, now=T)
    assert not verify(header, BODY, SECRET + "x", tolerance_s=300, now=T)


def test_verify_refuses_a_signature_moved_to_another_time() -> None:
    mac = expected_mac(BODY, SECRET, T)

    assert not verify(f"t={T + 1},v1={mac}", BODY, SECRET, tolerance_s=300, now=T)


def test_verify_accepts_any_matching_v1_and_ignores_other_keys() -> None:
    good = expected_mac(BODY, SECRET, T)
    old = expected_mac(BODY, "old-secret", T)

    assert verify(f"t={T},v1={old},v1={good}", BODY, SECRET, tolerance_s=300, now=T)
    assert verify(f"t={T}, v0=abc, v1={good}", BODY, SECRET, tolerance_s=300, now=T)
    assert verify(f"v1={good},t={T}", BODY, SECRET, tolerance_s=300, now=T)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        f"t={T}",
        "v1={mac}",
        "t=,v1={mac}",
        f"t=-{T},v1={{mac}}",
        f"t={T}.0,v1={{mac}}",
        "t=\u0661\u0662,v1={mac}",  # digits, but not ASCII ones
        f"t={T},t={T},v1={{mac}}",
        f"t={T},v1={{mac}},junk",
        f"t={T},v1={{mac}}\u00e9",
        f"t={T},v1={{upper}}",  # hex digests are lower case
    ],
)
def test_verify_refuses_malformed_headers(header: str) -> None:
    mac = expected_mac(BODY, SECRET, T)
    header = header.format(mac=mac, upper=mac.upper())

    assert not verify(header, BODY, SECRET, tolerance_s=300, now=T)
