"""Contract §1 rules for one click event: ``validate_event`` and ``event_to_wire``."""

from __future__ import annotations

import copy
import math
from typing import Any

import orjson
import pytest

from app.errors import InvalidEvent
from app.ingest import events
from app.ingest.events import EVENT_TYPES, MIN_TS_MS, ClickEvent, event_to_wire, validate_event

MISSING: Any = object()  # pass as an override to leave the field out

TS_MS = 1_714_564_800_000  # 2024-05-01T12:00:00Z
# The last ms of year 9999.
MAX_TS_MS = 253_402_300_799_999

REQUIRED_STRINGS = [("event_id", 64), ("customer_id", 128), ("session_id", 128)]
OPTIONAL_STRINGS = [
    ("page", 2048),
    ("product_id", 128),
    ("element", 256),
    ("field", 128),
    ("step", 64),
    ("query", 512),
    ("error", 512),
]
NUMBER_FIELDS = ["x", "y", "scroll_pct", "value"]
OPTIONAL_FIELDS = [
    "page", "product_id", "element", "x", "y", "scroll_pct", "field", "step",
    "value", "query", "results", "error", "props",
]  # fmt: skip
FULL_OPTIONALS: dict[str, Any] = {
    "page": "/checkout/payment",
    "product_id": "sku-42",
    "element": "#pay-button",
    "x": 120,
    "y": 348.5,
    "scroll_pct": 62.5,
    "field": "card_number",
    "step": "payment",
    "value": 99.9,
    "query": "red shoes",
    "results": 0,
    "error": "card_declined",
    "props": {"ab": "B", "nested": {"list": [1, 2.5, None, True]}},
}


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


def rejection(raw: object) -> tuple[str, str]:
    with pytest.raises(InvalidEvent) as caught:
        validate_event(raw)
    return caught.value.reason, str(caught.value)


# --- valid events --------------------------------------------------------------------------


def test_minimal_event() -> None:
    assert validate_event(click_event()) == ClickEvent("e-1", "c-1", "s-1", "click", TS_MS)


def test_every_optional_field() -> None:
    event = validate_event(click_event(**FULL_OPTIONALS))
    assert event == ClickEvent("e-1", "c-1", "s-1", "click", TS_MS, **FULL_OPTIONALS)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_event_type_accepted(event_type: str) -> None:
    assert validate_event(click_event(type=event_type)).type == event_type


@pytest.mark.parametrize("name", OPTIONAL_FIELDS)
def test_null_optional_field_is_absent(name: str) -> None:
    assert validate_event(click_event(**{name: None})) == validate_event(click_event())


def test_unknown_fields_ignored() -> None:
    raw = click_event(ts_ms=5, browser={"name": "x"}, Type="nope", extra=[1, 2], **{"": 0})
    assert validate_event(raw) == validate_event(click_event())


@pytest.mark.parametrize("name", ["page", "product_id", "element", "field", "step"])
def test_catalogue_names_are_held_once_however_many_events_name_them(name: str) -> None:
    # Decoded apart, as two messages are: equal strings, but two objects until interned.
    first, second = (orjson.loads(orjson.dumps(click_event(**FULL_OPTIONALS))) for _ in "ab")
    assert first[name] is not second[name]
    assert getattr(validate_event(first), name) is getattr(validate_event(second), name)


