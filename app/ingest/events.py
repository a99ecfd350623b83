"""Click events: the validated form of contract §1, and its validation rules.

Pure: no Faust, no I/O. ``validate_event`` is used by the HTTP collector and by
the agent reading ``clicks`` directly, so both apply the very same rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from math import isfinite
from sys import intern
from typing import Any

import orjson

from app.errors import InvalidEvent

__all__ = [
    "DEFAULT_MAX_FUTURE_SKEW_MS",
    "EVENT_TYPES",
    "MIN_TS_MS",
    "ClickEvent",
    "decode_event",
    "event_to_wire",
    "json_type",
    "parse_ts_ms",
    "refuse_ahead",
    "validate_event",
]

EVENT_TYPES: frozenset[str] = frozenset(
    {
        "page_view", "product_view", "click", "scroll", "search", "add_to_cart",
        "remove_from_cart", "form_focus", "form_input", "form_blur", "form_submit",
        "form_error", "checkout_step", "payment_attempt", "payment_failed", "purchase",
        "error", "back", "session_end",
    }
)  # fmt: skip


@dataclass(slots=True)
class ClickEvent:
    """One validated click event (contract §1), with ``ts`` as integer ms.

    Never changed once validated. Not ``frozen``: a frozen dataclass sets each of its
    18 fields through ``object.__setattr__``, 1.5 µs more per event than this.
    """

    event_id: str
    customer_id: str
    session_id: str
    type: str
    ts_ms: int
    page: str | None = None
    product_id: str | None = None
    element: str | None = None
    x: float | None = None
    y: float | None = None
    scroll_pct: float | None = None
    field: str | None = None
    step: str | None = None
    value: float | None = None
    query: str | None = None
    results: int | None = None
    error: str | None = None
    props: dict[str, Any] | None = None


# Bounded reason codes: they become the ``reason`` label of events_rejected_total.
_CANONICAL_TYPES = {t: t for t in EVENT_TYPES}
_NOT_AN_OBJECT = "not_an_object"
_MISSING_FIELD = "missing_field"
_INVALID_FIELD = "invalid_field"
_UNKNOWN_TYPE = "unknown_type"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: 2000-01-01T00:00:00Z: earlier timestamps are almost always seconds sent as milliseconds.
MIN_TS_MS = 946_684_800_000
#: Contract §1: events more than this far ahead of the receiver's clock are refused.
DEFAULT_MAX_FUTURE_SKEW_MS = 300_000
_ONE_MS = timedelta(milliseconds=1)
# The last ms of year 9999: later instants cannot be a datetime, so downstream
# datetime math on ts_ms can never overflow.
_MAX_TS_MS = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - _EPOCH) // _ONE_MS
# Longer than any real ISO-8601 timestamp: long garbage never reaches fromisoformat.
_MAX_ISO_LEN = 64
# orjson only encodes integers within 64 bits; larger ones could never be written to Kafka.
_MAX_INT = 2**63 - 1
_MAX_PROPS_BYTES = 4096
# Unknown ``type`` values are echoed back to the sender, cut to this many characters.
_MAX_ECHO_CHARS = 64
# The catalogue's names seen lately (``_catalogue_name``), at most this many, none longer
# than ``_NAME_CACHED_MAX_LEN`` (together a few MB at most); emptied when full.
_NAMES: dict[str, str] = {}
_NAMES_MAX = 20_000
_NAME_CACHED_MAX_LEN = 256

_OPTIONAL_FIELDS = (
    "page", "product_id", "element", "x", "y", "scroll_pct", "field", "step",
    "value", "query", "results", "error", "props",
)  # fmt: skip

_JSON_TYPE_NAMES = {
    dict: "object",
    list: "array",
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _invalid(name: str, problem: str) -> InvalidEvent:
    return InvalidEvent(_INVALID_FIELD, f"{name}: {problem}")


def _bad_required_str(name: str, value: object, max_len: int) -> InvalidEvent:
    if value is None:
        return InvalidEvent(_MISSING_FIELD, f"{name}: missing")
    if not isinstance(value, str):
        return _invalid(name, f"must be a string, got {json_type(value)}")
    # An en dash, as the contract writes length ranges.
    return _invalid(name, f"must be 1–{max_len} characters")  # noqa: RUF001


def _catalogue_name(value: object, name: str, max_len: int) -> str | None:
    """An optional page, product, element, field or step name, checked and interned.

    A shop has a few thousand of them, kept in many customers' states: interned, each
    is held once (and freed with its last user), not once per event that named it.
    The names seen lately are also kept in a small dict of their own and found there:
    the interpreter's table of interned strings holds every identifier of every module
    loaded, and a name no state holds left it after each event that named it, so
    looking names up there was ~5 % of an event's time (probes missing the CPU cache).
    """
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise _bad_optional_str(name, value, max_len)
    held = _NAMES.get(value)
    if held is not None:
        return held
    held = intern(value)
    if len(value) <= _NAME_CACHED_MAX_LEN:
        if len(_NAMES) >= _NAMES_MAX:
            _NAMES.clear()
        _NAMES[held] = held
    return held


def _bad_optional_str(name: str, value: object, max_len: int) -> InvalidEvent:
    if not isinstance(value, str):
        return _invalid(name, f"must be a string, got {json_type(value)}")
    return _invalid(name, f"must be at most {max_len} characters")


def _bad_type(value: object) -> InvalidEvent:
    if value is None:
        return InvalidEvent(_MISSING_FIELD, "type: missing")
    if not isinstance(value, str):
        return _invalid("type", f"must be a string, got {json_type(value)}")
    shown = value[:_MAX_ECHO_CHARS] + ("..." if len(value) > _MAX_ECHO_CHARS else "")
    return InvalidEvent(_UNKNOWN_TYPE, f"type: unknown event type '{shown}'")


def _is_finite_number(value: object) -> bool:
    # type() rather than isinstance(): bool is an int subclass and is not a number here.
    if type(value) is float:
        return isfinite(value)
    return type(value) is int and -_MAX_INT <= value <= _MAX_INT


def _bad_number(name: str, value: object) -> InvalidEvent:
    if type(value) in (int, float):
        return _invalid(name, "must be a finite number")
    return _invalid(name, f"must be a number, got {json_type(value)}")


def parse_ts_ms(ts: object) -> int:
    """An event time as the contract allows it (integer ms, or ISO-8601 with an offset), in
    ms; refused when implausible (before 2000-01-01: a value in seconds) or out of range."""
    kind = type(ts)
    if kind is int:
        ts_ms: int = ts  # type: ignore[assignment]
    elif kind is str:
        text: str = ts  # type: ignore[assignment]
        if len(text) > _MAX_ISO_LEN:
            raise _invalid("ts", "not an ISO-8601 timestamp")
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise _invalid("ts", "not an ISO-8601 timestamp") from None
        if when.tzinfo is None:
            raise _invalid("ts", "ISO-8601 timestamp needs a UTC offset or 'Z'")
        # Aware subtraction cannot overflow, unlike converting to UTC near year 1 or 9999.
        ts_ms = (when - _EPOCH) // _ONE_MS
    elif ts is None:
        raise InvalidEvent(_MISSING_FIELD, "ts: missing")
    elif kind is float:
        raise _invalid("ts", "must be integer ms since the epoch, got a float")
    else:
        raise _invalid(
            "ts",
            "must be integer ms since the epoch or an ISO-8601 string with offset, "
            f"got {json_type(ts)}",
        )
    if not 0 <= ts_ms <= _MAX_TS_MS:
        raise _invalid("ts", "out of range (1970-01-01 to 9999-12-31)")
    if ts_ms < MIN_TS_MS:
        raise InvalidEvent(
            "ts_too_old",
            "ts: before 2000-01-01; ts must be milliseconds since the Unix epoch "
            "(a value in seconds is a thousand times too small)",
        )
    return ts_ms


def refuse_ahead(ts_ms: int, received_ms: int | None, max_future_skew_ms: int) -> None:
    """Refuse (``ts_in_future``) a time further ahead of the receiver's clock than the skew
    allows; ``received_ms`` None: no clock to compare with."""
    if received_ms is not None and ts_ms - received_ms > max_future_skew_ms:
        raise InvalidEvent(
            "ts_in_future",
            f"ts: {(ts_ms - received_ms) / 1000:.0f} s ahead of the receiver's clock "
            f"(at most {max_future_skew_ms / 1000:.0f} s allowed)",
        )


def validate_event(
    raw: object,
    received_ms: int | None = None,
    max_future_skew_ms: int = DEFAULT_MAX_FUTURE_SKEW_MS,
) -> ClickEvent:
    """Check one decoded JSON value against contract §1 and return the event.

    Fields are checked in a fixed order (required ones in contract order, then
    optional ones), so the error names the first broken rule. JSON ``null`` counts
    as absent; unknown fields are ignored.

    Parameters
    ----------
    raw
        One decoded JSON value, normally a ``dict``. Not mutated.
    received_ms
        The receiver's clock (ms since the epoch); when given, an event more than
        ``max_future_skew_ms`` ahead of it is refused.
    max_future_skew_ms
        How far ahead of the receiver's clock a client's clock may be.

    Returns
    -------
    ClickEvent
        The event, with ``ts`` converted to integer ms since the epoch.

    Raises
    ------
    InvalidEvent
        With ``reason`` one of ``not_an_object``, ``missing_field``,
        ``invalid_field``, ``unknown_type``, ``ts_too_old``, ``ts_in_future`` and
        the message ``"<field>: <problem>"``.

    Examples
    --------
    >>> event = validate_event({"event_id": "e-1", "customer_id": "c-1", "session_id": "s-1",
    ...                         "type": "click", "ts": "2024-05-01T12:00:00+02:00", "x": 10})
    >>> event.ts_ms, event.x
    (1714557600000, 10)
    >>> validate_event({"event_id": "e-1", "customer_id": "c-1", "session_id": "s-1"})
    Traceback (most recent call last):
    ...
    app.errors.InvalidEvent: type: missing
    >>> validate_event({"event_id": "e-1", "customer_id": "c-1", "session_id": "s-1",
    ...                 "type": "click", "ts": 1796192115})
    Traceback (most recent call last):
    ...
    app.errors.InvalidEvent: ts: before 2000-01-01; ts must be milliseconds since the Unix epoch ...
    """
    if not isinstance(raw, dict):
        raise InvalidEvent(_NOT_AN_OBJECT, f"event: must be a JSON object, got {json_type(raw)}")
    get = raw.get

    event_id = get("event_id")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 64:
        raise _bad_required_str("event_id", event_id, 64)
    customer_id = get("customer_id")
    if not isinstance(customer_id, str) or not 0 < len(customer_id) <= 128:
        raise _bad_required_str("customer_id", customer_id, 128)
    session_id = get("session_id")
    if not isinstance(session_id, str) or not 0 < len(session_id) <= 128:
        raise _bad_required_str("session_id", session_id, 128)
    given_type = get("type")
    # The isinstance check comes first: an unhashable value cannot be looked up.
    # The canonical string is kept, so 100 k customers' recent events share 19 objects.
    type_ = _CANONICAL_TYPES.get(given_type) if isinstance(given_type, str) else None
    if type_ is None:
        raise _bad_type(given_type)
    ts_ms = parse_ts_ms(get("ts"))
    refuse_ahead(ts_ms, received_ms, max_future_skew_ms)

    page = _catalogue_name(get("page"), "page", 2048)
    product_id = _catalogue_name(get("product_id"), "product_id", 128)
    element = _catalogue_name(get("element"), "element", 256)
    x = get("x")
    if x is not None and not _is_finite_number(x):
        raise _bad_number("x", x)
    y = get("y")
    if y is not None and not _is_finite_number(y):
        raise _bad_number("y", y)
    scroll_pct = get("scroll_pct")
    if scroll_pct is not None:
        if not _is_finite_number(scroll_pct):
            raise _bad_number("scroll_pct", scroll_pct)
        if not 0 <= scroll_pct <= 100:
            raise _invalid("scroll_pct", "must be between 0 and 100")
    field = _catalogue_name(get("field"), "field", 128)
    step = _catalogue_name(get("step"), "step", 64)
    value = get("value")
    if value is not None and not _is_finite_number(value):
        raise _bad_number("value", value)
    query = get("query")
    if query is not None and (not isinstance(query, str) or len(query) > 512):
        raise _bad_optional_str("query", query, 512)
    results = get("results")
    if results is not None and (type(results) is not int or not 0 <= results <= _MAX_INT):
        raise _invalid("results", "must be a non-negative integer")
    error = get("error")
    if error is not None and (not isinstance(error, str) or len(error) > 512):
        raise _bad_optional_str("error", error, 512)
    props = get("props")
    if props is not None:
        if not isinstance(props, dict):
            raise _invalid("props", f"must be an object, got {json_type(props)}")
        try:
            props_size = len(orjson.dumps(props))
        except orjson.JSONEncodeError:
            raise _invalid("props", "not encodable as JSON") from None
        if props_size > _MAX_PROPS_BYTES:
            raise _invalid("props", f"must be at most {_MAX_PROPS_BYTES} bytes as JSON")

    return ClickEvent(
        event_id, customer_id, session_id, type_, ts_ms,
        page, product_id, element, x, y, scroll_pct, field, step,
        value, query, results, error, props,
    )  # fmt: skip


def event_to_wire(event: ClickEvent) -> dict[str, Any]:
    """The event as the JSON object written to ``clicks`` (``ts`` as integer ms).

    Only fields that are set appear; ``validate_event(event_to_wire(e)) == e``.
    ``props`` is the event's own dict, not a copy.

    Parameters
    ----------
    event
        A validated event.

    Returns
    -------
    dict
        The contract §1 object, ready for ``orjson.dumps``.

    Examples
    --------
    >>> wire = event_to_wire(ClickEvent("e-1", "c-1", "s-1", "click", 1714557600000, x=3.5))
    >>> wire["ts"], wire["x"], "page" in wire
    (1714557600000, 3.5, False)
    """
    wire: dict[str, Any] = {
        "event_id": event.event_id,
        "customer_id": event.customer_id,
        "session_id": event.session_id,
        "type": event.type,
        "ts": event.ts_ms,
    }
    for name in _OPTIONAL_FIELDS:
        value = getattr(event, name)
        if value is not None:
            wire[name] = value
    return wire


def decode_event(
    value: bytes | None,
    received_ms: int | None = None,
    max_future_skew_ms: int = DEFAULT_MAX_FUTURE_SKEW_MS,
) -> ClickEvent:
    """Decode and validate one message value from the ``clicks`` topic.

    Examples
    --------
    >>> decode_event(b'{"event_id":"e","customer_id":"c","session_id":"s","type":"click",'
    ...              b'"ts":1700000000000}')
    ClickEvent(event_id='e', customer_id='c', session_id='s', type='click', ...)
    """
    if value is None:
        raise InvalidEvent("invalid_json", "message: empty value")
    try:
        raw = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("invalid_json", f"message: not valid JSON ({exc})") from None
    return validate_event(raw, received_ms, max_future_skew_ms)
