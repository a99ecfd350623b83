# cython: annotation_typing=True
"""Dead clicks: clicks that nothing answers — no page change, no other event."""

from __future__ import annotations

from bisect import bisect_left

from app.detect.clicks import FORM_CONTROL, NO_RESPONSE_OK, REPEAT_OK, SELECTION
from app.detect.signals.signal import DetectionContext, InterventionKind, Signal
from app.detect.signals.thresholds import SignalThresholds
from app.ingest.events import ClickEvent
from tables.customer_state import RecentEvent, SessionState, by_ts_ms

__all__ = [
    "KIND",
    "REASON",
    "TRIGGERS",
    "dead_click_due_ms",
    "dead_click_groups",
    "detect_dead_click",
]

REASON = "dead_click"
KIND: InterventionKind = "assist"
#: Event types the rule looks at (None: every type).
TRIGGERS: frozenset[str] | None = None  # any event may show earlier clicks were never answered

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
    count = len(recent)
    # Sorted: what is older than the window is skipped by bisection, not looked at. (A
    # click there counts for nothing, and grouping starts afresh with the first counted.)
    i = bisect_left(recent, horizon, key=by_ts_ms) if count and recent[0].ts_ms < horizon else 0
    while i < count:
        event = recent[i]
        i += 1
        if event.type != "click":
            last_element = None
            continue
        if event.element is None or event.flags & _EXCLUDED:
            continue
        ts = event.ts_ms
        if ts + wait > now_ms:
            break
        # Answered: another (non-click) event within the wait. Indices, not a slice of
        # the rest of the window for each click.
        answered = False
        j = i
        while j < count:
            later = recent[j]
            if later.ts_ms > ts + wait:
                break
            if later.type != "click":
                answered = True
                break
            j += 1
        if answered:
            continue
        if event.element == last_element and ts - last_ts <= t.rage_click_window_ms:
            last_ts = ts
            continue
        groups += 1
        last_element, last_ts = event.element, ts
    return groups


def detect_dead_click(ctx: DetectionContext) -> Signal | None:
    """Fire when ``dead_click_min_clicks`` dead clicks fall within ``dead_click_window_ms``.

    Checked on every event (the waits of earlier clicks may be over by its time)
    and by a timer when a pending click's wait ends (``dead_click_due_ms``), for a
    customer who clicks and then gives up.

    Examples
    --------
    >>> from tests.factories import T0_MS, click, context
    >>> events = [click(element=".price", ts_ms=T0_MS), click(element=".img", ts_ms=T0_MS + 3000)]
    >>> detect_dead_click(context(events, now_ms=T0_MS + 6000)).evidence["dead_clicks"]
    2.0
    """
    event, session, t = ctx.event, ctx.session, ctx.thresholds
    if _SUBSUMED_BY in session.fired_reasons:
        return None
    if event is not None and _nothing_newly_judged(session, event, t.dead_click_wait_ms):
        return None  # the verdict is the one the event before got
    # A late event is judged with all the session has seen, not at its own past time.
    groups = dead_click_groups(session.recent, max(ctx.now_ms, session.last_ts_ms), t)
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


def _nothing_newly_judged(session: SessionState, event: ClickEvent, wait_ms: int) -> bool:
    """True when no click's wait ended between the event before ``event`` and ``event``.

    Every earlier event of the session was checked when it came, so only such clicks
    can change the verdict; most events (a page view after the click that opened it)
    have none, and the check costs a glance. A late event is checked in full.
    """
    recent = session.recent
    newest = recent[-1] if recent else None
    if (
        newest is None
        or event.ts_ms != session.last_ts_ms
        or (newest.ts_ms, newest.type, newest.element) != (event.ts_ms, event.type, event.element)
    ):
        return False
    if len(recent) == 1:
        return True
    before_ms = recent[-2].ts_ms
    # Any other event answers a click whose wait ends at its very time.
    judged_ms = event.ts_ms if event.type == "click" else event.ts_ms - 1
    # The clicks right before the event whose waits were not over at the event before it.
    for i in range(len(recent) - 2, -1, -1):
        past = recent[i]
        if past.type != "click" or past.ts_ms + wait_ms <= before_ms:
            return True
        if past.ts_ms + wait_ms <= judged_ms:
            return False
    return True


def dead_click_due_ms(session: SessionState, t: SignalThresholds) -> int | None:
    """The earliest end of a pending click's wait at which the rule holds, if nothing follows.

    A click is pending while its wait is not over by the session's newest event;
    the clicks before were judged when that event came. The due time is one at which
    ``detect_dead_click`` fires on the session as it is: a timer that finds nothing
    would hide the other silence rules' due times.

    Examples
    --------
    >>> from tables.customer_state import RecentEvent as R
    >>> s = SessionState("s", 0, 1000, recent=[R(0, "click", ".price"), R(1000, "click", ".img")])
    >>> dead_click_due_ms(s, SignalThresholds())
    3500
    """
    recent = session.recent
    if not recent or REASON in session.fired_reasons or _SUBSUMED_BY in session.fired_reasons:
        return None
    newest = recent[-1]
    if newest.type != "click":
        return None  # it answers every click still waiting
    wait = t.dead_click_wait_ms
    pending: list[int] = []
    for event in reversed(recent):
        if event.ts_ms + wait <= newest.ts_ms:
            break
        if event.type == "click" and event.element is not None and not event.flags & _EXCLUDED:
            pending.append(event.ts_ms + wait)
    if not pending:
        return None
    # Each count below sees at most the eligible clicks from the earliest due's horizon
    # on: when those are too few, no due holds, and the window is looked at once.
    horizon = pending[-1] - t.dead_click_window_ms - wait
    eligible = 0
    for event in reversed(recent):
        if event.ts_ms < horizon:
            break
        if event.type == "click" and event.element is not None and not event.flags & _EXCLUDED:
            eligible += 1
    if eligible < t.dead_click_min_clicks:
        return None
    for due in reversed(pending):
        if dead_click_groups(recent, due, t) >= t.dead_click_min_clicks:
            return due
    return None