def test_catalogue_names_seen_lately_stay_bounded_and_held_once_after_the_cache_empties(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(events, "_NAMES", {})
    monkeypatch.setattr(events, "_NAMES_MAX", 3)
    kept = validate_event(click_event(page="/a")).page  # as a customer's state keeps it
    for number in range(10):
        validate_event(click_event(page=f"/page-{number}"))
        assert len(events._NAMES) <= 3
    assert "/a" not in events._NAMES  # emptied since
    again = orjson.loads(orjson.dumps(click_event(page="/a")))
    assert validate_event(again).page is kept


def test_a_long_catalogue_name_is_held_once_but_not_kept_among_the_names_seen_lately(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(events, "_NAMES", {})
    page = "/" + "p" * events._NAME_CACHED_MAX_LEN
    first, second = (orjson.loads(orjson.dumps(click_event(page=page))) for _ in "ab")
    assert validate_event(first).page is validate_event(second).page
    assert events._NAMES == {}


def test_input_not_mutated() -> None:
    raw = click_event(ts="2024-05-01T14:00:00+02:00", unknown=1, **FULL_OPTIONALS)
    before = copy.deepcopy(raw)
    validate_event(raw)
    assert raw == before


# --- not an object -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ([], "array"),
        ([click_event()], "array"),
        ("click", "string"),
        (1, "integer"),
        (1.5, "number"),
        (True, "boolean"),
        (None, "null"),
    ],
)
def test_non_object_rejected(raw: object, kind: str) -> None:
    assert rejection(raw) == ("not_an_object", f"event: must be a JSON object, got {kind}")


# --- required fields -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["event_id", "customer_id", "session_id", "type", "ts"])
@pytest.mark.parametrize("absent", [MISSING, None], ids=["absent", "null"])
def test_required_field_missing(name: str, absent: object) -> None:
    assert rejection(click_event(**{name: absent})) == ("missing_field", f"{name}: missing")


@pytest.mark.parametrize(("name", "limit"), REQUIRED_STRINGS)
def test_required_string_at_limit_accepted(name: str, limit: int) -> None:
    event = validate_event(click_event(**{name: "a" * limit}))
    assert getattr(event, name) == "a" * limit


@pytest.mark.parametrize(("name", "limit"), REQUIRED_STRINGS)
def test_required_string_counts_characters_not_bytes(name: str, limit: int) -> None:
    assert getattr(validate_event(click_event(**{name: "é" * limit})), name) == "é" * limit


@pytest.mark.parametrize(("name", "limit"), REQUIRED_STRINGS)
@pytest.mark.parametrize("length", ["empty", "over"])
def test_required_string_length_rejected(name: str, limit: int, length: str) -> None:
    text = "" if length == "empty" else "a" * (limit + 1)
    assert rejection(click_event(**{name: text})) == (
        "invalid_field",
        f"{name}: must be 1–{limit} characters",  # noqa: RUF001
    )


@pytest.mark.parametrize(("name", "_limit"), REQUIRED_STRINGS)
@pytest.mark.parametrize(
    ("value", "kind"),
    [(123, "integer"), (1.5, "number"), (True, "boolean"), (["e-1"], "array"), ({}, "object")],
)
def test_required_string_wrong_type(name: str, _limit: int, value: object, kind: str) -> None:
    assert rejection(click_event(**{name: value})) == (
        "invalid_field",
        f"{name}: must be a string, got {kind}",
    )


# --- type ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("foo", ("unknown_type", "type: unknown event type 'foo'")),
        ("Click", ("unknown_type", "type: unknown event type 'Click'")),
        (" click", ("unknown_type", "type: unknown event type ' click'")),
        ("", ("unknown_type", "type: unknown event type ''")),
        ("x" * 65, ("unknown_type", f"type: unknown event type '{'x' * 64}...'")),
        (7, ("invalid_field", "type: must be a string, got integer")),
        (True, ("invalid_field", "type: must be a string, got boolean")),
        (["click"], ("invalid_field", "type: must be a string, got array")),
        ({"click": 1}, ("invalid_field", "type: must be a string, got object")),
    ],
)
def test_bad_type(value: object, expected: tuple[str, str]) -> None:
    assert rejection(click_event(type=value)) == expected


