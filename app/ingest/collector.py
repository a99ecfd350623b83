"""The HTTP collector's request bodies (contract §1): decode, split, validate.

Pure: no aiohttp, no Faust. The web view only maps the result to a response
and sends the accepted events on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import orjson

from app.errors import InvalidEvent, PayloadTooLarge
from app.ingest.customer_ids import hash_customer_id, pseudonymise_payload
from app.ingest.events import DEFAULT_MAX_FUTURE_SKEW_MS, ClickEvent, validate_event

__all__ = [
    "MAX_BATCH_EVENTS",
    "MAX_BODY_BYTES",
    "BatchResult",
    "Rejection",
    "json_content_type_problem",
    "parse_event_batch",
]

MAX_BODY_BYTES = 1024 * 1024
MAX_BATCH_EVENTS = 500

# A refused Content-Type or charset is echoed back cut to this many characters.
_MAX_ECHO_CHARS = 64
_JSON_TYPE_NAMES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


@dataclass(slots=True)
class Rejection:
    """One event of a request that broke the contract, with the decoded value as sent."""

    index: int
    event_id: str | None
    reason: str
    error: str
    payload: object


@dataclass(slots=True)
class BatchResult:
    """The events of one request, split into accepted and rejected."""

    accepted: list[ClickEvent]
    rejected: list[Rejection]

    def response_body(self) -> dict[str, Any]:
        """The JSON body the sender reads (contract §1, HTTP collector).

        Examples
        --------
        >>> BatchResult(accepted=[], rejected=[]).response_body()
        {'accepted': 0, 'rejected': 0, 'errors': []}
        """
        return {
            "accepted": len(self.accepted),
            "rejected": len(self.rejected),
            "errors": [
                {"index": item.index, "event_id": item.event_id, "error": item.error}
                for item in self.rejected
            ],
        }

    @property
    def status(self) -> int:
        """``202`` when at least one event was accepted, else ``400``."""
        return 202 if self.accepted else 400


def json_content_type_problem(content_type: str | None) -> str | None:
    """Why a request's ``Content-Type`` is not JSON (the error of a ``415``), or ``None``.

    ``application/json`` is accepted with or without parameters; a ``charset`` other
    than UTF-8 is refused (JSON is UTF-8, RFC 8259). A browser's ``sendBeacon`` sends the
    type of its ``Blob``: ``new Blob([body], {type: "application/json"})``.

    Examples
    --------
    >>> json_content_type_problem("application/json; charset=UTF-8") is None
    True
    >>> json_content_type_problem("text/plain;charset=UTF-8")
    "Content-Type: must be application/json, got 'text/plain'"
    >>> json_content_type_problem(None)
    'Content-Type: must be application/json, got none'
    >>> json_content_type_problem('application/json; charset="latin-1"')
    "Content-Type: charset must be utf-8, got 'latin-1'"
    """
    if not content_type:
        return "Content-Type: must be application/json, got none"
    media_type, *params = content_type.split(";")
    media_type = media_type.strip().lower()
    if media_type != "application/json":
        shown = media_type[:_MAX_ECHO_CHARS]
        return f"Content-Type: must be application/json, got {shown!r}"
    for param in params:
        name, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            return f"Content-Type: charset must be utf-8, got {charset[:_MAX_ECHO_CHARS]!r}"
    return None


def parse_event_batch(
    body: bytes,
    received_ms: int | None = None,
    max_future_skew_ms: int = DEFAULT_MAX_FUTURE_SKEW_MS,
    customer_id_salt: str = "",
) -> BatchResult:
    """Decode a ``POST /v1/events`` body and validate each event in it.

    The body is one event object or ``{"events": [...]}`` with 1 to
    ``MAX_BATCH_EVENTS`` events. Events are validated independently: a bad
    event is rejected without affecting the others. Duplicates are kept.

    Parameters
    ----------
    body
        The raw request body, at most ``MAX_BODY_BYTES``.
    received_ms, max_future_skew_ms
        The receiver's clock and how far ahead of it an event may be (``validate_event``).
    customer_id_salt
        When set, accepted events carry ``hash_customer_id(customer_id, salt)`` and
        rejected ones keep only what ``pseudonymise_payload`` keeps
        (``app.ingest.customer_ids``).

    Returns
    -------
    BatchResult
        Accepted events in request order, and one ``Rejection`` per bad event.

    Raises
    ------
    PayloadTooLarge
        ``reason="too_large"``: the body is over ``MAX_BODY_BYTES``.
    InvalidEvent
        When the body as a whole is unusable: ``reason`` is ``invalid_json``,
        ``invalid_body`` or ``too_many_events``.

    Examples
    --------
    >>> good = b'{"event_id": "e-1", "customer_id": "c-1", "session_id": "s-1", '
    >>> good += b'"type": "click", "ts": 1714557600000}'
    >>> result = parse_event_batch(b'{"events": [' + good + b', {"event_id": "e-2"}]}')
    >>> result.status, result.response_body()["errors"]
    (202, [{'index': 1, 'event_id': 'e-2', 'error': 'customer_id: missing'}])
    >>> parse_event_batch(b'[]')
    Traceback (most recent call last):
    ...
    app.errors.InvalidEvent: body: must be an event object or {"events": [...]}, got array
    """
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge("too_large", "body: larger than 1 MiB")
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("invalid_json", f"body: not valid JSON ({exc})") from None

    if not isinstance(decoded, dict):
        kind = _JSON_TYPE_NAMES.get(type(decoded), "null")
        raise InvalidEvent(
            "invalid_body", f'body: must be an event object or {{"events": [...]}}, got {kind}'
        )
    if "events" in decoded:
        items = decoded["events"]
        if not isinstance(items, list):
            raise InvalidEvent("invalid_body", "events: must be an array")
        if not items:
            raise InvalidEvent("invalid_body", "events: empty")
        if len(items) > MAX_BATCH_EVENTS:
            raise InvalidEvent(
                "too_many_events",
                f"events: at most {MAX_BATCH_EVENTS} per request, got {len(items)}",
            )
    else:
        items = [decoded]

    accepted: list[ClickEvent] = []
    rejected: list[Rejection] = []
    for index, item in enumerate(items):
        try:
            event = validate_event(item, received_ms, max_future_skew_ms)
        except InvalidEvent as exc:
            event_id = item.get("event_id") if isinstance(item, dict) else None
            rejected.append(
                Rejection(
                    index=index,
                    event_id=event_id if isinstance(event_id, str) else None,
                    reason=exc.reason,
                    error=str(exc),
                    payload=pseudonymise_payload(item, customer_id_salt)
                    if customer_id_salt
                    else item,
                )
            )
            continue
        if customer_id_salt:
            event = replace(event, customer_id=hash_customer_id(event.customer_id,
                                                                 customer_id_salt))  # fmt: skip
        accepted.append(event)
    return BatchResult(accepted=accepted, rejected=rejected)
