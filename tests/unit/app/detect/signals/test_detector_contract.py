"""Checks every detector in ``EVENT_DETECTORS`` and ``SILENCE_DETECTORS`` must pass, River-style
(``checks/common.py``).

A detector is a pure function of one ``DetectionContext``: it does not change the
state it reads, works from the very first event of a session (and on a timer),
reports a score in [0, 1] with evidence and a one-sentence explanation, gives the
same answer twice, and its signal survives a pickle round trip.
"""

from __future__ import annotations

import copy
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_args

import pytest

from app.detect.signals import (
    CATALOGUE,
    EVENT_DETECTORS,
    SILENCE_DETECTORS,
    DetectionContext,
    InterventionKind,
    Signal,
    SignalThresholds,
    detect_silence,
    due_ms,
)
from app.ingest.events import EVENT_TYPES, ClickEvent
from tables.customer_state import CustomerProfile
from tests.factories import T0_MS, click, context

Detector = Callable[[DetectionContext], "Signal | None"]

DETECTORS: tuple[Detector, ...] = tuple(dict.fromkeys((*EVENT_DETECTORS, *SILENCE_DETECTORS)))

_DAY_MS = 86_400_000


@dataclass(frozen=True)
class Case:
    """A history, and how the detector is asked about it: on its last event or by a timer."""

    events: list[ClickEvent]
    timer_after_ms: int | None = None  # a timer asks this long after the last event
    visit_gap_ms: int = 0
    profile: CustomerProfile | None = None

    def context(self, thresholds: SignalThresholds) -> DetectionContext:
        now = None if self.timer_after_ms is None else self.events[-1].ts_ms + self.timer_after_ms
        return context(
            self.events,
            now_ms=now,
            timer=self.timer_after_ms is not None,
            thresholds=thresholds,
            visit_gap_ms=self.visit_gap_ms,
            profile=self.profile,
        )


def at(ms: int, type: str = "click", **fields: Any) -> ClickEvent:
    return click(type=type, ts_ms=T0_MS + ms, **fields)


def _views(product_id: str, n: int) -> list[ClickEvent]:
    return [at(20_000 * i, "product_view", product_id=product_id, value=30.0) for i in range(n)]


# Histories that make each built-in detector fire, and some that almost do.
CASES: dict[str, Case] = {
    "rage": Case([at(dt, element="#buy", x=5, y=5) for dt in (0, 100, 200)]),
    "rage-late": Case([at(dt, element="#buy") for dt in (300, 600, 0)]),
    "rage-long": Case([at(10 * i, element="#buy") for i in range(12)]),
    "dead": Case([at(0, element=".price"), at(3000, element=".img"), at(6000, element=".x")]),
    "dead-timer": Case([at(0, element=".price"), at(1000, element=".img")], timer_after_ms=2500),
    "dead-a-minute-apart": Case([at(0, element=".price"), at(61_000, element=".img")]),
    "loop": Case(
        [
            at(1000 * i, "checkout_step", step=s)
            for i, s in enumerate(["shipping", "cart", "shipping", "cart"])
        ]
    ),
    "declined": Case([at(0, "payment_failed", error="declined")]),
    "attempts": Case([at(i, "payment_attempt", error="declined") for i in range(8)]),
    "form-errors": Case([at(i, "form_error", field="cvv", page="/pay") for i in range(2)]),
    "field-focus": Case([at(i, "form_focus", field="postcode") for i in range(3)]),
    "slow-form": Case([at(0, "form_focus", field="a"), at(200_000, "form_input", field="a")]),
    "error-burst": Case([at(2000 * i, "error", error="HTTP 503") for i in range(3)]),
    "search-zero": Case([at(i, "search", query=f"q{i}", results=0) for i in range(2)]),
    "search-rephrased": Case([at(5000 * i, "search", query=f"q{i}", results=9) for i in range(4)]),
    "views": Case(_views("p1", 3)),
    "add-remove-add": Case(
        [
            at(i, t, product_id="p1", value=30.0)
            for i, t in enumerate(["add_to_cart", "remove_from_cart", "add_to_cart"])
        ]
    ),
    "dwell": Case([at(0, "product_view", product_id="p1"), at(130_000, "scroll")]),
    "leaving-with-cart": Case(
        [at(0, "add_to_cart", product_id="p1", value=9.0), at(1000, "session_end")]
    ),
    "review": Case([at(0, "form_submit", props={"form": "review"})]),
    "wishlist": Case([*_views("p1", 2), at(50_000, props={"action": "wishlist"})]),
    "slowing-down": Case(
        [at(0)],
        visit_gap_ms=3 * _DAY_MS,
        profile=CustomerProfile(
            0, 0, visits=4, gap_mean_ms=float(_DAY_MS), visit_events_mean=30.0, last_visit_events=8
        ),
    ),
    "stall": Case([at(0, "checkout_step", step="payment", value=40.0)], timer_after_ms=60_000),
    "cart-idle": Case([at(0, "add_to_cart", product_id="p1", value=5.0)], timer_after_ms=600_000),
    "straggler": Case([at(5000, session_id="s2"), at(0, "payment_failed", session_id="s1")]),
    "mixed": Case(
        [
            at(0, "page_view", page="/"),
            at(1, "add_to_cart", value=20.0),
            at(2, "checkout_step", step="cart"),
            at(3, element="#pay"),
            at(4, "payment_attempt"),
            at(5, "session_end"),
        ]
    ),
    "mixed-timer": Case(
        [at(0, "page_view", page="/"), at(5, "search", query="x", results=0)],
        timer_after_ms=3_600_000,
    ),
}

