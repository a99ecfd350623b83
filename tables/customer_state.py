"""The per-customer state kept in the ``customer_to_state`` table, and its codec.

Plain slotted dataclasses rather than ``faust.Record``: the pure logic in
``app/`` works on them without importing Faust, and the orjson codec below is
about ten times faster than Record (de)serialisation on the changelog hot path.
The encoded form is versioned (``"v"``) so a rolling upgrade can read old values.

Each detector keeps the small summary its rule needs (checkout steps, searches,
form fields, products, errors) beside a short recent-event window, so a rule
sees its whole window without a longer buffer. Summaries are tuples, replaced
rather than changed, so a state can be copied cheaply before an event is folded
in (``app.detect.state``): a failure half-way never leaves a half-updated state.
"""

from __future__ import annotations

import sys
from array import array
from binascii import a2b_base64, b2a_base64
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

import orjson

__all__ = [
    "CustomerProfile",
    "CustomerState",
    "RecentEvent",
    "SessionState",
    "SessionSummary",
    "SignalRecord",
    "by_ts_ms",
    "decode_state",
    "encode_state",
]

_CODEC_VERSION = 5


class RecentEvent(NamedTuple):
    """The few fields of a past event that the detectors look back at.

    A tuple, stored as a JSON array: the recent-event window is most of a
    state's size, in memory and on the changelog. ``flags`` are the click traits
    of ``app.detect.clicks`` (0 for other events).
    """

    ts_ms: int
    type: str
    element: str | None = None
    x: float | None = None
    y: float | None = None
    flags: int = 0


def by_ts_ms(event: RecentEvent) -> int:
    """The key a recent-event window is sorted by (for ``bisect``)."""
    return event.ts_ms


@dataclass(slots=True)
class SessionSummary:
    """What the form, checkout, search and error rules keep of a session.

    Made on the first event that needs it: most visits never fill a form or
    search, and a session without one is smaller by all these fields.
    """

    # (ts_ms, step) of checkout-step moves, sorted; a step sent again in a row is a refresh.
    steps: tuple[tuple[int, str], ...] = ()
    # Event times of cart changes (add/remove), sorted.
    cart_changes: tuple[int, ...] = ()
    # (product_id, +1 for an add or -1 for a remove), oldest first.
    cart_flips: tuple[tuple[str, int], ...] = ()
    # (field, focus count) and (form, error count), most recent last.
    field_focus: tuple[tuple[str, int], ...] = ()
    form_errors: tuple[tuple[str, int], ...] = ()
    # (form, first ts, last ts) of form activity, most recent last.
    form_spans: tuple[tuple[str, int, int], ...] = ()
    # (ts_ms, results or -1, query digest) of searches, sorted; and the last result opened.
    searches: tuple[tuple[int, int, int], ...] = ()
    search_result_ts_ms: int = 0
    # Event times of error and form_error events, sorted, the last few.
    error_ts: tuple[int, ...] = ()


