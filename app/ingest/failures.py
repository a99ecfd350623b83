"""Records for ``clicks-failed``: the rejected event, kept with its reason."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["failed_event_record"]


def failed_event_record(
    *,
    reason: str,
    error: str,
    payload: object,
    source: str,
    received_ts_ms: int,
    origin: dict[str, Any] | None = None,
) -> bytes:
    """The JSON value written to ``clicks-failed`` for one rejected event.

    ``payload`` is the decoded JSON value when there was one, else the raw
    bytes: those are kept as text when they are UTF-8 and as hex otherwise,
    so nothing a sender wrote is lost.

    Examples
    --------
    >>> orjson.loads(failed_event_record(reason="invalid_json", error="bad", payload=b"\\xff",
    ...     source="kafka", received_ts_ms=1))["payload_hex"]
    'ff'
    """
    record: dict[str, Any] = {
        "reason": reason,
        "error": error,
        "source": source,
        "received_ts": received_ts_ms,
    }
    if isinstance(payload, bytes):
        try:
            record["payload_text"] = payload.decode()
        except UnicodeDecodeError:
            record["payload_hex"] = payload.hex()
    else:
        record["payload"] = payload
    if origin:
        record["origin"] = origin
    return orjson.dumps(record)