# --- ts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "ts_ms"),
    [
        (TS_MS, TS_MS),
        (MIN_TS_MS, MIN_TS_MS),
        (MAX_TS_MS, MAX_TS_MS),
        ("2024-05-01T12:00:00Z", TS_MS),
        ("2024-05-01T12:00:00+00:00", TS_MS),
        ("2024-05-01T14:00:00+02:00", TS_MS),
        ("2024-05-01T06:30:00-05:30", TS_MS),
        ("2024-05-01T14:00:00+0200", TS_MS),
        ("2024-05-01 12:00:00Z", TS_MS),
        ("2024-05-01T12:00:00.123Z", TS_MS + 123),
        # Sub-millisecond digits are truncated, never rounded up.
        ("2024-05-01T12:00:00.123999Z", TS_MS + 123),
        ("2000-01-01T00:00:00Z", MIN_TS_MS),
        ("2000-01-01T01:00:00+01:00", MIN_TS_MS),
        ("9999-12-31T23:59:59.999Z", MAX_TS_MS),
    ],
)
def test_ts_accepted(ts: object, ts_ms: int) -> None:
    assert validate_event(click_event(ts=ts)).ts_ms == ts_ms


NOT_A_TS = "ts: must be integer ms since the epoch or an ISO-8601 string with offset, got"
OUT_OF_RANGE = "ts: out of range (1970-01-01 to 9999-12-31)"
NOT_ISO = "ts: not an ISO-8601 timestamp"
FLOAT_TS = "ts: must be integer ms since the epoch, got a float"


@pytest.mark.parametrize(
    ("ts", "message"),
    [
        (-1, OUT_OF_RANGE),
        (MAX_TS_MS + 1, OUT_OF_RANGE),
        (2**70, OUT_OF_RANGE),
        ("1969-12-31T23:59:59.999Z", OUT_OF_RANGE),
        ("1970-01-01T00:30:00+01:00", OUT_OF_RANGE),
        ("0001-01-01T00:00:00Z", OUT_OF_RANGE),
        ("9999-12-31T23:59:59-01:00", OUT_OF_RANGE),
        (True, f"{NOT_A_TS} boolean"),
        (False, f"{NOT_A_TS} boolean"),
        ([TS_MS], f"{NOT_A_TS} array"),
        ({"ms": TS_MS}, f"{NOT_A_TS} object"),
        (1.7e12, FLOAT_TS),
        (float(TS_MS), FLOAT_TS),
        (TS_MS + 0.5, FLOAT_TS),
        (math.nan, FLOAT_TS),
        (math.inf, FLOAT_TS),
        ("2024-05-01T12:00:00", "ts: ISO-8601 timestamp needs a UTC offset or 'Z'"),
        ("2024-05-01", "ts: ISO-8601 timestamp needs a UTC offset or 'Z'"),
        ("garbage", NOT_ISO),
        ("", NOT_ISO),
        (str(TS_MS), NOT_ISO),
        ("2024-13-01T12:00:00Z", NOT_ISO),
        ("2024-05-01T12:00:00+25:00", NOT_ISO),
        ("2024-05-01T12:00:00Z" + " " * 60, NOT_ISO),
        ("9" * 10_000, NOT_ISO),
    ],
)
def test_ts_rejected(ts: object, message: str) -> None:
    assert rejection(click_event(ts=ts)) == ("invalid_field", message)


SECONDS = (
    "ts: before 2000-01-01; ts must be milliseconds since the Unix epoch "
    "(a value in seconds is a thousand times too small)"
)


@pytest.mark.parametrize(
    "ts", [0, 1796192115, MIN_TS_MS - 1, "1970-01-01T00:00:00Z", "1999-12-31T23:59:59.999Z"]
)
def test_ts_before_2000_is_refused_as_probably_seconds(ts: object) -> None:
    assert rejection(click_event(ts=ts)) == ("ts_too_old", SECONDS)


@pytest.mark.parametrize(
    ("ahead_ms", "accepted"),
    [(0, True), (-86_400_000, True), (300_000, True), (300_001, False), (86_400_000, False)],
)
def test_ts_ahead_of_the_receiver_clock(ahead_ms: int, accepted: bool) -> None:
    raw = click_event(ts=TS_MS + ahead_ms)

    if accepted:
        assert validate_event(raw, received_ms=TS_MS).ts_ms == TS_MS + ahead_ms
    else:
        with pytest.raises(InvalidEvent) as caught:
            validate_event(raw, received_ms=TS_MS)
        assert caught.value.reason == "ts_in_future"
        assert str(caught.value).startswith("ts: ")
        assert "ahead of the receiver's clock (at most 300 s allowed)" in str(caught.value)


