"""Folding click events into per-customer state, in event time.

Pure: no Faust, no I/O, no clock. ``advance`` updates the state it is given in
place (like River's ``learn_one``) because it runs once per event on the hot path
and the state is owned by the table; it returns the state for convenience.
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass
from hashlib import blake2b

from app.ingest.events import ClickEvent
from tables.customer_state import (
    CustomerProfile,
    CustomerState,
    RecentEvent,
    SessionState,
    SignalRecord,
)

__all__ = [
    "StateLimits",
    "advance",
    "close_session",
    "event_digest",
    "is_duplicate",
    "new_state",
    "record_signal",
]


@dataclass(slots=True, frozen=True)
class StateLimits:
    """Bounds that keep one customer's state small."""

    recent_events_max: int = 32
    seen_event_ids_max: int = 64
    seen_session_ids_max: int = 16
    signals_max: int = 20
    interventions_max: int = 10


def new_state(event: ClickEvent) -> CustomerState:
    """The state of a customer before their first event.

    Examples
    --------
    >>> from app.ingest.events import ClickEvent
    >>> s = new_state(ClickEvent("e1", "c1", "s1", "page_view", 1000))
    >>> (s.customer_id, s.profile.visits, s.session)
    ('c1', 0, None)
    """
    return CustomerState(
        customer_id=event.customer_id,
        profile=CustomerProfile(first_seen_ts_ms=event.ts_ms, last_seen_ts_ms=event.ts_ms),
    )


def event_digest(event_id: str) -> int:
    """A stable 64-bit digest of an event id (Python's ``hash`` differs per process).

    Examples
    --------
    >>> event_digest("e-1") == event_digest("e-1") != event_digest("e-2")
    True
    """
    return int.from_bytes(blake2b(event_id.encode(), digest_size=8).digest(), "little")


def is_duplicate(state: CustomerState | None, event: ClickEvent) -> bool:
    """True if this exact event id was already folded into the state (a sender retry)."""
    return state is not None and event_digest(event.event_id) in state.seen_event_digests


def advance(state: CustomerState | None, event: ClickEvent, limits: StateLimits) -> CustomerState:
    """Fold one (non-duplicate) event into the customer's state.

    Events may arrive out of order: the recent-event window is kept sorted by
    event time, and an event of an earlier session only updates the profile.

    Examples
    --------
    >>> from app.ingest.events import ClickEvent
    >>> s = advance(None, ClickEvent("e1", "c1", "s1", "page_view", 1000, page="/"), StateLimits())
    >>> (s.session.session_id, s.session.page, s.profile.visits, len(s.seen_event_digests))
    ('s1', '/', 1, 1)
    """
    if state is None:
        state = new_state(event)
    digests = state.seen_event_digests
    digests.append(event_digest(event.event_id))
    if len(digests) > limits.seen_event_ids_max:
        del digests[: len(digests) - limits.seen_event_ids_max]
    profile = state.profile
    profile.events += 1
    profile.first_seen_ts_ms = min(profile.first_seen_ts_ms, event.ts_ms)
    profile.last_seen_ts_ms = max(profile.last_seen_ts_ms, event.ts_ms)
    if event.type == "purchase":
        profile.purchases += 1

    session = state.session
    if session is None or session.session_id != event.session_id:
        if event.session_id in state.ended_session_ids or (
            session is not None and event.ts_ms < session.started_ts_ms
        ):
            return state  # a straggler from an earlier visit: counted, not replayed
        # One live session per customer: switching devices starts a fresh window.
        session = SessionState(event.session_id, event.ts_ms, event.ts_ms)
        state.session = session
        if event.session_id not in state.seen_session_ids:
            state.seen_session_ids = _remembered(
                state.seen_session_ids, event.session_id, limits.seen_session_ids_max
            )
            profile.visits += 1
            state.segment = "returning" if profile.visits > 1 else "new"

    _update_session(session, event, limits.recent_events_max)
    return state


def close_session(state: CustomerState, event: ClickEvent, limits: StateLimits) -> None:
    """End the live session once a ``session_end`` event has been looked at."""
    session = state.session
    if (
        event.type == "session_end"
        and session is not None
        and session.session_id == event.session_id
    ):
        state.session = None
        state.ended_session_ids = _remembered(
            state.ended_session_ids, event.session_id, limits.seen_session_ids_max
        )


def record_signal(
    state: CustomerState, name: str, score: float, event: ClickEvent, limits: StateLimits
) -> None:
    """Keep a fired signal for the customer view and mark its reason as acted on."""
    record = SignalRecord(name, score, event.ts_ms, event.event_id)
    state.signals = ((record, *state.signals))[: limits.signals_max]
    if state.session is not None and name not in state.session.fired_reasons:
        state.session.fired_reasons += (name,)


def _remembered(ids: tuple[str, ...], new_id: str, max_ids: int) -> tuple[str, ...]:
    return (*ids, new_id)[-max_ids:]


def _update_session(session: SessionState, event: ClickEvent, recent_max: int) -> None:
    session.event_count += 1
    is_newest = event.ts_ms >= session.last_ts_ms
    session.last_ts_ms = max(session.last_ts_ms, event.ts_ms)
    session.started_ts_ms = min(session.started_ts_ms, event.ts_ms)
    if is_newest:
        # Where the customer is now follows the newest event only.
        if event.page is not None:
            session.page = event.page
        if event.product_id is not None:
            session.product_id = event.product_id
        if event.step is not None:
            session.step = event.step
    _update_cart(session, event, is_newest)
    if event.type == "payment_failed" or (
        event.type == "payment_attempt" and event.error is not None
    ):
        session.failed_payment_attempts += 1

    recent = session.recent
    insort(
        recent,
        RecentEvent(event.ts_ms, event.type, event.element, event.x, event.y, event.step,
                    event.error),
        key=_by_ts,
    )  # fmt: skip
    if len(recent) > recent_max:
        del recent[: len(recent) - recent_max]


def _update_cart(session: SessionState, event: ClickEvent, is_newest: bool) -> None:
    if event.value is None:
        if event.type == "purchase":
            session.cart_value = 0.0
        return
    if event.type == "add_to_cart":
        session.cart_value += event.value
    elif event.type == "remove_from_cart":
        session.cart_value = max(0.0, session.cart_value - event.value)
    elif event.type in ("checkout_step", "payment_attempt", "payment_failed") and is_newest:
        session.cart_value = event.value  # the order total as the shop reports it
    elif event.type == "purchase":
        session.cart_value = 0.0


def _by_ts(event: RecentEvent) -> int:
    return event.ts_ms
