# cython: annotation_typing=True
"""Folding click events into per-customer state, in event time.

Pure: no Faust, no I/O, no clock. ``fold_event`` never changes the state it is
given: it copies what the event touches (the customer, the profile and the one
session) and returns the copy, so an error half-way leaves the stored state as
it was and a re-send of the event is not mistaken for a duplicate.

Time rules (contract §1):

- A customer may have several live sessions (tabs, devices), each with its own
  clock: an event is *late* when it is more than ``allowed_lateness_ms`` behind
  the newest event of its own session. A new session is late only when it starts
  more than a session timeout before the customer's newest event: it belongs to a
  visit that is long over, not to a second device whose clock is behind.
- A session ends with ``session_end`` or after ``session_timeout_ms`` of event-time
  inactivity, measured against the partition's watermark and the customer's own
  newest event. Stragglers of an ended session only count in the profile.
- A customer idle for ``customer_ttl_ms`` starts afresh (``expire_state`` deletes it).
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_right
from dataclasses import dataclass
from hashlib import blake2b
from zlib import crc32

from app.detect.clicks import click_flags
from app.detect.models.rhythm import EwStats, update_ew
from app.detect.signals.thresholds import SignalThresholds
from app.ingest.events import ClickEvent
from tables.customer_state import (
    CustomerProfile,
    CustomerState,
    RecentEvent,
    SessionState,
    SessionSummary,
    SignalRecord,
    by_ts_ms,
)

__all__ = [
    "Folded",
    "StateLimits",
    "TimeRules",
    "close_sessions",
    "copy_session",
    "copy_state",
    "end_session",
    "event_digest",
    "expire_state",
    "fast_gaps_added",
    "fold_event",
    "is_duplicate",
    "new_state",
    "record_signal",
    "segment_of",
    "update_pace",
    "update_rhythm",
    "update_summary",
]

_DAY_MS = 86_400_000
# A buyer away at least this long (and three times their usual gap) has lapsed; a customer
# away longer than NUDGEFLOW_CUSTOMER_TTL_DAYS (30) is forgotten, so it must be shorter.
_LAPSED_MIN_MS = 14 * _DAY_MS
# Exponential weight of the newest visit in a customer's rhythm means.
_RHYTHM_ALPHA = 0.3
# A visit's pace (its mean gap between events) needs two gaps at least.
_PACE_MIN_EVENTS = 3
_CRAWLER_TOKENS = ("bot", "crawl", "spider", "slurp", "headless", "lighthouse", "python-requests")
_FORM_EVENTS = frozenset({"form_focus", "form_input", "form_blur", "form_submit", "form_error"})
# Events whose ``value`` is the order total.
_ORDER_TOTAL_EVENTS = ("checkout_step", "payment_attempt", "payment_failed")


@dataclass(slots=True, frozen=True)
class StateLimits:
    """Bounds that keep one customer's state small."""

    recent_events_max: int = 32
    seen_event_ids_max: int = 32
    seen_session_ids_max: int = 16
    live_sessions_max: int = 4
    summary_max: int = 8
    signals_max: int = 20
    interventions_max: int = 10


@dataclass(slots=True, frozen=True)
class TimeRules:
    """Event-time rules of contract §1."""

    allowed_lateness_ms: int = 5_000
    session_timeout_ms: int = 1_800_000
    customer_ttl_ms: int = 30 * _DAY_MS


@dataclass(slots=True)
class Folded:
    """What ``fold_event`` made of one event."""

    state: CustomerState
    # The session the event was folded into; None when it was late or a straggler.
    session: SessionState | None
    late: bool = False
    # Time since the previous visit began, when this event opened a returning visit.
    visit_gap_ms: int = 0


