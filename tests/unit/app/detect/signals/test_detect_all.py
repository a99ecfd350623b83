"""``app.detect.signals``: ``detect_all`` runs every detector; ``CATALOGUE`` lists their reasons."""

from __future__ import annotations

from typing import get_args

import pytest

from app.detect.signals import (
    CATALOGUE,
    DETECTORS,
    InterventionKind,
    SignalThresholds,
    detect_all,
    payment_failure,
    rage_click,
    step_loop,
)
from app.ingest.events import ClickEvent
from tests.factories import T0_MS, click, fold

RAGE = [click(element="#buy", ts_ms=T0_MS + dt) for dt in (0, 100, 200)]
LOOP = [
    click(type="checkout_step", step=s, ts_ms=T0_MS + 1000 * i)
    for i, s in enumerate(["shipping", "cart", "shipping", "cart"])
]
DECLINED = [click(type="payment_failed", error="declined")]
CALM = [click(type="page_view", page="/"), click(type="product_view", ts_ms=T0_MS + 1)]


def reasons_for(events: list[ClickEvent], thresholds: SignalThresholds) -> list[str]:
    return [s.reason for s in detect_all(fold(events).session, events[-1], thresholds)]


@pytest.mark.parametrize(
    ("events", "reasons"),
    [
        pytest.param(CALM, [], id="calm"),
        pytest.param(RAGE, ["rage_click"], id="rage"),
        pytest.param(LOOP, ["step_loop"], id="loop"),
        pytest.param(DECLINED, ["payment_failure"], id="declined"),
    ],
)
def test_detect_all(events: list[ClickEvent], reasons: list[str]) -> None:
    assert reasons_for(events, SignalThresholds()) == reasons


def test_detect_all_reports_every_signal_an_event_fires() -> None:
    # With a one-return loop threshold, a declined payment at a revisited step fires twice.
    thresholds = SignalThresholds(step_loop_min_returns=1)
    events = [
        click(type="checkout_step", step="payment", ts_ms=T0_MS),
        click(type="checkout_step", step="review", ts_ms=T0_MS + 1),
        click(type="payment_failed", step="payment", ts_ms=T0_MS + 2),
        click(type="checkout_step", step="payment", ts_ms=T0_MS + 3),
    ]
    session = fold(events[:3]).session
    assert [s.reason for s in detect_all(session, events[2], thresholds)] == ["payment_failure"]

    assert reasons_for(events, thresholds) == ["step_loop"]


def test_detect_all_passes_the_thresholds_on() -> None:
    assert reasons_for(RAGE, SignalThresholds(rage_click_min_clicks=4)) == []


def test_detect_all_without_a_session_is_empty() -> None:
    assert detect_all(None, click(type="payment_failed"), SignalThresholds()) == []


def test_catalogue_lists_every_detector_module() -> None:
    assert set(CATALOGUE) == {
        (payment_failure.KIND, payment_failure.REASON),
        (rage_click.KIND, rage_click.REASON),
        (step_loop.KIND, step_loop.REASON),
    }
    assert len(CATALOGUE) == len(DETECTORS) == len(set(CATALOGUE))


def test_catalogue_kinds_are_contract_kinds() -> None:
    assert {kind for kind, _ in CATALOGUE} <= set(get_args(InterventionKind))
    assert set(get_args(InterventionKind)) == {"assist", "offer", "reminder", "reward"}


@pytest.mark.parametrize(
    ("events", "reason"),
    [
        pytest.param(RAGE, "rage_click", id="rage"),
        pytest.param(LOOP, "step_loop", id="loop"),
        pytest.param(DECLINED, "payment_failure", id="declined"),
    ],
)
def test_every_emitted_signal_is_in_the_catalogue(events: list[ClickEvent], reason: str) -> None:
    signals = detect_all(fold(events).session, events[-1], SignalThresholds())

    assert [s.reason for s in signals] == [reason]
    assert {(s.kind, s.reason) for s in signals} <= set(CATALOGUE)