THRESHOLDS = {
    "default": SignalThresholds(),
    "eager": SignalThresholds(
        rage_click_min_clicks=2,
        rage_click_window_ms=1,
        rage_click_radius_px=0.5,
        dead_click_wait_ms=1,
        dead_click_min_clicks=1,
        dead_click_window_ms=1,
        payment_failed_attempts=1,
        step_loop_min_regressions=1,
        form_field_min_focus=1,
        form_min_errors=1,
        form_slow_ms=1,
        checkout_stall_ms=1,
        product_min_views=1,
        product_dwell_ms=1,
        search_min_zero_results=1,
        search_min_reformulations=1,
        search_window_ms=1,
        error_burst_min_errors=1,
        error_burst_window_ms=1,
        cart_idle_ms=1,
        rhythm_min_visits=0,
        rhythm_gap_factor=0.1,
        rhythm_visit_share=1.0,
    ),
}

# Fields that let each event type reach as deep into the detectors as it can.
_RICH_FIELDS: dict[str, Any] = {
    "page": "/checkout",
    "product_id": "p1",
    "element": "#buy",
    "x": 10.0,
    "y": 10.0,
    "field": "postcode",
    "step": "payment",
    "value": 49.5,
    "query": "gift card",
    "results": 0,
    "error": "declined",
    "props": {"form": "review", "action": "wishlist"},
}

# A sentence break: an end mark, spaces, then a capital.
_SENTENCE_BREAK = re.compile(r"[.!?]\s+[A-Z]")
# "1 times", or a number with an exponent (1.5e+06).
_CLUMSY = re.compile(r"\b1 times\b|\d[eE][+-]\d")

detectors = pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: d.__name__)


def check_signal(signal: Signal | None) -> None:
    if signal is None:
        return
    assert isinstance(signal, Signal)
    assert (signal.kind, signal.reason) in CATALOGUE
    assert signal.kind in get_args(InterventionKind)
    assert isinstance(signal.score, float)
    assert 0.0 <= signal.score <= 1.0
    assert all(isinstance(k, str) for k in signal.evidence)
    assert all(isinstance(v, float) for v in signal.evidence.values())
    assert signal.subject is None or (isinstance(signal.subject, str) and signal.subject)
    check_one_sentence(signal.explanation)


def check_one_sentence(text: str) -> None:
    assert text == text.strip()
    assert text[:1].isupper(), text
    assert text.endswith("."), text
    assert "\n" not in text
    assert _SENTENCE_BREAK.search(text) is None, text
    assert _CLUMSY.search(text) is None, text