def new_state(event: ClickEvent) -> CustomerState:
    """The state of a customer before their first event.

    Examples
    --------
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


def is_duplicate(state: CustomerState | None, event: ClickEvent, digest: int | None = None) -> bool:
    """True if this exact event id was already folded into the state (a sender retry).

    ``digest`` is ``event_digest(event.event_id)`` when the caller has it already.
    """
    if state is None:
        return False
    return _holds(
        state.seen_event_digests, event_digest(event.event_id) if digest is None else digest
    )


def _holds(digests: array[int], digest: int) -> bool:
    """``digest in digests``, found in the array's bytes: ``in`` makes an int of every
    item it compares, 2.7 times as long for a full window of 32. A match must start at an
    item's boundary.

    Examples
    --------
    >>> window = array("Q", (1 << 8, 0))  # little-endian: 1's bytes are found at offset 1
    >>> _holds(window, 1), _holds(window, 0), _holds(window, 1 << 8), _holds(array("Q"), 0)
    (False, True, True, False)
    """
    wanted = digest.to_bytes(8, sys.byteorder)  # as the array stores it
    stored = digests.tobytes()
    at = stored.find(wanted)
    while at > 0 and at % 8:
        at = stored.find(wanted, at + 1)
    return at >= 0


def fold_event(
    state: CustomerState | None,
    event: ClickEvent,
    limits: StateLimits,
    time: TimeRules,
    thresholds: SignalThresholds,
    watermark_ms: int,
    digest: int | None = None,
    live_ms: int = 0,
) -> Folded:
    """Fold one (non-duplicate) event into a copy of the customer's state.

    Parameters
    ----------
    state
        The customer's state, or None for a customer not seen (or expired). Not changed.
    event
        The event.
    limits, time, thresholds
        Bounds, event-time rules and detector thresholds of the deployment.
    watermark_ms
        The partition's event-time watermark: sessions idle past the timeout by it end.
    digest
        ``event_digest(event.event_id)``, when the caller has it already.
    live_ms
        Where a partition that follows the wall clock is now (0 for one that does not):
        a new session that begins more than a session timeout before it is a visit long
        over, even for a customer not seen before.

    Examples
    --------
    >>> e = ClickEvent("e1", "c1", "s1", "page_view", 1000, page="/")
    >>> f = fold_event(None, e, StateLimits(), TimeRules(), SignalThresholds(), 0)
    >>> (f.session.session_id, f.session.page, f.state.profile.visits, f.late)
    ('s1', '/', 1, False)
    """
    if state is not None and event.ts_ms - state.profile.last_seen_ts_ms > time.customer_ttl_ms:
        state = None  # idle past the TTL: the customer starts afresh, as if deleted
    state = new_state(event) if state is None else copy_state(state)
    # A new array of exactly the size needed: appending to a copy would over-allocate.
    if digest is None:
        digest = event_digest(event.event_id)
    digests = state.seen_event_digests + array("Q", (digest,))
    if len(digests) > limits.seen_event_ids_max:
        del digests[: len(digests) - limits.seen_event_ids_max]
    state.seen_event_digests = digests
    profile = state.profile
    profile.events += 1
    profile.first_seen_ts_ms = min(profile.first_seen_ts_ms, event.ts_ms)
    profile.last_seen_ts_ms = max(profile.last_seen_ts_ms, event.ts_ms)
    if event.type == "purchase":
        profile.purchases += 1
        profile.last_purchase_ts_ms = max(profile.last_purchase_ts_ms, event.ts_ms)
        profile.revenue += event.value or 0.0
        state.segment = segment_of(profile)
    close_sessions(state, max(watermark_ms, profile.last_seen_ts_ms), limits, time)

    folded = _route(state, event, limits, time, live_ms)
    session = folded.session
    if session is None:
        profile.late_events += 1
        return folded
    was_bot = session.bot
    t = thresholds
    bot_min_events = t.bot_min_events_again if profile.bot_visits else t.bot_min_events
    _update_session(session, event, limits, t, bot_min_events)
    if session.bot and not was_bot:
        profile.bot_visits += 1
    return folded


def close_sessions(state: CustomerState, now_ms: int, limits: StateLimits, time: TimeRules) -> None:
    """End the live sessions idle for longer than the session timeout at ``now_ms``.

    Changes ``state`` (a copy the caller owns).
    """
    if _has_idle_session(state, now_ms, time):
        oldest_ms = now_ms - time.session_timeout_ms
        for session in state.sessions:
            if session.last_ts_ms < oldest_ms:
                _end_session(state, session, limits)


def _has_idle_session(state: CustomerState, now_ms: int, time: TimeRules) -> bool:
    oldest_ms = now_ms - time.session_timeout_ms
    # A loop, not ``any()`` over a generator: asked on every event and timer, and a
    # generator costs more than the one or two sessions it looks at.
    for session in state.sessions:  # noqa: SIM110
        if session.last_ts_ms < oldest_ms:
            return True
    return False


def end_session(state: CustomerState, session_id: str, limits: StateLimits) -> None:
    """End one live session now (``session_end``); ``state`` is a copy the caller owns."""
    for session in state.sessions:
        if session.session_id == session_id:
            _end_session(state, session, limits)
            return


def expire_state(
    state: CustomerState, watermark_ms: int, limits: StateLimits, time: TimeRules
) -> CustomerState | None:
    """The state as the watermark leaves it: None when the customer expired.

    Returns ``state`` itself when nothing changed, else a changed copy. Deciding
    by the watermark keeps this a pure function of the partition's progress: a
    sweep that runs early only does what the next event would have done.

    Examples
    --------
    >>> e = ClickEvent("e1", "c1", "s1", "page_view", 1000)
    >>> s = fold_event(None, e, StateLimits(), TimeRules(), SignalThresholds(), 0).state
    >>> expire_state(s, 1000 + 31 * 86_400_000, StateLimits(), TimeRules()) is None
    True
    >>> len(expire_state(s, 1000 + 3_600_000, StateLimits(), TimeRules()).sessions)
    0
    """
    if watermark_ms - state.profile.last_seen_ts_ms > time.customer_ttl_ms:
        return None
    if not _has_idle_session(state, watermark_ms, time):
        return state
    copied = copy_state(state)
    close_sessions(copied, watermark_ms, limits, time)
    return copied


def record_signal(
    state: CustomerState,
    session: SessionState,
    name: str,
    score: float,
    ts_ms: int,
    event_id: str,
    limits: StateLimits,
) -> None:
    """Keep a fired signal for the customer view and mark its reason as acted on."""
    record = SignalRecord(name, score, ts_ms, event_id)
    state.signals = ((record, *state.signals))[: limits.signals_max]
    if name not in session.fired_reasons:
        session.fired_reasons += (name,)


def update_summary(
    items: tuple[tuple[str, int], ...], key: str, max_items: int
) -> tuple[tuple[str, int], ...]:
    """Add one to ``key``'s count, keeping the most recently touched ``max_items`` keys.

    Examples
    --------
    >>> update_summary((("a", 1), ("b", 2)), "a", 8)
    (('b', 2), ('a', 2))
    """
    count = 1
    kept = []
    for name, n in items:
        if name == key:
            count = n + 1
        else:
            kept.append((name, n))
    kept.append((key, count))
    return tuple(kept[-max_items:])


def _route(
    state: CustomerState, event: ClickEvent, limits: StateLimits, time: TimeRules, live_ms: int
) -> Folded:
    """Find (or open) the session ``event`` belongs to, deciding whether it is late."""
    lateness = time.allowed_lateness_ms
    sessions = state.sessions
    for index, session in enumerate(sessions):
        if session.session_id == event.session_id:
            if event.ts_ms < session.last_ts_ms - lateness:
                return Folded(state, None, late=True)
            copied = copy_session(session)
            # Most recently active last.
            state.sessions = (*sessions[:index], *sessions[index + 1 :], copied)
            return Folded(state, copied)
    for session_id, ended_ts in state.ended_sessions:
        if session_id == event.session_id:
            if event.ts_ms <= ended_ts + lateness:
                return Folded(state, None, late=True)  # a straggler of a finished visit
            break
    newest_ms = max(state.profile.last_seen_ts_ms, live_ms)
    if newest_ms - event.ts_ms > time.session_timeout_ms:
        return Folded(state, None, late=True)
    return _open_session(state, event, limits)


def _open_session(state: CustomerState, event: ClickEvent, limits: StateLimits) -> Folded:
    profile = state.profile
    gap_ms = 0
    if event.session_id in state.seen_session_ids:
        # The same id after its visit ended: a new visit of the same tab.
        state.ended_sessions = tuple(e for e in state.ended_sessions if e[0] != event.session_id)
    else:
        state.seen_session_ids = (*state.seen_session_ids, event.session_id)[
            -limits.seen_session_ids_max :
        ]
    profile.visits += 1
    if profile.last_visit_ts_ms and event.ts_ms > profile.last_visit_ts_ms:
        gap_ms = event.ts_ms - profile.last_visit_ts_ms
    state.segment = segment_of(profile, gap_ms)
    profile.last_visit_ts_ms = max(profile.last_visit_ts_ms, event.ts_ms)
    # Past the bound, the least recently active sessions end.
    for old in state.sessions[: max(0, len(state.sessions) - limits.live_sessions_max + 1)]:
        _end_session(state, old, limits)
    session = SessionState(event.session_id, event.ts_ms, event.ts_ms)
    state.sessions = (*state.sessions, session)
    return Folded(state, session, visit_gap_ms=gap_ms)


def segment_of(profile: CustomerProfile, visit_gap_ms: int = 0) -> str:
    """The customer's behaviour segment, as a chatbot would choose its tone by it.

    ``new`` (first visit), ``returning`` (visits again, never bought), ``first_buyer``
    (one purchase), ``loyal`` (two or more), ``lapsed`` (a buyer back after a gap of at
    least three times their usual one, and at least 14 days). Set when a visit opens
    (``visit_gap_ms``: since the last one began) and at each purchase.

    Examples
    --------
    >>> from tables.customer_state import CustomerProfile
    >>> day = 86_400_000
    >>> buyer = CustomerProfile(0, 0, visits=6, purchases=2, gap_mean_ms=7.0 * day)
    >>> segment_of(buyer, 2 * day), segment_of(buyer, 25 * day)
    ('loyal', 'lapsed')
    >>> segment_of(CustomerProfile(0, 0, visits=1)), segment_of(CustomerProfile(0, 0, visits=3))
    ('new', 'returning')
    """
    if profile.purchases:
        if visit_gap_ms >= max(_LAPSED_MIN_MS, 3 * profile.gap_mean_ms):
            return "lapsed"
        return "loyal" if profile.purchases >= 2 else "first_buyer"
    return "returning" if profile.visits > 1 else "new"


def update_rhythm(profile: CustomerProfile, gap_ms: int) -> None:
    """Fold the gap before a new visit into the customer's rhythm (weighted mean and variance)."""
    if gap_ms <= 0:
        return
    profile.gap_mean_ms, profile.gap_var_ms2 = _fold_ew(
        profile.gap_mean_ms, profile.gap_var_ms2, float(gap_ms)
    )


