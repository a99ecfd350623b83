"""Records written to ``clicks-failed``."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.ingest.failures import failed_event_record


def record(payload: object, origin: dict[str, Any] | None = None) -> dict[str, Any]:
    return orjson.loads(
        failed_event_record(
            reason="invalid_field",
            error="ts: missing",
            payload=payload,
            source="http",
            received_ts_ms=1_700_000_000_123,
            origin=origin,
        )
    )


def test_common_fields() -> None:
    assert record({"a": 1}) == {
        "reason": "invalid_field",
        "error": "ts: missing",
        "source": "http",
        "received_ts": 1_700_000_000_123,
        "payload": {"a": 1},
    }


@pytest.mark.parametrize(
    ("payload", "text"),
    [
        (b'{"event_id": "e1"', '{"event_id": "e1"'),
        (b"", ""),
        ("café ☕".encode(), "café ☕"),
        (b"\x00\x01", "\x00\x01"),
    ],
)
def test_utf8_bytes_are_kept_as_text(payload: bytes, text: str) -> None:
    out = record(payload)

    assert out["payload_text"] == text
    assert "payload_hex" not in out
    assert "payload" not in out


@pytest.mark.parametrize(
    "payload",
    [b"\xff", b"\xc3\x28", b'{"a": "\xe9"}', b"\xed\xa0\x80", bytes(range(256))],
)
def test_non_utf8_bytes_are_kept_as_hex(payload: bytes) -> None:
    out = record(payload)

    assert bytes.fromhex(out["payload_hex"]) == payload
    assert "payload_text" not in out
    assert "payload" not in out


@pytest.mark.parametrize(
    "payload",
    [
        {"event_id": "e1", "ts": None},
        [1, 2, 3],
        "just a string",
        42,
        3.5,
        True,
        None,
        {"nested": {"list": [1, {"x": None}]}},
    ],
)
def test_json_values_are_kept_as_they_are(payload: object) -> None:
    out = record(payload)

    assert "payload" in out
    assert out["payload"] == payload
    assert "payload_text" not in out
    assert "payload_hex" not in out


@pytest.mark.parametrize(
    ("origin", "kept"),
    [
        ({"topic": "clicks", "partition": 3, "offset": 1234}, True),
        ({"remote": "203.0.113.9"}, True),
        (None, False),
        ({}, False),
    ],
)
def test_origin(origin: dict[str, Any] | None, kept: bool) -> None:
    out = record(b"x", origin=origin)

    if kept:
        assert out["origin"] == origin
    else:
        assert "origin" not in out


def test_record_is_utf8_json_bytes() -> None:
    data = failed_event_record(
        reason="invalid_json", error="bad", payload=b"\xff", source="kafka", received_ts_ms=1
    )

    assert isinstance(data, bytes)
    assert orjson.loads(data.decode("utf-8"))["source"] == "kafka"
