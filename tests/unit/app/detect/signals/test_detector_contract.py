"""Checks every detector in ``DETECTORS`` must pass, River-style (``checks/common.py``).

A detector is a pure function of (session, event, thresholds): it does not change
its input, works from the very first event of a session, reports a score in
[0, 1] with a readable explanation, and its signal survives a pickle round trip.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from typing import get_args

import pytest

from app.detect.signals import CATALOGUE, DETECTORS, InterventionKind, Signal, SignalThresholds
from app.ingest.events import EVENT_TYPES, ClickEvent
from tables.customer_state import SessionState
from tests.factories import T0_MS, click, fold

Detector = Callable[[SessionState, ClickEvent, SignalThresholds], "Signal | None"]

# Fields that let each event type reach as deep into the detectors as it can.
_RICH_FIELDS = {
    "element": "#buy",
    "x": 10.0,
    "y": 10.0,
    "step": "payment",
    "error": "declined",
    "value": 49.5,
    "page": "/checkout",
}

# Histories that make each built-in detector fire, plus some that almost do.
HISTORIES: dict[str, list[ClickEvent]] = {
    "rage": [click(element="#buy", x=5, y=5, ts_ms=T0_MS + dt) for dt in (0, 100, 200)],
    "rage-late": [click(element="#buy", ts_ms=T0_MS + dt) for dt in (300, 600, 0)],
    "rage-long": [click(element="#buy", ts_ms=T0_MS + 10 * i) for i in range(12)],
    "loop": [
        click(type="checkout_step", step=s, ts_ms=T0_MS + 1000 * i)
        for i, s in enumerate(["shipping", "cart", "shipping", "cart", "shipping", "cart"])
    ],
    "declined": [click(type="payment_failed", error="declined")],
    "attempts": [
        click(type="payment_attempt", error="declined", ts_ms=T0_MS + i) for i in range(8)
    ],
    "straggler": [
        click(session_id="s2", ts_ms=T0_MS + 5000),
        click(session_id="s1", type="payment_failed", ts_ms=T0_MS),
    ],
    "mixed": [
        click(type="page_view", page="/", ts_ms=T0_MS),
        click(type="add_to_cart", value=20.0, ts_ms=T0_MS + 1),
        click(type="checkout_step", step="cart", ts_ms=T0_MS + 2),
        click(element="#pay", ts_ms=T0_MS + 3),
        click(type="payment_attempt", ts_ms=T0_MS + 4),
        click(type="session_end", ts_ms=T0_MS + 5),
    ],
}

THRESHOLDS = [
    SignalThresholds(),
    SignalThresholds(
        rage_click_min_clicks=2,
        rage_click_window_ms=1,
        rage_click_radius_px=0.5,
        payment_failed_attempts=1,
        step_loop_min_returns=1,
    ),
]


def detector_id(detector: Detector) -> str:
    return detector.__name__


detectors = pytest.mark.parametrize("detector", DETECTORS, ids=detector_id)


def check_signal(signal: Signal | None) -> None:
    if signal is None:
        return
    assert isinstance(signal, Signal)
    assert (signal.kind, signal.reason) in CATALOGUE
    assert signal.kind in get_args(InterventionKind)
    assert isinstance(signal.score, float)
    assert 0.0 <= signal.score <= 1.0
    assert isinstance(signal.explanation, str)
    assert signal.explanation.strip()
    assert all(isinstance(k, str) for k in signal.evidence)
    assert all(isinstance(v, float) for v in signal.evidence.values())


@detectors
@pytest.mark.parametrize("thresholds", THRESHOLDS, ids=["default", "eager"])
@pytest.mark.parametrize("history", list(HISTORIES.values()), ids=list(HISTORIES))
def test_does_not_mutate_its_inputs(
    detector: Detector, history: list[ClickEvent], thresholds: SignalThresholds
) -> None:
    session = fold(history).session
    assert session is not None
    event = history[-1]
    session_before = copy.deepcopy(session)
    event_before = copy.deepcopy(event)

    detector(session, event, thresholds)

    assert session == session_before
    assert event == event_before


@detectors
@pytest.mark.parametrize("thresholds", THRESHOLDS, ids=["default", "eager"])
@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_cold_start_on_the_first_event_of_a_session(
    detector: Detector, event_type: str, thresholds: SignalThresholds
) -> None:
    for fields in ({}, _RICH_FIELDS):
        event = click(type=event_type, **fields)
        session = fold([event]).session
        assert session is not None
        before = copy.deepcopy(session)

        signal = detector(session, event, thresholds)

        check_signal(signal)
        assert session == before


@detectors
@pytest.mark.parametrize("thresholds", THRESHOLDS, ids=["default", "eager"])
@pytest.mark.parametrize("history", list(HISTORIES.values()), ids=list(HISTORIES))
def test_result_is_none_or_a_well_formed_signal(
    detector: Detector, history: list[ClickEvent], thresholds: SignalThresholds
) -> None:
    for i, event in enumerate(history):
        session = fold(history[: i + 1]).session
        assert session is not None
        check_signal(detector(session, event, thresholds))


@detectors
@pytest.mark.parametrize("history", list(HISTORIES.values()), ids=list(HISTORIES))
def test_is_deterministic(detector: Detector, history: list[ClickEvent]) -> None:
    session = fold(history).session
    assert session is not None

    first = detector(session, history[-1], SignalThresholds())
    second = detector(copy.deepcopy(session), history[-1], SignalThresholds())

    assert first == second


@detectors
def test_signals_pickle(detector: Detector) -> None:
    signals = []
    for history in HISTORIES.values():
        session = fold(history).session
        assert session is not None
        signal = detector(session, history[-1], SignalThresholds())
        if signal is not None:
            signals.append(signal)

    # Guards the checks above against passing only because every result is None.
    assert signals
    assert [pickle.loads(pickle.dumps(s)) for s in signals] == signals


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_signal_pickles_with_every_protocol(protocol: int) -> None:
    signal = Signal("rage_click", "assist", 0.7, {"clicks": 3.0}, "clicked a lot")

    assert pickle.loads(pickle.dumps(signal, protocol=protocol)) == signal


@detectors
def test_detector_follows_the_naming_habit(detector: Detector) -> None:
    assert detector.__name__.startswith("detect_")
    assert detector.__doc__