def _fold_ew(mean: float, var: float, value: float) -> tuple[float, float]:
    """A customer's weighted mean and variance (mean 0: none yet) with ``value`` folded in."""
    after = update_ew(EwStats(mean, var, 1 if mean else 0), value, _RHYTHM_ALPHA)
    return after.mean, after.var


def _end_session(state: CustomerState, session: SessionState, limits: StateLimits) -> None:
    state.sessions = tuple(s for s in state.sessions if s is not session)
    state.ended_sessions = (
        *(e for e in state.ended_sessions if e[0] != session.session_id),
        (session.session_id, session.last_ts_ms),
    )[-limits.seen_session_ids_max :]
    profile = state.profile
    profile.last_visit_events = session.event_count
    mean = profile.visit_events_mean
    count = session.event_count
    profile.visit_events_mean = (
        float(count) if mean == 0 else _RHYTHM_ALPHA * count + (1 - _RHYTHM_ALPHA) * mean
    )
    if count >= _PACE_MIN_EVENTS and session.last_ts_ms > session.started_ts_ms:
        update_pace(profile, (session.last_ts_ms - session.started_ts_ms) / (count - 1))


def update_pace(profile: CustomerProfile, pace_ms: float) -> None:
    """Fold a visit's mean gap between events into the customer's browsing pace, keeping
    how it compares with the usual pace before it (``last_pace_ratio``).

    Examples
    --------
    >>> p = CustomerProfile(0, 0)
    >>> update_pace(p, 4_000.0); update_pace(p, 8_000.0)
    >>> p.last_pace_ratio, p.pace_mean_ms
    (2.0, 5200.0)
    """
    usual = profile.pace_mean_ms
    profile.last_pace_ratio = pace_ms / usual if usual > 0 else 0.0
    profile.pace_mean_ms, profile.pace_var_ms2 = _fold_ew(usual, profile.pace_var_ms2, pace_ms)