@dataclass(slots=True)
class SessionState:
    """One live visit: where the customer is and what happened, in event time."""

    session_id: str
    started_ts_ms: int
    last_ts_ms: int
    event_count: int = 0
    # The id of the newest event, while a silence rule (a timer) may name it as its trigger.
    last_event_id: str = ""
    page: str | None = None
    product_id: str | None = None
    step: str | None = None
    cart_value: float = 0.0
    # Items added less items removed: a cart whose events carry no ``value`` is a cart too.
    cart_items: int = 0
    purchased: bool = False
    # Sorted by ts_ms, oldest first; bounded by the recent-event window setting.
    recent: list[RecentEvent] = field(default_factory=list)
    failed_payment_attempts: int = 0
    # Reasons already acted on in this session (one intervention per reason per session).
    fired_reasons: tuple[str, ...] = ()
    # Looks automated: declared crawler, or no think time between events.
    bot: bool = False
    fast_gaps: int = 0
    # Product ids viewed, oldest first (bounded), and when the product page in view opened.
    product_views: tuple[str, ...] = ()
    product_view_ts_ms: int = 0
    summary: SessionSummary | None = None

    @property
    def has_cart(self) -> bool:
        """Whether something is in the cart: a value, or items added and not removed."""
        return self.cart_value > 0 or self.cart_items > 0

    @property
    def steps(self) -> tuple[tuple[int, str], ...]:
        """Checkout-step moves (``SessionSummary.steps``)."""
        return self.summary.steps if self.summary else ()

    @property
    def cart_changes(self) -> tuple[int, ...]:
        """Event times of cart changes (``SessionSummary.cart_changes``)."""
        return self.summary.cart_changes if self.summary else ()

    @property
    def field_focus(self) -> tuple[tuple[str, int], ...]:
        """Focus counts per form field (``SessionSummary.field_focus``)."""
        return self.summary.field_focus if self.summary else ()

    @property
    def form_errors(self) -> tuple[tuple[str, int], ...]:
        """Error counts per form (``SessionSummary.form_errors``)."""
        return self.summary.form_errors if self.summary else ()

    @property
    def form_spans(self) -> tuple[tuple[str, int, int], ...]:
        """First and last activity per form (``SessionSummary.form_spans``)."""
        return self.summary.form_spans if self.summary else ()

    @property
    def searches(self) -> tuple[tuple[int, int, int], ...]:
        """Searches of the session (``SessionSummary.searches``)."""
        return self.summary.searches if self.summary else ()

    @property
    def search_result_ts_ms(self) -> int:
        """When a search result was last opened (``SessionSummary.search_result_ts_ms``)."""
        return self.summary.search_result_ts_ms if self.summary else 0

    @property
    def error_ts(self) -> tuple[int, ...]:
        """Event times of recent errors (``SessionSummary.error_ts``)."""
        return self.summary.error_ts if self.summary else ()

    @property
    def products(self) -> tuple[tuple[str, int, int, int], ...]:
        """(product_id, views, adds, removes) of each product touched, least recent first.

        Examples
        --------
        >>> s = SessionState("s", 0, 0, product_views=("a", "b", "a"),
        ...                  summary=SessionSummary(cart_flips=(("a", 1), ("a", -1))))
        >>> s.products
        (('a', 2, 1, 1), ('b', 1, 0, 0))
        """
        counts: dict[str, list[int]] = {}
        for product_id in self.product_views:
            counts.setdefault(product_id, [0, 0, 0])[0] += 1
        if self.summary is not None:
            for product_id, change in self.summary.cart_flips:
                counts.setdefault(product_id, [0, 0, 0])[1 if change > 0 else 2] += 1
        return tuple((pid, views, adds, removes) for pid, (views, adds, removes) in counts.items())