def test_the_future_skew_is_configurable() -> None:
    raw = click_event(ts=TS_MS + 10_000)

    with pytest.raises(InvalidEvent, match="at most 5 s"):
        validate_event(raw, received_ms=TS_MS, max_future_skew_ms=5_000)
    assert validate_event(raw).ts_ms == TS_MS + 10_000  # no receiver clock: no future rule


# --- optional strings ----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "limit"), OPTIONAL_STRINGS)
@pytest.mark.parametrize("length", ["empty", "at_limit"])
def test_optional_string_accepted(name: str, limit: int, length: str) -> None:
    text = "" if length == "empty" else "a" * limit
    assert getattr(validate_event(click_event(**{name: text})), name) == text


@pytest.mark.parametrize(("name", "limit"), OPTIONAL_STRINGS)
def test_optional_string_over_limit(name: str, limit: int) -> None:
    assert rejection(click_event(**{name: "a" * (limit + 1)})) == (
        "invalid_field",
        f"{name}: must be at most {limit} characters",
    )


@pytest.mark.parametrize(("name", "_limit"), OPTIONAL_STRINGS)
@pytest.mark.parametrize(
    ("value", "kind"), [(1, "integer"), (False, "boolean"), (["a"], "array"), ({}, "object")]
)
def test_optional_string_wrong_type(name: str, _limit: int, value: object, kind: str) -> None:
    assert rejection(click_event(**{name: value})) == (
        "invalid_field",
        f"{name}: must be a string, got {kind}",
    )


# --- numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NUMBER_FIELDS)
@pytest.mark.parametrize("value", [0, 1, 0.0, 42.5, 100, 100.0])
def test_number_accepted(name: str, value: float) -> None:
    number = getattr(validate_event(click_event(**{name: value})), name)
    assert number == value
    assert type(number) is type(value)


@pytest.mark.parametrize("name", ["x", "y", "value"])
@pytest.mark.parametrize("value", [-1, -0.5, 1e6, 2**53, 2**63 - 1, -(2**63 - 1)])
def test_unbounded_number_accepted(name: str, value: float) -> None:
    assert getattr(validate_event(click_event(**{name: value})), name) == value


@pytest.mark.parametrize("name", NUMBER_FIELDS)
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (True, "must be a number, got boolean"),
        (False, "must be a number, got boolean"),
        ("1", "must be a number, got string"),
        ("1.5", "must be a number, got string"),
        ([1], "must be a number, got array"),
        ({"v": 1}, "must be a number, got object"),
        (math.nan, "must be a finite number"),
        (math.inf, "must be a finite number"),
        (-math.inf, "must be a finite number"),
        (2**63, "must be a finite number"),
        (-(2**63), "must be a finite number"),
    ],
)
def test_number_rejected(name: str, value: object, problem: str) -> None:
    assert rejection(click_event(**{name: value})) == ("invalid_field", f"{name}: {problem}")


@pytest.mark.parametrize("value", [-1, -0.001, 100.001, 101, 1e9])
def test_scroll_pct_out_of_range(value: float) -> None:
    assert rejection(click_event(scroll_pct=value)) == (
        "invalid_field",
        "scroll_pct: must be between 0 and 100",
    )


@pytest.mark.parametrize("value", [0, 1, 10_000, 2**63 - 1])
def test_results_accepted(value: int) -> None:
    assert validate_event(click_event(results=value)).results == value


@pytest.mark.parametrize("value", [-1, 2**63, 1.0, 2.5, True, False, "3", [3], math.nan])
def test_results_rejected(value: object) -> None:
    assert rejection(click_event(results=value)) == (
        "invalid_field",
        "results: must be a non-negative integer",
    )


# --- props ---------------------------------------------------------------------------------