def _update_session(
    session: SessionState,
    event: ClickEvent,
    limits: StateLimits,
    t: SignalThresholds,
    bot_min_events: int,
) -> None:
    """Fold ``event`` into ``session`` (a copy the caller owns); past ``bot_min_events``
    events, a session without think time is automated."""
    ts = event.ts_ms
    type_ = event.type
    session.event_count += 1
    is_newest = ts >= session.last_ts_ms
    if is_newest:
        session.last_ts_ms = ts
        session.last_event_id = event.event_id
        # Where the customer is now follows the newest event only.
        if event.page is not None:
            if event.page != session.page:
                session.product_view_ts_ms = 0  # left the product page
            session.page = event.page
        if event.product_id is not None:
            session.product_id = event.product_id
        if event.step is not None:
            session.step = event.step
    session.started_ts_ms = min(session.started_ts_ms, ts)
    if not session.bot and event.props:
        agent = event.props.get("user_agent")
        if isinstance(agent, str) and any(t in agent.lower() for t in _CRAWLER_TOKENS):
            session.bot = True
    _update_cart(session, event, is_newest)
    max_items = limits.summary_max
    if type_ == "payment_failed" or (type_ == "payment_attempt" and event.error is not None):
        session.failed_payment_attempts += 1
    elif type_ == "purchase":
        session.purchased = True
    elif type_ == "checkout_step" and event.step is not None:
        summary = _summary(session)
        summary.steps = _insert_step(summary.steps, ts, event.step, max_items * 2)
    elif type_ in ("add_to_cart", "remove_from_cart"):
        summary = _summary(session)
        summary.cart_changes = _insert_sorted(summary.cart_changes, ts, max_items)
        if event.product_id is not None:
            change = 1 if type_ == "add_to_cart" else -1
            summary.cart_flips = (*summary.cart_flips, (event.product_id, change))[-max_items:]
    elif type_ == "product_view" and event.product_id is not None:
        session.product_views = (*session.product_views, event.product_id)[-2 * max_items :]
        if is_newest:
            session.product_view_ts_ms = ts
            session.product_id = event.product_id
        searched = session.summary
        if searched is not None and searched.searches and ts >= searched.searches[0][0]:
            searched.search_result_ts_ms = max(searched.search_result_ts_ms, ts)
    elif type_ == "search":
        summary = _summary(session)
        results = -1 if event.results is None else event.results
        digest = crc32((event.query or "").strip().lower().encode())
        summary.searches = tuple(sorted((*summary.searches, (ts, results, digest))))[-max_items:]
    if type_ in _FORM_EVENTS:
        summary = _summary(session)
        form = _form_of(event)
        summary.form_spans = _form_span(summary.form_spans, form, ts, max_items)
        if type_ == "form_focus" and event.field is not None:
            summary.field_focus = update_summary(summary.field_focus, event.field, max_items)
        elif type_ == "form_error":
            summary.form_errors = update_summary(summary.form_errors, form, max_items)
    if type_ in ("error", "form_error"):
        summary = _summary(session)
        summary.error_ts = _insert_sorted(summary.error_ts, ts, max_items)

    # The window is shared with the state this one was copied from: build a new list, of
    # exactly the size needed (a list grown by insertion keeps spare slots).
    recent = session.recent
    # In order, as nearly every event is: no search.
    at = (
        len(recent)
        if not recent or ts >= recent[-1].ts_ms
        else bisect_right(recent, ts, key=by_ts_ms)
    )
    start = max(0, len(recent) + 1 - limits.recent_events_max)
    if at < start:
        return  # older than everything the window keeps
    session.fast_gaps += fast_gaps_added(recent, at, ts, t.bot_gap_ms)
    if (
        not session.bot
        and session.event_count >= bot_min_events
        and session.fast_gaps >= t.bot_fast_share * (session.event_count - 1)
    ):
        session.bot = True  # no think time between most events: automated
    flags = click_flags(event, t.click_rules)
    # What RecentEvent(...) does, without the Python-level __new__ a NamedTuple has.
    past = tuple.__new__(RecentEvent, (ts, type_, event.element, event.x, event.y, flags))
    session.recent = [*recent[start:at], past, *recent[at:]]