@dataclass(slots=True)
class CustomerProfile:
    """Lifetime facts about a customer."""

    first_seen_ts_ms: int
    last_seen_ts_ms: int
    visits: int = 0
    events: int = 0
    purchases: int = 0
    # Event time of the newest purchase (0: none yet): the policy's quiet period.
    last_purchase_ts_ms: int = 0
    # Sum of the purchases' values (``average_order_value`` in the customer view).
    revenue: float = 0.0
    late_events: int = 0
    # Visit rhythm: when the last visit began, and exponentially weighted means of the
    # gap between visit starts and of a visit's events.
    last_visit_ts_ms: int = 0
    gap_mean_ms: float = 0.0
    # Exponentially weighted variance of the gap (ms²): how regular the customer is.
    gap_var_ms2: float = 0.0
    visit_events_mean: float = 0.0
    last_visit_events: int = 0
    # Browsing pace: exponentially weighted mean and variance of a visit's mean gap
    # between events (visits of three events or more), and the last such visit's pace
    # over the usual pace before it (0: not known yet).
    pace_mean_ms: float = 0.0
    pace_var_ms2: float = 0.0
    last_pace_ratio: float = 0.0
    # Visits that looked automated: the customer's next visit is judged sooner.
    bot_visits: int = 0


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
    # Live sessions (a customer may have several tabs or devices), least recently active first.
    sessions: tuple[SessionState, ...] = ()
    segment: str = "new"
    # Oldest first; bounded. Digests (``app.detect.state.event_digest``) of the last event
    # ids: exact repeats are dropped, since senders retry.
    seen_event_digests: array[int] = field(default_factory=lambda: array("Q"))
    # Oldest first; bounded. A session seen before is not a new visit.
    seen_session_ids: tuple[str, ...] = ()
    # (session_id, end ts) of ended sessions, oldest first; bounded. Their stragglers
    # only count in the profile.
    ended_sessions: tuple[tuple[str, int], ...] = ()
    # Micro-actions already recognised (rewarded once per customer).
    rewarded: tuple[str, ...] = ()
    # Newest first; bounded.
    signals: tuple[SignalRecord, ...] = ()
    # Newest first; bounded. Each is the intervention object as sent.
    interventions: tuple[dict[str, Any], ...] = ()
    # The ``clicks`` offset of the newest event folded in (-1: none known): the replay
    # after a crash, from the committed offset, skips what the changelog state has.
    clicks_offset: int = -1

    @property
    def session(self) -> SessionState | None:
        """The most recently active live session, or None."""
        return self.sessions[-1] if self.sessions else None

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
    # Positional: every changed state is encoded each commit interval, and arrays of the
    # fields (in the order ``V5_*_FIELDS`` freeze) cost two thirds of a JSON object of them
    # and half the bytes (version 2 wrote objects). Built by hand: orjson writes neither
    # NamedTuples nor arrays, and a ``default`` hook for each recent event cost more
    # than the rest of the encoding.
    return orjson.dumps(
        {
            "v": _CODEC_VERSION,
            "s": (
                state.customer_id,
                _profile_values(state.profile),
                [_session_values(session) for session in state.sessions],
                state.segment,
                _digests_to_text(state.seen_event_digests),
                state.seen_session_ids,
                state.ended_sessions,
                state.rewarded,
                state.signals,
                state.interventions,
                state.clicks_offset,
            ),
        }
    )


def decode_state(data: bytes) -> CustomerState:
    """Read a state written by ``encode_state`` (this version, or versions 1 to 4)."""
    raw = orjson.loads(data)
    version = raw.get("v") if isinstance(raw, dict) else None
    if version == _CODEC_VERSION or version == 4:  # 4: the profile without ``bot_visits``
        return _decode_positional(raw["s"], _decode_session_v4)
    if version == 3:
        return _decode_positional(raw["s"], _decode_session_v3)
    if version == 2:
        return _decode_v2(raw["s"])
    if version == 1:
        return _decode_v1(raw["s"])
    raise ValueError(f"not a customer state of version 1 to {_CODEC_VERSION} (found {version!r})")


# The fields of version 3, in the order it writes them. Frozen: a field added to a
# dataclass needs a new version (tests/unit/tables/test_customer_state.py checks).
# Version 4 added ``cart_items`` to the session; profile and summary are as in version 3.
# Version 5 added ``bot_visits`` to the end of the profile; sessions are as in version 4.
V3_PROFILE_FIELDS = (
    "first_seen_ts_ms", "last_seen_ts_ms", "visits", "events", "purchases",
    "last_purchase_ts_ms", "revenue", "late_events", "last_visit_ts_ms", "gap_mean_ms",
    "gap_var_ms2", "visit_events_mean", "last_visit_events", "pace_mean_ms", "pace_var_ms2",
    "last_pace_ratio",
)  # fmt: skip
# Then ``recent`` and ``summary``.
V3_SESSION_FIELDS = (
    "session_id", "started_ts_ms", "last_ts_ms", "event_count", "last_event_id", "page",
    "product_id", "step", "cart_value", "purchased", "failed_payment_attempts",
    "fired_reasons", "bot", "fast_gaps", "product_views", "product_view_ts_ms",
)  # fmt: skip
V3_SUMMARY_FIELDS = (
    "steps", "cart_changes", "cart_flips", "field_focus", "form_errors", "form_spans",
    "searches", "search_result_ts_ms", "error_ts",
)  # fmt: skip
V4_PROFILE_FIELDS = V3_PROFILE_FIELDS
V4_SESSION_FIELDS = (
    *V3_SESSION_FIELDS[: V3_SESSION_FIELDS.index("cart_value") + 1],
    "cart_items",
    *V3_SESSION_FIELDS[V3_SESSION_FIELDS.index("cart_value") + 1 :],
)
V4_SUMMARY_FIELDS = V3_SUMMARY_FIELDS
V5_PROFILE_FIELDS = (*V4_PROFILE_FIELDS, "bot_visits")
V5_SESSION_FIELDS = V4_SESSION_FIELDS
V5_SUMMARY_FIELDS = V4_SUMMARY_FIELDS


