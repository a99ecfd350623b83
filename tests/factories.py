"""Test factories: click events and folded customer states, built from a few overrides."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import count
from typing import Any

from app.detect.state import StateLimits, advance
from app.ingest.events import ClickEvent
from tables.customer_state import CustomerState

__all__ = ["T0_MS", "click", "fold"]

#: Default event time: 2023-11-14T22:13:20Z.
T0_MS = 1_700_000_000_000

_event_ids = count(1)


def click(**overrides: Any) -> ClickEvent:
    """A valid ``ClickEvent``; every field can be overridden.

    Each call gets a fresh, unique ``event_id`` unless one is given.

    Examples
    --------
    >>> e = click(element="#buy", x=3)
    >>> (e.customer_id, e.session_id, e.type, e.ts_ms, e.element, e.x)
    ('c1', 's1', 'click', 1700000000000, '#buy', 3)
    >>> click().event_id != click().event_id
    True
    """
    fields: dict[str, Any] = {
        "event_id": f"e-{next(_event_ids)}",
        "customer_id": "c1",
        "session_id": "s1",
        "type": "click",
        "ts_ms": T0_MS,
    }
    fields.update(overrides)
    return ClickEvent(**fields)


def fold(events: Iterable[ClickEvent], limits: StateLimits = StateLimits()) -> CustomerState:  # noqa: B008
    """Run ``app.detect.state.advance`` over ``events`` in arrival order, from no state.

    Examples
    --------
    >>> fold([click(), click(session_id="s2", ts_ms=T0_MS + 1)]).profile.visits
    2
    """
    state: CustomerState | None = None
    for event in events:
        state = advance(state, event, limits)
    if state is None:
        raise ValueError("fold needs at least one event")
    return state