def fast_gaps_added(recent: list[RecentEvent], at: int, ts: int, gap_ms: int) -> int:
    """How many more events of the window follow a short gap that follows another short
    one, once an event at ``ts`` goes in at index ``at`` (``recent`` sorted by time).

    No think time: a browser sends what one action causes within milliseconds (click →
    submit → page view, blur → focus), so a person's short gaps come alone or in pairs,
    between seconds of thought; a crawler's come in runs. Counted in event time, so
    arrival order does not change the count: an event that arrives late also changes
    whether the two events after it follow short gaps.

    Examples
    --------
    >>> from tables.customer_state import RecentEvent
    >>> window = [RecentEvent(0, "click"), RecentEvent(50, "click"), RecentEvent(100, "click")]
    >>> fast_gaps_added(window, 3, 150, 150)  # in order: 100 → 150 after 50 → 100
    1
    >>> fast_gaps_added([window[0], window[2]], 1, 50, 150)  # 50 arrives late: 100 turns fast
    1
    """
    if at == len(recent):  # in order, as nearly every event: only the new one can change
        return int(
            at >= 2
            and ts - recent[-1].ts_ms < gap_ms
            and recent[-1].ts_ms - recent[-2].ts_ms < gap_ms
        )
    # Only the new event and the two after it can change: look at two events either side.
    before = [e.ts_ms for e in recent[max(0, at - 2) : at + 2]]
    new = min(at, 2)  # the new event's index among them
    after = [*before[:new], ts, *before[new:]]
    return _fast_from(after, new, gap_ms) - _fast_from(before, new, gap_ms)


