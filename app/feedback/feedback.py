"""Feedback from chatbot services (contract §3): the validated form and its rules.

Pure: no Faust, no Redis, no clock. The HTTP view and the agent reading the
``intervention-feedback`` topic both use ``parse_feedback`` and ``check_indexed``,
so both apply the very same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from app.errors import InvalidEvent, PayloadTooLarge
from app.ingest.events import DEFAULT_MAX_FUTURE_SKEW_MS, json_type, parse_ts_ms, refuse_ahead

__all__ = [
    "FUNNEL",
    "MAX_FEEDBACK_BYTES",
    "OUTCOMES",
    "Feedback",
    "check_indexed",
    "feedback_to_wire",
    "latest_outcome",
    "parse_feedback",
]

#: The outcomes of contract §3, in the contract's order (error messages list them so).
OUTCOMES = ("delivered", "shown", "accepted", "dismissed", "converted")
#: The same outcomes from first to last step of the funnel: between two outcomes with
#: the same ``ts``, the later step is the latest (a dismissal is read after the showing,
#: a conversion after an acceptance).
FUNNEL = ("delivered", "shown", "dismissed", "accepted", "converted")
#: A feedback object is about 200 bytes; this leaves room for fields added later.
MAX_FEEDBACK_BYTES = 16 * 1024

# The collector's limits (contract §1): customer ids 1-128 characters, event ids
# 1-64; an intervention id (32 hex characters) is held to the event id's limit.
_MAX_INTERVENTION_ID = 64
_MAX_CUSTOMER_ID = 128
# Unknown outcomes are echoed back to the sender, cut to this many characters.
_MAX_ECHO_CHARS = 64
_RANK = {outcome: rank for rank, outcome in enumerate(FUNNEL)}
_CANONICAL_OUTCOMES = {outcome: outcome for outcome in OUTCOMES}


@dataclass(slots=True, frozen=True)
class Feedback:
    """One validated feedback message (contract §3), with ``ts`` as integer ms."""

    intervention_id: str
    customer_id: str
    outcome: str
    ts_ms: int


def parse_feedback(
    body: bytes,
    received_ms: int | None = None,
    max_future_skew_ms: int = DEFAULT_MAX_FUTURE_SKEW_MS,
) -> Feedback:
    """Decode and check one feedback body (an HTTP request or a topic message).

    Fields are checked in contract order, so the error names the first broken
    rule. JSON ``null`` counts as absent; unknown fields are ignored.

    Parameters
    ----------
    body
        The raw bytes: a JSON object.
    received_ms
        The receiver's clock (ms since the epoch); when given, a ``ts`` more than
        ``max_future_skew_ms`` ahead of it is refused, as for click events.
    max_future_skew_ms
        How far ahead of the receiver's clock a client's clock may be.

    Returns
    -------
    Feedback
        The feedback, with ``ts`` as integer ms since the epoch.

    Raises
    ------
    InvalidEvent
        With ``reason`` one of ``too_large`` (a ``PayloadTooLarge``), ``invalid_json``,
        ``not_an_object``, ``missing_field``, ``invalid_field``, ``unknown_outcome``,
        ``ts_too_old``, ``ts_in_future`` and the message ``"<field>: <problem>"``.

    Examples
    --------
    >>> parse_feedback(b'{"intervention_id": "i-1", "customer_id": "c-1", '
    ...                b'"outcome": "shown", "ts": 1714557600000}')
    Feedback(intervention_id='i-1', customer_id='c-1', outcome='shown', ts_ms=1714557600000)
    >>> parse_feedback(b'{"intervention_id": "i-1", "customer_id": "c-1", "outcome": "liked",'
    ...                b' "ts": 1714557600000}')
    Traceback (most recent call last):
    ...
    app.errors.InvalidEvent: outcome: unknown outcome 'liked'; one of delivered, shown, ...
    """
    if len(body) > MAX_FEEDBACK_BYTES:
        raise PayloadTooLarge("too_large", f"body: larger than {MAX_FEEDBACK_BYTES} bytes")
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("invalid_json", f"body: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise InvalidEvent(
            "not_an_object", f"body: must be a feedback object, got {json_type(raw)}"
        )
    get = raw.get
    intervention_id = _required_str("intervention_id", get("intervention_id"),
                                    _MAX_INTERVENTION_ID)  # fmt: skip
    customer_id = _required_str("customer_id", get("customer_id"), _MAX_CUSTOMER_ID)
    given = get("outcome")
    # The isinstance check comes first: an unhashable value cannot be looked up.
    outcome = _CANONICAL_OUTCOMES.get(given) if isinstance(given, str) else None
    if outcome is None:
        raise _bad_outcome(given)
    ts_ms = parse_ts_ms(get("ts"))  # the time rules of click events
    refuse_ahead(ts_ms, received_ms, max_future_skew_ms)
    return Feedback(intervention_id, customer_id, outcome, ts_ms)


def check_indexed(feedback: Feedback, indexed: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """Refuse feedback on an intervention nudgeflow does not know, or for another customer.

    ``indexed`` is what delivery kept of the intervention (``None``: never
    delivered, or forgotten after the retention); it is returned when it fits.

    Raises
    ------
    InvalidEvent
        ``unknown_intervention`` or ``customer_mismatch``; the message does not say
        whose intervention it is.

    Examples
    --------
    >>> fb = Feedback("i-1", "c-1", "shown", 1714557600000)
    >>> check_indexed(fb, {"customer_id": "c-1", "reason": "rage_click"})["reason"]
    'rage_click'
    >>> check_indexed(fb, None)
    Traceback (most recent call last):
    ...
    app.errors.InvalidEvent: intervention not found
    """
    if indexed is None:
        raise InvalidEvent("unknown_intervention", "intervention not found")
    if indexed.get("customer_id") != feedback.customer_id:
        raise InvalidEvent(
            "customer_mismatch", "customer_id: not the customer this intervention was for"
        )
    return indexed


def latest_outcome(outcomes: Mapping[str, int]) -> tuple[str, int] | None:
    """The latest of an intervention's outcomes (outcome → newest ts): the newest ``ts``,
    ties broken by the funnel order (``FUNNEL``). Unknown outcomes are ignored.

    Examples
    --------
    >>> latest_outcome({"shown": 2_000, "accepted": 1_000})
    ('shown', 2000)
    >>> latest_outcome({"accepted": 1_000, "dismissed": 1_000})
    ('accepted', 1000)
    >>> latest_outcome({}) is None
    True
    """
    known = [(ts_ms, _RANK[outcome], outcome) for outcome, ts_ms in outcomes.items()
             if outcome in _RANK]  # fmt: skip
    if not known:
        return None
    ts_ms, _, outcome = max(known)
    return outcome, ts_ms


def feedback_to_wire(feedback: Feedback) -> dict[str, Any]:
    """The feedback as the JSON object of contract §3 (``ts`` as integer ms).

    Examples
    --------
    >>> feedback_to_wire(Feedback("i-1", "c-1", "shown", 1714557600000))["ts"]
    1714557600000
    """
    return {
        "intervention_id": feedback.intervention_id,
        "customer_id": feedback.customer_id,
        "outcome": feedback.outcome,
        "ts": feedback.ts_ms,
    }


def _required_str(name: str, value: object, max_len: int) -> str:
    if isinstance(value, str) and 0 < len(value) <= max_len:
        return value
    if value is None:
        raise InvalidEvent("missing_field", f"{name}: missing")
    if not isinstance(value, str):
        raise InvalidEvent("invalid_field", f"{name}: must be a string, got {json_type(value)}")
    # An en dash, as the contract writes length ranges.
    raise InvalidEvent("invalid_field", f"{name}: must be 1–{max_len} characters")  # noqa: RUF001


def _bad_outcome(value: object) -> InvalidEvent:
    if value is None:
        return InvalidEvent("missing_field", "outcome: missing")
    if not isinstance(value, str):
        return InvalidEvent("invalid_field", f"outcome: must be a string, got {json_type(value)}")
    shown = value[:_MAX_ECHO_CHARS] + ("..." if len(value) > _MAX_ECHO_CHARS else "")
    return InvalidEvent(
        "unknown_outcome", f"outcome: unknown outcome '{shown}'; one of {', '.join(OUTCOMES)}"
    )
