"""The per-customer state kept in the ``customer_to_state`` table, and its codec.

Plain slotted dataclasses rather than ``faust.Record``: the pure logic in
``app/`` works on them without importing Faust, and the orjson codec below is
about ten times faster than Record (de)serialisation on the changelog hot path.
The encoded form is versioned (``"v"``) so a rolling upgrade can read old values.
"""

from __future__ import annotations

import sys
from array import array
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

import orjson

__all__ = [
    "CustomerProfile",
    "CustomerState",
    "RecentEvent",
    "SessionState",
    "SignalRecord",
    "decode_state",
    "encode_state",
]

_CODEC_VERSION = 1


class RecentEvent(NamedTuple):
    """The few fields of a past event that the detectors look back at.

    A tuple, stored as a JSON array: the recent-event window is most of a
    state's size, in memory and on the changelog.
    """

    ts_ms: int
    type: str
    element: str | None = None
    x: float | None = None
    y: float | None = None
    step: str | None = None
    error: str | None = None


@dataclass(slots=True)
class SessionState:
    """The live visit: where the customer is and what happened recently, in event time."""

    session_id: str
    started_ts_ms: int
    last_ts_ms: int
    event_count: int = 0
    page: str | None = None
    product_id: str | None = None
    step: str | None = None
    cart_value: float = 0.0
    # Sorted by ts_ms, oldest first; bounded by the recent-event window setting.
    recent: list[RecentEvent] = field(default_factory=list)
    failed_payment_attempts: int = 0
    # Reasons already acted on in this session (one intervention per reason per session).
    fired_reasons: tuple[str, ...] = ()


@dataclass(slots=True)
class CustomerProfile:
    """Lifetime facts about a customer."""

    first_seen_ts_ms: int
    last_seen_ts_ms: int
    visits: int = 0
    events: int = 0
    purchases: int = 0


@dataclass(slots=True)
class SignalRecord:
    """A signal that fired, kept for the customer view."""

    name: str
    score: float
    ts_ms: int
    event_id: str


@dataclass(slots=True)
class CustomerState:
    """Everything nudgeflow keeps about one customer, partitioned with ``clicks``.

    Memory is the bound on how many customers a worker holds, so fields that
    change rarely are tuples (the empty one is shared) and remembered event ids
    are 64-bit digests in an array rather than strings.
    """

    customer_id: str
    profile: CustomerProfile
    session: SessionState | None = None
    segment: str = "new"
    # Oldest first; bounded. Digests (``app.detect.state.event_digest``) of the last event
    # ids: exact repeats are dropped, since senders retry.
    seen_event_digests: array[int] = field(default_factory=lambda: array("Q"))
    # Oldest first; bounded. A session seen before is not a new visit, and late
    # events of an ended one only count in the profile.
    seen_session_ids: tuple[str, ...] = ()
    ended_session_ids: tuple[str, ...] = ()
    # Newest first; bounded.
    signals: tuple[SignalRecord, ...] = ()
    # Newest first; bounded. Each is the intervention object as sent.
    interventions: tuple[dict[str, Any], ...] = ()

    @property
    def scores(self) -> dict[str, float]:
        """The latest score of each signal still remembered in ``signals``."""
        scores: dict[str, float] = {}
        for signal in self.signals:
            scores.setdefault(signal.name, signal.score)
        return scores


def encode_state(state: CustomerState) -> bytes:
    """Serialise a state for the table changelog.

    Examples
    --------
    >>> s = CustomerState("c1", CustomerProfile(first_seen_ts_ms=1, last_seen_ts_ms=2))
    >>> decode_state(encode_state(s)) == s
    True
    """
    # Built by hand rather than left to orjson's dataclass support: orjson cannot
    # write NamedTuples or arrays, and a ``default`` hook called for each of the
    # 32 recent events cost more than the rest of the encoding (10 % of a worker).
    session = state.session
    return orjson.dumps(
        {
            "v": _CODEC_VERSION,
            "s": {
                "customer_id": state.customer_id,
                "profile": state.profile,
                "session": None
                if session is None
                else {
                    **{name: getattr(session, name) for name in _SESSION_SCALARS},
                    "recent": [tuple(event) for event in session.recent],
                    "fired_reasons": session.fired_reasons,
                },
                "segment": state.segment,
                "seen_event_digests": _digests_to_hex(state.seen_event_digests),
                "seen_session_ids": state.seen_session_ids,
                "ended_session_ids": state.ended_session_ids,
                "signals": state.signals,
                "interventions": state.interventions,
            },
        }
    )


def decode_state(data: bytes) -> CustomerState:
    """Read a state written by ``encode_state``."""
    raw = orjson.loads(data)
    if not isinstance(raw, dict) or raw.get("v") != _CODEC_VERSION:
        version = raw.get("v") if isinstance(raw, dict) else None
        raise ValueError(f"not a customer state of version {_CODEC_VERSION} (found {version!r})")
    s = raw["s"]
    session = s["session"]
    return CustomerState(
        customer_id=s["customer_id"],
        profile=CustomerProfile(**s["profile"]),
        session=None
        if session is None
        else SessionState(
            **{k: v for k, v in session.items() if k not in ("recent", "fired_reasons")},
            recent=[RecentEvent(*e) for e in session["recent"]],
            fired_reasons=tuple(session["fired_reasons"]),
        ),
        segment=s["segment"],
        seen_event_digests=_digests_from_hex(s["seen_event_digests"]),
        seen_session_ids=tuple(s["seen_session_ids"]),
        ended_session_ids=tuple(s["ended_session_ids"]),
        signals=tuple(SignalRecord(**r) for r in s["signals"]),
        interventions=tuple(s["interventions"]),
    )


_SESSION_SCALARS = tuple(
    f.name for f in fields(SessionState) if f.name not in ("recent", "fired_reasons")
)


def _digests_to_hex(digests: array[int]) -> str:
    if sys.byteorder == "big":  # the wire format is little-endian
        digests = array("Q", digests)
        digests.byteswap()
    return digests.tobytes().hex()


def _digests_from_hex(text: str) -> array[int]:
    digests = array("Q", bytes.fromhex(text))
    if sys.byteorder == "big":
        digests.byteswap()
    return digests