def _fast_from(times: list[int], first: int, gap_ms: int) -> int:
    """Events of ``times`` from index ``first`` (and at least 2) on whose two preceding
    gaps are both short."""
    return sum(
        1
        for i in range(max(first, 2), len(times))
        if times[i] - times[i - 1] < gap_ms and times[i - 1] - times[i - 2] < gap_ms
    )


def _form_of(event: ClickEvent) -> str:
    form = event.props.get("form") if event.props else None
    return form if isinstance(form, str) else (event.page or "form")


def _form_span(
    spans: tuple[tuple[str, int, int], ...], form: str, ts: int, max_items: int
) -> tuple[tuple[str, int, int], ...]:
    first = last = ts
    kept = []
    for name, start, end in spans:
        if name == form:
            first, last = min(start, ts), max(end, ts)
        else:
            kept.append((name, start, end))
    kept.append((form, first, last))
    return tuple(kept[-max_items:])


def _summary(session: SessionState) -> SessionSummary:
    """The session's summaries, made when first needed (``copy_session`` copied them)."""
    if session.summary is None:
        session.summary = SessionSummary()
    return session.summary


def _insert_step(
    steps: tuple[tuple[int, str], ...], ts: int, step: str, max_items: int
) -> tuple[tuple[int, str], ...]:
    # Every step is kept: a refresh (the same step again) is told from a move when the
    # path is read, since a late step may yet land between the two.
    return tuple(sorted((*steps, (ts, step))))[-max_items:]


def _insert_sorted(values: tuple[int, ...], value: int, max_items: int) -> tuple[int, ...]:
    return tuple(sorted((*values, value)))[-max_items:]