def props_of_size(size: int, char: str = "a") -> dict[str, Any]:
    """``{"k": "aaa…"}`` whose orjson encoding is exactly ``size`` bytes."""
    overhead = len(b'{"k":""}')
    per_char = len(char.encode())
    props = {"k": char * ((size - overhead) // per_char)}
    assert len(orjson.dumps(props)) == size
    return props


@pytest.mark.parametrize(
    "props",
    [
        {},
        {"nested": {"deep": [1, 2, {"x": None}]}, "flag": True},
        props_of_size(4096),
        props_of_size(4096, "é"),
    ],
    ids=["empty", "nested", "4096_ascii", "4096_multibyte"],
)
def test_props_accepted(props: dict[str, Any]) -> None:
    assert validate_event(click_event(props=props)).props == props


@pytest.mark.parametrize(
    ("props", "problem"),
    [
        (props_of_size(4097), "must be at most 4096 bytes as JSON"),
        # 2,048 "é" are 2,048 characters but 4,096 bytes of UTF-8.
        ({"k": "é" * 2048}, "must be at most 4096 bytes as JSON"),
        ([1, 2], "must be an object, got array"),
        ("{}", "must be an object, got string"),
        (3, "must be an object, got integer"),
        (False, "must be an object, got boolean"),
        ({1: "non-string key"}, "not encodable as JSON"),
        ({"k": object()}, "not encodable as JSON"),
        ({"k": 2**64}, "not encodable as JSON"),
    ],
    ids=[
        "4097_bytes",
        "multibyte_over",
        "array",
        "string",
        "integer",
        "boolean",
        "int_key",
        "object",
        "huge_int",
    ],
)
def test_props_rejected(props: object, problem: str) -> None:
    assert rejection(click_event(props=props)) == ("invalid_field", f"props: {problem}")


# --- deterministic order -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "event_id: missing"),
        ({"ts": "bad", "type": "nope"}, "event_id: missing"),
        (click_event(customer_id="", session_id=""), "customer_id: must be 1–128 characters"),  # noqa: RUF001
        (click_event(type="nope", ts="bad"), "type: unknown event type 'nope'"),
        (click_event(ts="bad", page=1), "ts: not an ISO-8601 timestamp"),
        (click_event(props=[], page=1, x="1"), "page: must be a string, got integer"),
        (click_event(props=[], x="1", y="1"), "x: must be a number, got string"),
        (click_event(props=[], error=1, results=-1), "results: must be a non-negative integer"),
        (click_event(props=[], error=1), "error: must be a string, got integer"),
    ],
)
def test_first_broken_rule_reported(raw: dict[str, Any], message: str) -> None:
    assert rejection(raw)[1] == message


# --- wire form -----------------------------------------------------------------------------


ROUND_TRIP_EVENTS = [
    click_event(),
    click_event(ts="2024-05-01T14:00:00.5+02:00"),
    click_event(type="scroll", scroll_pct=0),
    click_event(type="search", query="", results=0),
    click_event(**FULL_OPTIONALS),
    click_event(page=None, x=None, props=None, ignored="yes"),
]


@pytest.mark.parametrize("raw", ROUND_TRIP_EVENTS)
def test_wire_round_trip(raw: dict[str, Any]) -> None:
    event = validate_event(raw)
    wire = event_to_wire(event)
    assert validate_event(wire) == event
    assert validate_event(orjson.loads(orjson.dumps(wire))) == event


@pytest.mark.parametrize("raw", ROUND_TRIP_EVENTS)
def test_wire_has_only_set_fields(raw: dict[str, Any]) -> None:
    event = validate_event(raw)
    wire = event_to_wire(event)
    assert wire["ts"] == event.ts_ms
    assert type(wire["ts"]) is int
    assert "ts_ms" not in wire
    assert None not in wire.values()
    expected = {"event_id", "customer_id", "session_id", "type", "ts"}
    expected |= {name for name in OPTIONAL_FIELDS if getattr(event, name) is not None}
    assert set(wire) == expected


def test_wire_of_minimal_event() -> None:
    assert event_to_wire(ClickEvent("e-1", "c-1", "s-1", "back", 0)) == {
        "event_id": "e-1",
        "customer_id": "c-1",
        "session_id": "s-1",
        "type": "back",
        "ts": 0,
    }
