"""Lines to paced batches, the pure part of ``nudgeflow replay``.

``read_events`` parses JSONL lines, ``schedule`` encodes each event and gives it
the time it is due (by rate, by recorded speed, or at once), optionally moving
its ``ts`` to now, and ``batches`` groups due events into requests. No clocks,
no I/O: "now" comes in as an argument.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from app.errors import InvalidEvent
from app.ingest.collector import MAX_BODY_BYTES
from app.ingest.events import validate_event

__all__ = [
    "Batch",
    "OutgoingEvent",
    "Pacing",
    "ParsedLine",
    "batches",
    "due_time",
    "event_ts_ms",
    "read_events",
    "schedule",
    "shift_ts",
]

# Events due within this long of the first one of a batch go out together: 10 ms
# keeps pacing error far below what a recorded session can show, and lets 50k
# events/s go out as ~500-event groups instead of one timer per event.
_PACING_WINDOW_S = 0.010
# b'{"events":[' and b']}' around the comma-joined events.
_BODY_OVERHEAD_BYTES = 13
_UTF8_BOM = b"\xef\xbb\xbf"
_JSON_TYPE_NAMES: dict[type, str] = {list: "array", str: "string", int: "number",
                                     float: "number", bool: "boolean"}  # fmt: skip
_TS_PROBE = {"event_id": "ts-probe", "customer_id": "ts-probe", "session_id": "ts-probe",
             "type": "click"}  # fmt: skip


@dataclass(slots=True, frozen=True)
class ParsedLine:
    """One line of the input: a JSON object to send, or why it cannot be sent."""

    line_no: int
    event: dict[str, Any] | None = None
    error: str | None = None


def read_events(lines: Iterable[bytes | str]) -> Iterator[ParsedLine]:
    """Parse JSONL lines, numbered from 1; blank lines are skipped.

    A line that is not JSON, or not a JSON object, comes back with ``error`` set.
    Objects are not validated: that is the server's job.

    Examples
    --------
    >>> for line in read_events(['{"type": "click"}', "", "[1]", "{oops"]):
    ...     print(line.line_no, line.event, line.error)
    1 {'type': 'click'} None
    3 None must be a JSON object, got array
    4 None not valid JSON (unexpected character, expected a string key: line 1 column 2 (char 1))
    """
    for line_no, line in enumerate(lines, start=1):
        raw = line.encode() if isinstance(line, str) else line
        if line_no == 1:
            raw = raw.removeprefix(_UTF8_BOM)
        if not raw.strip():
            continue
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            yield ParsedLine(line_no, error=f"not valid JSON ({exc})")
            continue
        if isinstance(value, dict):
            yield ParsedLine(line_no, event=value)
        else:
            yield ParsedLine(line_no, error=f"must be a JSON object, got {_json_type(value)}")


def event_ts_ms(event: dict[str, Any]) -> int | None:
    """The event's ``ts`` as integer ms by the contract's rules, or None if it breaks them.

    Only ``ts`` is looked at: an event with other problems still has a time.

    Examples
    --------
    >>> event_ts_ms({"ts": "2024-05-01T12:00:00Z", "type": "teleport"})
    1714564800000
    >>> event_ts_ms({"ts": 1.5}) is None, event_ts_ms({}) is None
    (True, True)
    """
    try:
        return validate_event({**_TS_PROBE, "ts": event.get("ts")}).ts_ms
    except InvalidEvent:
        return None


def shift_ts(event: dict[str, Any], offset_ms: int) -> dict[str, Any]:
    """A copy of the event with ``ts`` moved by ``offset_ms``, written as integer ms.

    An event whose ``ts`` breaks the contract is returned unchanged, for the server
    to reject.

    Examples
    --------
    >>> shift_ts({"event_id": "e", "ts": "2024-05-01T12:00:00+00:00"}, 500)
    {'event_id': 'e', 'ts': 1714564800500}
    >>> shift_ts({"ts": "yesterday"}, 500)
    {'ts': 'yesterday'}
    """
    ts_ms = event_ts_ms(event)
    if ts_ms is None:
        return event
    return {**event, "ts": ts_ms + offset_ms}


@dataclass(slots=True, frozen=True)
class Pacing:
    """How fast to replay: ``rate_per_s`` events a second, ``speed`` times the recorded
    pace (by ``ts``), or neither: as fast as possible."""

    rate_per_s: float | None = None
    speed: float | None = None

    def __post_init__(self) -> None:
        if self.rate_per_s is not None and self.speed is not None:
            raise ValueError("pace by rate_per_s or by speed, not both")
        for name in ("rate_per_s", "speed"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value}")


def due_time(pacing: Pacing, index: int, ts_ms: int | None, first_ts_ms: int | None) -> float:
    """Seconds after the replay starts at which an event may be sent, at the earliest.

    Parameters
    ----------
    pacing
        The replay's pacing.
    index
        The event's position among the events sent, from 0.
    ts_ms, first_ts_ms
        The event's time and the first event's time (only used with ``speed``);
        None when the event has no valid ``ts``, which makes it due at once.

    Examples
    --------
    >>> due_time(Pacing(), 7, None, None)
    0.0
    >>> due_time(Pacing(rate_per_s=200), 40, None, None)
    0.2
    >>> due_time(Pacing(speed=2), 3, 11_000, 10_000)
    0.5
    """
    if pacing.rate_per_s is not None:
        return index / pacing.rate_per_s
    if pacing.speed is not None and ts_ms is not None and first_ts_ms is not None:
        return max(0.0, (ts_ms - first_ts_ms) / 1000 / pacing.speed)
    return 0.0


@dataclass(slots=True, frozen=True)
class OutgoingEvent:
    """One event ready to send: its encoded JSON, Kafka key and due time."""

    line_no: int
    key: bytes | None
    payload: bytes
    due_s: float


def schedule(
    lines: Iterable[ParsedLine], pacing: Pacing, *, shift_to_ms: int | None = None
) -> Iterator[OutgoingEvent]:
    """Encode the events of ``lines`` and give each its due time; bad lines are skipped.

    With ``shift_to_ms``, every ``ts`` moves by ``shift_to_ms`` minus the first valid
    ``ts``, so the stream looks live. Due times never go backwards: the file's order
    is kept, and an event recorded out of order goes right after its predecessor.

    Examples
    --------
    >>> lines = read_events(['{"customer_id": "c1", "ts": 1714564800000}',
    ...                      '{"ts": 1714564802000}'])
    >>> for out in schedule(lines, Pacing(speed=1), shift_to_ms=1714600000000):
    ...     print(out.line_no, out.key, out.payload, out.due_s)
    1 b'c1' b'{"customer_id":"c1","ts":1714600000000}' 0.0
    2 None b'{"ts":1714600002000}' 2.0
    """
    first_ts_ms: int | None = None
    last_due_s = 0.0
    index = 0
    for line in lines:
        event = line.event
        if event is None:
            continue
        ts_ms = event_ts_ms(event) if shift_to_ms is not None or pacing.speed else None
        if first_ts_ms is None:
            first_ts_ms = ts_ms
        if shift_to_ms is not None and ts_ms is not None and first_ts_ms is not None:
            event = shift_ts(event, shift_to_ms - first_ts_ms)
        last_due_s = max(last_due_s, due_time(pacing, index, ts_ms, first_ts_ms))
        customer_id = event.get("customer_id")
        key = customer_id.encode() if isinstance(customer_id, str) else None
        yield OutgoingEvent(line.line_no, key, orjson.dumps(event), last_due_s)
        index += 1


@dataclass(slots=True, frozen=True)
class Batch:
    """Events that go out in one request (HTTP) or one burst (Kafka), in file order."""

    lane: int
    due_s: float
    events: list[OutgoingEvent]

    def http_body(self) -> bytes:
        """The ``POST /v1/events`` body: ``{"events": [...]}`` with the encoded events."""
        return b'{"events":[' + b",".join(e.payload for e in self.events) + b"]}"


def batches(
    events: Iterable[OutgoingEvent],
    *,
    max_events: int,
    max_bytes: int = MAX_BODY_BYTES,
    lanes: int = 1,
    window_s: float = _PACING_WINDOW_S,
) -> Iterator[Batch]:
    """Group paced events into batches of at most ``max_events`` and ``max_bytes``.

    Events due within ``window_s`` of the first of a group share batches; a batch
    is due when its last event is, so no event goes early. Each key (customer)
    always lands in the same one of ``lanes`` lanes, and a lane's batches are
    yielded in order. An event larger than ``max_bytes`` goes alone (the server
    answers 413 for it).

    Examples
    --------
    >>> events = [OutgoingEvent(n, None, b"{}", n / 100) for n in range(5)]
    >>> [(b.due_s, [e.line_no for e in b.events])
    ...  for b in batches(events, max_events=2, window_s=0.025)]
    [(0.01, [0, 1]), (0.02, [2]), (0.04, [3, 4])]
    """
    if max_events < 1 or lanes < 1:
        raise ValueError("max_events and lanes must be at least 1")
    pending: list[list[OutgoingEvent]] = [[] for _ in range(lanes)]
    sizes = [_BODY_OVERHEAD_BYTES] * lanes
    window_end_s: float | None = None
    for event in events:
        if window_end_s is not None and event.due_s >= window_end_s:
            yield from _flush(pending, sizes)
            window_end_s = None
        if window_end_s is None:
            window_end_s = event.due_s + window_s
        lane = hash(event.key) % lanes
        size = len(event.payload) + 1
        if pending[lane] and (
            len(pending[lane]) >= max_events or sizes[lane] + size > max_bytes + 1
        ):
            yield Batch(lane, pending[lane][-1].due_s, pending[lane])
            pending[lane], sizes[lane] = [], _BODY_OVERHEAD_BYTES
        pending[lane].append(event)
        sizes[lane] += size
    yield from _flush(pending, sizes)


def _flush(pending: list[list[OutgoingEvent]], sizes: list[int]) -> Iterator[Batch]:
    for lane, lane_events in enumerate(pending):
        if lane_events:
            yield Batch(lane, lane_events[-1].due_s, lane_events)
            pending[lane], sizes[lane] = [], _BODY_OVERHEAD_BYTES


def _json_type(value: object) -> str:
    return _JSON_TYPE_NAMES.get(type(value), "null")
