"""Dead clicks: clicks that nothing answers — no page change, no other event."""

from __future__ import annotations

from app.detect.clicks import FORM_CONTROL, NO_RESPONSE_OK, REPEAT_OK, SELECTION
from app.detect.signals.signal import DetectionContext, InterventionKind, Signal
from app.detect.signals.thresholds import SignalThresholds
from tables.customer_state import RecentEvent, SessionState

__all__ = ["KIND", "REASON", "dead_click_due_ms", "dead_click_groups", "detect_dead_click"]

REASON = "dead_click"
KIND: InterventionKind = "assist"

_EXCLUDED = FORM_CONTROL | NO_RESPONSE_OK | REPEAT_OK | SELECTION
# A rage click is the louder form of the same trouble: once it fired, dead clicks add nothing.
_SUBSUMED_BY = "rage_click"


def dead_click_groups(recent: list[RecentEvent], now_ms: int, t: SignalThresholds) -> int:
    """How many dead clicks the sorted window shows by ``now_ms``.

    A click is dead when no other (non-click) event follows it within
    ``dead_click_wait_ms`` and that wait is over by ``now_ms``. Clicks on one
    element within the rage-click window count once (a burst is one attempt).
    Only clicks within ``dead_click_window_ms`` before ``now_ms`` count.

    Examples
    --------
    >>> from tables.customer_state import RecentEvent as R
    >>> window = [R(0, "click", ".img"), R(3000, "click", ".price"), R(3500, "page_view")]
    >>> dead_click_groups(window, 10_000, SignalThresholds())
    1
    """
    wait, horizon = t.dead_click_wait_ms, now_ms - t.dead_click_window_ms - t.dead_click_wait_ms
    groups = 0
    last_element: str | None = None
    last_ts = 0
    for i, event in enumerate(recent):
        if event.type != "click":
            last_element = None
            continue
        if event.element is None or event.flags & _EXCLUDED or event.ts_ms < horizon:
            continue
        if event.ts_ms + wait > now_ms:
            break
        answered = False
        for later in recent[i + 1 :]:
            if later.ts_ms > event.ts_ms + wait:
                break
            if later.type != "click":
                answered = True
                break
        if answered:
            continue
        if event.element == last_element and event.ts_ms - last_ts <= t.rage_click_window_ms:
            last_ts = event.ts_ms
            continue
        groups += 1
        last_element, last_ts = event.element, event.ts_ms
    return groups


def detect_dead_click(ctx: DetectionContext) -> Signal | None:
    """Fire when ``dead_click_min_clicks`` dead clicks fall within ``dead_click_window_ms``.

    Checked on each click (earlier clicks' waits may be over) and by a timer at the
    end of the wait of the newest click (``dead_click_due_ms``), for a customer who
    clicks and then gives up.

    Examples
    --------
    >>> from tests.factories import T0_MS, click, context
    >>> events = [click(element=".price", ts_ms=T0_MS), click(element=".img", ts_ms=T0_MS + 3000)]
    >>> detect_dead_click(context(events, now_ms=T0_MS + 6000)).evidence["dead_clicks"]
    2.0
    """
    event, session, t = ctx.event, ctx.session, ctx.thresholds
    if event is not None and event.type != "click":
        return None
    if _SUBSUMED_BY in session.fired_reasons:
        return None
    groups = dead_click_groups(session.recent, ctx.now_ms, t)
    if groups < t.dead_click_min_clicks:
        return None
    return Signal(
        reason=REASON,
        kind=KIND,
        score=min(1.0, 0.55 + 0.1 * (groups - t.dead_click_min_clicks + 1)),
        evidence={"dead_clicks": float(groups), "wait_ms": float(t.dead_click_wait_ms)},
        explanation=(
            f"The customer clicked {groups} things that did not respond within "
            f"{t.dead_click_wait_ms / 1000:g} s; they may expect something there to work."
        ),
    )


def dead_click_due_ms(session: SessionState, t: SignalThresholds) -> int | None:
    """When the newest click's wait ends, if that click would make the signal."""
    recent = session.recent
    if not recent or REASON in session.fired_reasons or _SUBSUMED_BY in session.fired_reasons:
        return None
    newest = recent[-1]
    if newest.type != "click" or newest.element is None or newest.flags & _EXCLUDED:
        return None
    due = newest.ts_ms + t.dead_click_wait_ms
    # Only worth a timer when the clicks before it already make all but one.
    if dead_click_groups(recent, newest.ts_ms, t) + 1 < t.dead_click_min_clicks:
        return None
    return due
