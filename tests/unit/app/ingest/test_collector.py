"""Contract §1 collector bodies: ``parse_event_batch`` and its response."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.errors import InvalidEvent, PayloadTooLarge
from app.ingest.collector import (
    MAX_BATCH_EVENTS,
    MAX_BODY_BYTES,
    BatchResult,
    Rejection,
    json_content_type_problem,
    parse_event_batch,
)
from app.ingest.customer_ids import hash_customer_id
from app.ingest.events import ClickEvent, event_to_wire, validate_event

MISSING: Any = object()  # pass as an override to leave the field out

TS_MS = 1_714_564_800_000  # 2024-05-01T12:00:00Z


def click_event(**overrides: Any) -> dict[str, Any]:
    """A valid raw click event; ``field=MISSING`` leaves the field out."""
    event: dict[str, Any] = {
        "event_id": "e-1",
        "customer_id": "c-1",
        "session_id": "s-1",
        "type": "click",
        "ts": TS_MS,
    }
    event.update(overrides)
    return {name: value for name, value in event.items() if value is not MISSING}


def batch(*events: object) -> bytes:
    return orjson.dumps({"events": list(events)})


def refusal(body: bytes) -> tuple[type[InvalidEvent], str, str]:
    with pytest.raises(InvalidEvent) as caught:
        parse_event_batch(body)
    return type(caught.value), caught.value.reason, str(caught.value)


# --- single events -------------------------------------------------------------------------


def test_single_event_accepted() -> None:
    result = parse_event_batch(orjson.dumps(click_event(page="/")))
    assert result.accepted == [ClickEvent("e-1", "c-1", "s-1", "click", TS_MS, page="/")]
    assert result.rejected == []
    assert result.status == 202
    assert result.response_body() == {"accepted": 1, "rejected": 0, "errors": []}


def test_single_event_rejected() -> None:
    raw = click_event(ts=MISSING)
    result = parse_event_batch(orjson.dumps(raw))
    assert result.accepted == []
    assert result.rejected == [Rejection(0, "e-1", "missing_field", "ts: missing", raw)]
    assert result.status == 400
    assert result.response_body() == {
        "accepted": 0,
        "rejected": 1,
        "errors": [{"index": 0, "event_id": "e-1", "error": "ts: missing"}],
    }


def test_single_event_with_surrounding_whitespace() -> None:
    body = b" \n\t" + orjson.dumps(click_event()) + b"\r\n "
    assert len(parse_event_batch(body).accepted) == 1


# --- batches -------------------------------------------------------------------------------


def test_mixed_batch() -> None:
    items: list[object] = [
        click_event(event_id="e-1"),
        click_event(event_id="e-2", ts=MISSING),
        click_event(event_id="e-3", type="scroll", scroll_pct=50),
        "not an event",
        click_event(event_id="e-5", type="hover"),
    ]
    result = parse_event_batch(batch(*items))
    assert result.accepted == [validate_event(items[0]), validate_event(items[2])]
    assert result.rejected == [
        Rejection(1, "e-2", "missing_field", "ts: missing", items[1]),
        Rejection(3, None, "not_an_object", "event: must be a JSON object, got string", items[3]),
        Rejection(4, "e-5", "unknown_type", "type: unknown event type 'hover'", items[4]),
    ]
    assert result.status == 202
    assert result.response_body() == {
        "accepted": 2,
        "rejected": 3,
        "errors": [
            {"index": 1, "event_id": "e-2", "error": "ts: missing"},
            {"index": 3, "event_id": None, "error": "event: must be a JSON object, got string"},
            {"index": 4, "event_id": "e-5", "error": "type: unknown event type 'hover'"},
        ],
    }


def test_all_bad_batch_is_400() -> None:
    result = parse_event_batch(batch(click_event(ts="yesterday"), {}, None))
    assert result.accepted == []
    assert [r.index for r in result.rejected] == [0, 1, 2]
    assert result.status == 400
    assert result.response_body()["accepted"] == 0
    assert result.response_body()["rejected"] == 3


def test_accepted_keep_request_order() -> None:
    ids = [f"e-{i}" for i in range(20)]
    result = parse_event_batch(batch(*(click_event(event_id=i) for i in ids)))
    assert [event.event_id for event in result.accepted] == ids


def test_duplicates_are_kept() -> None:
    result = parse_event_batch(batch(click_event(), click_event(), click_event()))
    assert [event.event_id for event in result.accepted] == ["e-1", "e-1", "e-1"]


def test_batch_with_other_keys_is_still_a_batch() -> None:
    body = orjson.dumps({"events": [click_event()], "sent_at": 1, **click_event(event_id="x")})
    assert [event.event_id for event in parse_event_batch(body).accepted] == ["e-1"]


@pytest.mark.parametrize("count", [1, 2, MAX_BATCH_EVENTS])
def test_batch_size_accepted(count: int) -> None:
    result = parse_event_batch(batch(*(click_event(event_id=f"e-{i}") for i in range(count))))
    assert len(result.accepted) == count
    assert result.rejected == []


@pytest.mark.parametrize("count", [MAX_BATCH_EVENTS + 1, 10 * MAX_BATCH_EVENTS])
def test_batch_too_many_events(count: int) -> None:
    assert refusal(batch(*([click_event()] * count))) == (
        InvalidEvent,
        "too_many_events",
        f"events: at most 500 per request, got {count}",
    )


def test_too_many_bad_events_still_refused_as_a_whole() -> None:
    assert refusal(batch(*([1] * (MAX_BATCH_EVENTS + 1))))[1] == "too_many_events"


def test_empty_batch() -> None:
    assert refusal(batch()) == (InvalidEvent, "invalid_body", "events: empty")


@pytest.mark.parametrize("events", [None, {}, click_event(), "[]", 3, True])
def test_events_not_an_array(events: object) -> None:
    body = orjson.dumps({"events": events})
    assert refusal(body) == (InvalidEvent, "invalid_body", "events: must be an array")


# --- event_id in errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "event_id"),
    [
        (click_event(ts=MISSING), "e-1"),
        (click_event(event_id=MISSING), None),
        (click_event(event_id=None), None),
        (click_event(event_id=42), None),
        (click_event(event_id=True), None),
        (click_event(event_id=["e-1"]), None),
        (click_event(event_id={"id": "e-1"}), None),
        # A string is echoed even when it is the broken rule, so the sender can find it.
        (click_event(event_id=""), ""),
        (click_event(event_id="e" * 65), "e" * 65),
        ([click_event()], None),
        ("e-1", None),
        (7, None),
        (None, None),
    ],
)
def test_error_event_id(item: object, event_id: str | None) -> None:
    result = parse_event_batch(batch(click_event(), item))
    (rejection,) = result.rejected
    assert rejection.index == 1
    assert rejection.event_id == event_id
    assert rejection.payload == item
    assert result.response_body()["errors"] == [
        {"index": 1, "event_id": event_id, "error": rejection.error}
    ]


# --- whole-body refusals -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"[]", "array"),
        (orjson.dumps([click_event()]), "array"),
        (b"1", "number"),
        (b"1.5", "number"),
        (b'"event"', "string"),
        (b"true", "boolean"),
        (b"null", "null"),
    ],
)
def test_body_not_an_object(body: bytes, kind: str) -> None:
    assert refusal(body) == (
        InvalidEvent,
        "invalid_body",
        f'body: must be an event object or {{"events": [...]}}, got {kind}',
    )


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"{",
        b"not json",
        b"{'event_id': 'e-1'}",
        b'{"x": NaN}',
        b'{"events": []} trailing',
        b'{"a": 1,}',
        # Not UTF-8: a stray byte, a lone surrogate, Latin-1 text.
        b"\xff\xfe",
        b'{"event_id": "\xed\xa0\x80"}',
        '{"event_id": "café"}'.encode("latin-1"),
    ],
)
def test_body_not_json(body: bytes) -> None:
    kind, reason, message = refusal(body)
    assert (kind, reason) == (InvalidEvent, "invalid_json")
    assert message.startswith("body: not valid JSON (")
    assert message.endswith(")")


def body_of_size(size: int) -> bytes:
    """One valid event, padded with JSON whitespace to exactly ``size`` bytes."""
    event = orjson.dumps(click_event())
    return event + b" " * (size - len(event))


def test_body_at_size_limit_accepted() -> None:
    body = body_of_size(MAX_BODY_BYTES)
    assert len(body) == 1024 * 1024
    assert len(parse_event_batch(body).accepted) == 1


@pytest.mark.parametrize(
    "body",
    [body_of_size(MAX_BODY_BYTES + 1), b"x" * (MAX_BODY_BYTES + 1), b"{" * (2 * MAX_BODY_BYTES)],
    ids=["valid_json", "not_json", "much_larger"],
)
def test_body_over_size_limit(body: bytes) -> None:
    assert refusal(body) == (PayloadTooLarge, "too_large", "body: larger than 1 MiB")


# --- result --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accepted", "rejected", "status"),
    [(0, 0, 400), (0, 1, 400), (1, 0, 202), (1, 5, 202), (3, 0, 202)],
)
def test_status(accepted: int, rejected: int, status: int) -> None:
    event = ClickEvent("e-1", "c-1", "s-1", "click", TS_MS)
    result = BatchResult(
        accepted=[event] * accepted,
        rejected=[Rejection(i, None, "missing_field", "ts: missing", {}) for i in range(rejected)],
    )
    assert result.status == status
    body = result.response_body()
    assert list(body) == ["accepted", "rejected", "errors"]
    assert (body["accepted"], body["rejected"], len(body["errors"])) == (
        accepted,
        rejected,
        rejected,
    )


def test_response_body_is_json() -> None:
    result = parse_event_batch(batch(click_event(), click_event(type=1)))
    assert orjson.loads(orjson.dumps(result.response_body())) == result.response_body()


# --- Content-Type (a 415 otherwise) and customer id pseudonyms ---------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        'application/json; charset="utf-8"',
        "Application/JSON",
        "application/json; charset=utf8",
        "application/json; boundary=x",
    ],
)
def test_json_content_types_are_accepted(content_type):
    assert json_content_type_problem(content_type) is None


@pytest.mark.parametrize(
    ("content_type", "error"),
    [
        (None, "got none"),
        ("", "got none"),
        ("text/plain", "got 'text/plain'"),
        ("text/plain;charset=UTF-8", "got 'text/plain'"),  # sendBeacon of a string
        ("application/x-www-form-urlencoded", "got 'application/x-www-form-urlencoded'"),
        ("multipart/form-data; boundary=x", "got 'multipart/form-data'"),
        ("application/jsonp", "got 'application/jsonp'"),
        ("application/json-patch+json", "got 'application/json-patch+json'"),
        ("application/json; charset=latin-1", "charset must be utf-8, got 'latin-1'"),
        ("application/json; charset=utf-16", "charset must be utf-8, got 'utf-16'"),
        ("x" * 500, "got '" + "x" * 64 + "'"),
    ],
)
def test_other_content_types_are_refused(content_type, error):
    problem = json_content_type_problem(content_type)
    assert problem is not None and problem.startswith("Content-Type: ") and problem.endswith(error)


_SALT = "a-salt-of-at-least-16-characters"


def test_a_salt_hashes_accepted_customer_ids():
    result = parse_event_batch(batch(click_event(customer_id="c-raw")), customer_id_salt=_SALT)
    assert result.accepted[0].customer_id == hash_customer_id("c-raw", _SALT)
    assert "c-raw" not in orjson.dumps(event_to_wire(result.accepted[0])).decode()


def test_a_salt_keeps_no_raw_id_of_a_rejected_event():
    body = batch(click_event(customer_id="c-raw", type="teleport"), "c-raw as a string",
                 click_event(customer_id=12345, event_id="e-2"))  # fmt: skip
    result = parse_event_batch(body, customer_id_salt=_SALT)
    payloads = [rejection.payload for rejection in result.rejected]
    assert payloads[0]["customer_id"] == hash_customer_id("c-raw", _SALT)
    assert payloads[0]["type"] == "teleport"
    assert payloads[1] is None
    assert payloads[2]["customer_id"] == hash_customer_id("12345", _SALT)
    assert "c-raw" not in orjson.dumps(payloads).decode()


def test_without_a_salt_ids_pass_through_untouched():
    result = parse_event_batch(batch(click_event(customer_id="c-raw"), click_event(type="x")))
    assert result.accepted[0].customer_id == "c-raw"
    assert result.rejected[0].payload == click_event(type="x")
