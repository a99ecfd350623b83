"""Test factories: click events, folded customer states and detection contexts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from itertools import count
from typing import Any

from app.detect.pipeline import Rules
from app.detect.signals import DetectionContext, SignalThresholds
from app.detect.state import fold_event, is_duplicate
from app.ingest.events import ClickEvent
from tables.customer_state import CustomerProfile, CustomerState

__all__ = ["T0_MS", "click", "context", "fold"]

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


def fold(
    events: Iterable[ClickEvent],
    rules: Rules = Rules(),  # noqa: B008
    state: CustomerState | None = None,
    watermark_ms: int = 0,
) -> CustomerState:
    """Fold ``events`` into ``state`` in arrival order (exact repeats skipped), as the
    pipeline does, without detection.

    Examples
    --------
    >>> fold([click(), click(session_id="s2", ts_ms=T0_MS + 1)]).profile.visits
    2
    """
    t = rules.thresholds
    for event in events:
        if not is_duplicate(state, event):
            state = fold_event(state, event, rules.limits, rules.time, t, watermark_ms).state
    if state is None:
        raise ValueError("fold needs at least one event")
    return state


def context(
    events: list[ClickEvent],
    now_ms: int | None = None,
    timer: bool = False,
    thresholds: SignalThresholds = SignalThresholds(),  # noqa: B008
    visit_gap_ms: int = 0,
    profile: CustomerProfile | None = None,
) -> DetectionContext:
    """The context a detector sees after ``events`` (the last one is the event looked at,
    unless ``timer``: then a timer asks at ``now_ms``).

    Examples
    --------
    >>> ctx = context([click(element="#buy")])
    >>> ctx.event.element, ctx.now_ms == T0_MS, ctx.session.event_count
    ('#buy', True, 1)
    """
    state = fold(events)
    if profile is not None:
        state = replace(state, profile=profile)
    last = events[-1]
    session = next(s for s in state.sessions if s.session_id == last.session_id)
    when = now_ms if now_ms is not None else last.ts_ms
    return DetectionContext(state, session, None if timer else last, when, thresholds, visit_gap_ms)