def check_does_not_mutate_its_input(detector: Detector, ctx: DetectionContext) -> None:
    before = copy.deepcopy(ctx)

    detector(ctx)

    assert ctx.state == before.state
    assert ctx.session == before.session
    assert ctx.event == before.event


def check_result_is_none_or_a_well_formed_signal(detector: Detector, ctx: DetectionContext) -> None:
    check_signal(detector(ctx))


def check_is_deterministic(detector: Detector, ctx: DetectionContext) -> None:
    assert detector(ctx) == detector(copy.deepcopy(ctx))


Check = Callable[[Detector, DetectionContext], None]


def contexts() -> list[tuple[str, DetectionContext]]:
    """Every history under every set of thresholds, named for a failure's note."""
    return [
        (f"{name}/{t_name}", case.context(thresholds))
        for name, case in CASES.items()
        for t_name, thresholds in THRESHOLDS.items()
    ]


def cold_contexts() -> list[tuple[str, DetectionContext]]:
    """A session's very first event, of every type, bare and rich; and a timer after it."""
    named = []
    for event_type in sorted(EVENT_TYPES):
        for f_name, fields in (("bare", {}), ("rich", _RICH_FIELDS)):
            first = [click(type=event_type, **fields)]
            for t_name, thresholds in THRESHOLDS.items():
                name = f"{event_type}/{f_name}/{t_name}"
                named.append((name, context(first, thresholds=thresholds)))
                timer = context(first, now_ms=T0_MS + _DAY_MS, timer=True, thresholds=thresholds)
                named.append((f"{name}/timer", timer))
    return named


CONTEXTS = {"histories": contexts(), "cold-start": cold_contexts()}
CHECKS: tuple[Check, ...] = (
    check_does_not_mutate_its_input,
    check_result_is_none_or_a_well_formed_signal,
    check_is_deterministic,
)


@detectors
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
@pytest.mark.parametrize("where", list(CONTEXTS))
def test_contract(detector: Detector, check: Check, where: str) -> None:
    for name, ctx in CONTEXTS[where]:
        try:
            check(detector, ctx)
        except AssertionError as exc:
            exc.add_note(f"context: {name}")
            raise


@detectors
def test_fires_on_some_history_and_its_signals_pickle(detector: Detector) -> None:
    signals = [s for case in CASES.values() if (s := detector(case.context(SignalThresholds())))]

    # Guards the checks above against passing only because every result is None.
    assert signals
    assert [pickle.loads(pickle.dumps(s)) for s in signals] == signals


@pytest.mark.parametrize("where", list(CONTEXTS))
def test_a_due_time_is_one_at_which_a_silence_rule_fires(where: str) -> None:
    # A timer that finds nothing at the earliest due time would hide the later ones.
    asked = 0
    for name, ctx in CONTEXTS[where]:
        due = due_ms(ctx.session, ctx.thresholds)
        if due is None:
            continue
        asked += 1
        at_due = DetectionContext(ctx.state, ctx.session, None, due, ctx.thresholds)
        assert detect_silence(at_due), f"context: {name}, due {due - ctx.session.last_ts_ms} ms"
    assert asked


def test_the_mutation_check_catches_a_detector_that_mutates() -> None:
    def detect_by_sorting(ctx: DetectionContext) -> Signal | None:
        ctx.session.recent.reverse()
        return None

    with pytest.raises(AssertionError):
        check_does_not_mutate_its_input(
            detect_by_sorting, CASES["rage"].context(THRESHOLDS["default"])
        )


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_signal_pickles_with_every_protocol(protocol: int) -> None:
    signal = Signal("rage_click", "assist", 0.7, {"clicks": 3.0}, "Clicked a lot.", "#buy")

    assert pickle.loads(pickle.dumps(signal, protocol=protocol)) == signal


@detectors
def test_detector_follows_the_naming_habit(detector: Detector) -> None:
    assert detector.__name__.startswith("detect_")
    assert detector.__doc__
