"""The SSE wire format and the stream-id and customer helpers of ``app.deliver.sse``."""

from __future__ import annotations

import orjson
import pytest

from app.deliver.sse import (
    KEEP_ALIVE,
    customer_of,
    format_intervention,
    is_for_customer,
    parse_stream_id,
)


def parse_sse(stream: bytes) -> list[dict[str, str]]:
    """The messages of an event stream, as the HTML standard's parser reads them
    (comments skipped, ``data`` lines joined with newlines)."""
    messages = []
    for block in stream.decode().split("\n\n")[:-1]:
        message: dict[str, str] = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            message[name] = f"{message[name]}\n{value}" if name in message else value
        if message:
            messages.append(message)
    return messages


def intervention(customer_id: str = "c-1", **fields: object) -> bytes:
    return orjson.dumps({"intervention_id": "i-1", "customer_id": customer_id,
                         "kind": "assist", "reason": "payment_failure", **fields})  # fmt: skip


@pytest.mark.parametrize(
    "data",
    [
        intervention(),
        intervention(explanation="naïve café: ünïcode ✓"),
        intervention(explanation="a line\nbreak, escaped by JSON"),
        b'{"raw":\n"a line break in the bytes themselves"}',
        b"",
    ],
)
def test_a_message_reads_back_as_event_id_and_data(data: bytes) -> None:
    chunk = format_intervention("1714564800000-7", data)

    assert chunk.endswith(b"\n\n") and chunk.count(b"\n\n") == 1
    assert parse_sse(chunk) == [
        {"event": "intervention", "id": "1714564800000-7", "data": data.decode()}
    ]


def test_json_data_is_one_data_line() -> None:
    chunk = format_intervention("1-0", intervention(explanation="two\nlines"))

    assert chunk.count(b"data: ") == 1


def test_keep_alive_is_a_comment_no_message() -> None:
    stream = KEEP_ALIVE + format_intervention("1-0", intervention()) + KEEP_ALIVE

    assert KEEP_ALIVE.startswith(b":") and KEEP_ALIVE.endswith(b"\n\n")
    assert [m["id"] for m in parse_sse(stream)] == ["1-0"]


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("1714564800000-0", (1714564800000, 0)),
        ("0-1", (0, 1)),
        ("18446744073709551615-18446744073709551615", (2**64 - 1, 2**64 - 1)),
        ("1714564800000", None),  # Redis accepts it in ranges; an SSE id always has the seq
        ("$", None),
        ("", None),
        ("-1-0", None),
        ("1-0 ", None),
        ("1-0\n", None),
        ("1-0-0", None),
        ("a-b", None),
        ("1" * 21 + "-0", None),
    ],
)
def test_parse_stream_id(text: str, parsed: tuple[int, int] | None) -> None:
    assert parse_stream_id(text) == parsed


@pytest.mark.parametrize(
    ("earlier", "later"),
    [("1-0", "1-1"), ("1-9", "1-10"), ("9-5", "10-0"), ("999-999", "1000-0")],
)
def test_stream_ids_order_as_redis_orders_them(earlier: str, later: str) -> None:
    # As strings "1-10" < "1-9": comparing the raw ids would skip or repeat entries.
    assert parse_stream_id(earlier) < parse_stream_id(later)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("data", "customer_id"),
    [
        (intervention("c42"), "c42"),
        (intervention("ü-ñ"), "ü-ñ"),
        (intervention('quote"d'), 'quote"d'),
        (b'{"customer_id": 42}', None),
        (b'{"kind": "assist"}', None),
        (b'["c42"]', None),
        (b"not json", None),
        (b"", None),
    ],
)
def test_customer_of(data: bytes, customer_id: str | None) -> None:
    assert customer_of(data) == customer_id


@pytest.mark.parametrize(
    ("data", "customer_id", "expected"),
    [
        (intervention("c42"), "c42", True),
        (intervention("c4"), "c42", False),
        (intervention("c42"), "c4", False),  # a prefix appears in the bytes, not as the id
        (intervention("c4", context={"note": "c42"}), "c42", False),
        (intervention("ü"), "ü", True),
        (intervention('say "hi"'), 'say "hi"', True),  # found in its JSON-escaped form
        (intervention("back\\slash\ttab"), "back\\slash\ttab", True),
        (b"not json c42", "c42", False),
    ],
)
def test_is_for_customer(data: bytes, customer_id: str, expected: bool) -> None:
    assert is_for_customer(data, customer_id) is expected