def _tuples(items: list[Any]) -> tuple[Any, ...]:
    return tuple(tuple(item) if isinstance(item, list) else item for item in items)


def _compile(name: str, source: str) -> Any:
    namespace: dict[str, Any] = {"RecentEvent": RecentEvent, "SessionSummary": SessionSummary,
                                 "SessionState": SessionState, "tuples": _tuples}  # fmt: skip
    exec(source, namespace)
    return namespace[name]


# Written out field by field once, at import: a display of attribute reads costs about
# half of a comprehension over ``getattr`` (or of orjson's own walk of a dataclass).
_profile_values = _compile(
    "profile_values",
    "def profile_values(o):\n    return ("
    + "".join(f"o.{name}, " for name in V5_PROFILE_FIELDS)
    + ")",
)
_session_values = _compile(
    "session_values",
    "def session_values(o):\n    m = o.summary\n    return ("
    + "".join(f"o.{name}, " for name in V5_SESSION_FIELDS)
    + "list(map(tuple, o.recent)), None if m is None else ("
    + "".join(f"m.{name}, " for name in V5_SUMMARY_FIELDS)
    + "))",
)
_TUPLE_FIELDS = ("fired_reasons", "product_views")


def _session_decoder(session_fields: tuple[str, ...]) -> Any:
    """A function reading a session written positionally: ``session_fields``, then the
    recent window, then the summary (``V3_SUMMARY_FIELDS``) or None."""
    return _compile(
        "decode_session",
        "def decode_session(v):\n"
        f"    m = v[{len(session_fields) + 1}]\n"
        "    return SessionState("
        + "".join(
            f"{name}=tuple(v[{i}]), " if name in _TUPLE_FIELDS else f"{name}=v[{i}], "
            for i, name in enumerate(session_fields)
        )
        + f"recent=[RecentEvent(*e) for e in v[{len(session_fields)}]], "
        + "summary=None if m is None else SessionSummary("
        + "".join(
            f"{name}=m[{i}], " if name == "search_result_ts_ms" else f"{name}=tuples(m[{i}]), "
            for i, name in enumerate(V3_SUMMARY_FIELDS)
        )
        + "))",
    )


_decode_session_v3 = _session_decoder(V3_SESSION_FIELDS)
_decode_session_v4 = _session_decoder(V4_SESSION_FIELDS)


def _decode_positional(s: list[Any], decode_session: Any) -> CustomerState:
    """A state of version 3, 4 or 5 (the profile of versions 3 and 4 is one field short:
    ``bot_visits`` keeps its default)."""
    return CustomerState(
        customer_id=s[0],
        profile=CustomerProfile(*s[1]),
        sessions=tuple(decode_session(session) for session in s[2]),
        segment=s[3],
        seen_event_digests=_digests_from_text(s[4]),
        seen_session_ids=tuple(s[5]),
        ended_sessions=tuple((sid, ts) for sid, ts in s[6]),
        rewarded=tuple(s[7]),
        signals=tuple(SignalRecord(**r) for r in s[8]),
        interventions=tuple(s[9]),
        clicks_offset=s[10],
    )