def _update_cart(session: SessionState, event: ClickEvent, is_newest: bool) -> None:
    type_, value = event.type, event.value
    if type_ == "add_to_cart":
        session.cart_items += 1
        if value is not None:
            session.cart_value += value
    elif type_ == "remove_from_cart":
        session.cart_items = max(0, session.cart_items - 1)
        if value is not None:
            session.cart_value = max(0.0, session.cart_value - value)
    elif type_ == "purchase":
        session.cart_items = 0
        session.cart_value = 0.0
    elif value is not None and is_newest and type_ in _ORDER_TOTAL_EVENTS:
        session.cart_value = value  # the order total as the shop reports it
        if value <= 0:
            session.cart_items = 0  # an order of nothing: the cart is empty


def copy_state(state: CustomerState) -> CustomerState:
    """A copy that shares what ``fold_event`` replaces rather than changes (tuples, arrays,
    sessions); its profile is a copy.

    Field by field, without ``__init__``: compiled, each is a C struct member, and the
    copy costs a fraction of a constructor call with default factories (or of
    ``copy.copy``). ``tests/unit/app/detect/test_state.py`` checks that every field is
    copied.
    """
    copied: CustomerState = CustomerState.__new__(CustomerState)
    copied.customer_id = state.customer_id
    copied.profile = _copy_profile(state.profile)
    copied.sessions = state.sessions
    copied.segment = state.segment
    copied.seen_event_digests = state.seen_event_digests
    copied.seen_session_ids = state.seen_session_ids
    copied.ended_sessions = state.ended_sessions
    copied.rewarded = state.rewarded
    copied.signals = state.signals
    copied.interventions = state.interventions
    copied.clicks_offset = state.clicks_offset
    return copied


def copy_session(session: SessionState) -> SessionState:
    """A copy of a session whose summaries can be changed without touching it (its recent
    window is replaced, never changed, by ``fold_event``)."""
    copied: SessionState = SessionState.__new__(SessionState)
    copied.session_id = session.session_id
    copied.started_ts_ms = session.started_ts_ms
    copied.last_ts_ms = session.last_ts_ms
    copied.event_count = session.event_count
    copied.last_event_id = session.last_event_id
    copied.page = session.page
    copied.product_id = session.product_id
    copied.step = session.step
    copied.cart_value = session.cart_value
    copied.cart_items = session.cart_items
    copied.purchased = session.purchased
    copied.recent = session.recent
    copied.failed_payment_attempts = session.failed_payment_attempts
    copied.fired_reasons = session.fired_reasons
    copied.bot = session.bot
    copied.fast_gaps = session.fast_gaps
    copied.product_views = session.product_views
    copied.product_view_ts_ms = session.product_view_ts_ms
    summary = session.summary
    copied.summary = None if summary is None else _copy_summary(summary)
    return copied


def _copy_profile(profile: CustomerProfile) -> CustomerProfile:
    copied: CustomerProfile = CustomerProfile.__new__(CustomerProfile)
    copied.first_seen_ts_ms = profile.first_seen_ts_ms
    copied.last_seen_ts_ms = profile.last_seen_ts_ms
    copied.visits = profile.visits
    copied.events = profile.events
    copied.purchases = profile.purchases
    copied.last_purchase_ts_ms = profile.last_purchase_ts_ms
    copied.revenue = profile.revenue
    copied.late_events = profile.late_events
    copied.last_visit_ts_ms = profile.last_visit_ts_ms
    copied.gap_mean_ms = profile.gap_mean_ms
    copied.gap_var_ms2 = profile.gap_var_ms2
    copied.visit_events_mean = profile.visit_events_mean
    copied.last_visit_events = profile.last_visit_events
    copied.pace_mean_ms = profile.pace_mean_ms
    copied.pace_var_ms2 = profile.pace_var_ms2
    copied.last_pace_ratio = profile.last_pace_ratio
    copied.bot_visits = profile.bot_visits
    return copied


def _copy_summary(summary: SessionSummary) -> SessionSummary:
    copied: SessionSummary = SessionSummary.__new__(SessionSummary)
    copied.steps = summary.steps
    copied.cart_changes = summary.cart_changes
    copied.cart_flips = summary.cart_flips
    copied.field_focus = summary.field_focus
    copied.form_errors = summary.form_errors
    copied.form_spans = summary.form_spans
    copied.searches = summary.searches
    copied.search_result_ts_ms = summary.search_result_ts_ms
    copied.error_ts = summary.error_ts
    return copied