def _decode_v2(s: dict[str, Any]) -> CustomerState:
    """A version-2 state (objects rather than arrays, digests in hex), read as version 5."""
    return CustomerState(
        customer_id=s["customer_id"],
        profile=_decode_profile(s["profile"]),
        sessions=tuple(_decode_session_v2(session) for session in s["sessions"]),
        segment=s["segment"],
        seen_event_digests=_digests_from_hex(s["seen_event_digests"]),
        seen_session_ids=tuple(s["seen_session_ids"]),
        ended_sessions=tuple((sid, ts) for sid, ts in s["ended_sessions"]),
        rewarded=tuple(s["rewarded"]),
        signals=tuple(SignalRecord(**r) for r in s["signals"]),
        interventions=tuple(s["interventions"]),
        clicks_offset=s.get("clicks_offset", -1),
    )


def _decode_profile(raw: dict[str, Any]) -> CustomerProfile:
    # A field a later version dropped (``last_gap_ms``) is ignored; one it added keeps
    # its default.
    return CustomerProfile(**{k: v for k, v in raw.items() if k in _PROFILE_FIELDS})


_PROFILE_FIELDS = frozenset(f.name for f in fields(CustomerProfile))
_SUMMARY_FIELDS = frozenset(f.name for f in fields(SessionSummary))


def _decode_session_v2(raw: dict[str, Any]) -> SessionState:
    session = SessionState(
        **{name: raw[name] for name in V3_SESSION_FIELDS if name in raw},
        recent=[RecentEvent(*event) for event in raw["recent"]],
    )
    session.fired_reasons = tuple(session.fired_reasons)
    session.product_views = tuple(session.product_views)
    if raw.get("summary"):
        values: dict[str, Any] = {
            name: _tuples(raw[name]) if isinstance(raw[name], list) else raw[name]
            for name in _SUMMARY_FIELDS
            if name in raw
        }
        session.summary = SessionSummary(**values)
    return session


def _decode_v1(s: dict[str, Any]) -> CustomerState:
    """A version-1 state (one live session, no summaries), read as the current version."""
    session = s["session"]
    sessions: tuple[SessionState, ...] = ()
    if session is not None:
        sessions = (
            SessionState(
                session_id=session["session_id"],
                started_ts_ms=session["started_ts_ms"],
                last_ts_ms=session["last_ts_ms"],
                event_count=session["event_count"],
                page=session["page"],
                product_id=session["product_id"],
                step=session["step"],
                cart_value=session["cart_value"],
                recent=[RecentEvent(*event[:5]) for event in session["recent"]],
                failed_payment_attempts=session["failed_payment_attempts"],
                fired_reasons=tuple(session["fired_reasons"]),
            ),
        )
    ended_ts = s["profile"]["last_seen_ts_ms"]
    return CustomerState(
        customer_id=s["customer_id"],
        profile=_decode_profile(s["profile"]),
        sessions=sessions,
        segment=s["segment"],
        seen_event_digests=_digests_from_hex(s["seen_event_digests"]),
        seen_session_ids=tuple(s["seen_session_ids"]),
        ended_sessions=tuple((sid, ended_ts) for sid in s["ended_session_ids"]),
        signals=tuple(SignalRecord(**r) for r in s["signals"]),
        interventions=tuple(s["interventions"]),
    )


def _digests_to_text(digests: array[int]) -> str:
    if sys.byteorder == "big":  # the wire format is little-endian
        digests = array("Q", digests)
        digests.byteswap()
    return b2a_base64(digests.tobytes(), newline=False).decode()


def _digests_from_text(text: str) -> array[int]:
    return _digests_from_bytes(a2b_base64(text))


def _digests_from_hex(text: str) -> array[int]:
    return _digests_from_bytes(bytes.fromhex(text))


def _digests_from_bytes(data: bytes) -> array[int]:
    digests = array("Q", data)
    if sys.byteorder == "big":
        digests.byteswap()
    return digests
