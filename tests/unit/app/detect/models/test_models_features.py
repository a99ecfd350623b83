"""The models' features, read from sessions folded from click events."""

from __future__ import annotations

import copy

import pytest

from app.detect.models.features import abandonment_features, session_features
from app.ingest.events import ClickEvent
from tables.customer_state import SessionState
from tests.factories import T0_MS, click, fold


def at(ms: int, type: str = "click", **fields: object) -> ClickEvent:
    return click(type=type, ts_ms=T0_MS + ms, **fields)


def session(events: list[ClickEvent]) -> SessionState:
    folded = fold(events).session
    assert folded is not None
    return folded


def steps(*names: str, every_ms: int = 10_000) -> list[ClickEvent]:
    return [at(every_ms * (i + 1), "checkout_step", step=name) for i, name in enumerate(names)]


CART = [at(0, "add_to_cart", product_id="p1", value=25.0)]


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param(CART, {"step_index": -1.0, "checkout_s": 0.0}, id="not-in-checkout"),
        pytest.param(CART + steps("cart", "shipping"), {"step_index": 2.0}, id="shipping"),
        pytest.param(
            CART + steps("cart", "shipping", "cart", "shipping"),
            {"step_regressions": 1.0, "step_index": 2.0},
            id="one-step-back",
        ),
        pytest.param(
            CART + steps("step-1", "step-2", "step-3"), {"step_index": 3.0}, id="numbered-steps"
        ),
        pytest.param(
            CART + steps("begin", "gift-wrap", "done"), {"step_index": 2.0}, id="shop-own-names"
        ),
        pytest.param(
            [*CART, *steps("cart", "payment"), at(40_000, "payment_failed", error="declined")],
            {"failed_payments": 1.0, "checkout_s": 30.0, "events": 4.0},
            id="declined",
        ),
        pytest.param(
            [*CART, at(1_000, "back"), at(2_000, "error", error="500"), at(3_000, "back")],
            {"back_navigations": 2.0, "errors": 1.0},
            id="back-and-error",
        ),
        pytest.param(CART, {"cart_value": 25.0}, id="cart-value"),
    ],
)
def test_abandonment_features(events: list[ClickEvent], expected: dict[str, float]) -> None:
    features = abandonment_features(session(events), events[-1].ts_ms)._asdict()
    assert {name: features[name] for name in expected} == expected


def test_time_in_checkout_runs_to_the_moment_asked() -> None:
    s = session(CART + steps("cart"))
    assert abandonment_features(s, T0_MS + 70_000).checkout_s == 60.0
    assert abandonment_features(s, T0_MS).checkout_s == 0.0  # never negative


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param(
            [at(0), at(1_000), at(2_000)], {"events_per_min": 3.0}, id="rate-over-a-minute"
        ),
        pytest.param(
            [at(60_000 * i) for i in range(5)],
            {"events_per_min": 1.25},
            id="rate-over-four-minutes",
        ),
        pytest.param(
            [at(0, "search", query=q, results=1) for q in ("boots", "boots", "red boots", "shoes")],
            {"search_reformulations": 2.0},
            id="a-repeated-query-is-not-a-reformulation",
        ),
        pytest.param(
            [
                at(0, "form_focus", field="email", page="/signup"),
                at(45_000, "form_submit", page="/signup"),
            ],
            {"form_s": 45.0},
            id="form-time",
        ),
        pytest.param(
            steps("cart", "shipping", "cart", "shipping", "cart"),
            {"step_regressions": 2.0},
            id="step-regressions",
        ),
    ],
)
def test_session_features(events: list[ClickEvent], expected: dict[str, float]) -> None:
    features = session_features(session(events))._asdict()
    assert {name: features[name] for name in expected} == expected


def test_reading_features_leaves_the_session_as_it_was() -> None:
    s = session(CART + steps("cart", "shipping", "cart") + [at(50_000, "back")])
    before = copy.deepcopy(s)
    abandonment_features(s, T0_MS + 60_000)
    session_features(s)
    assert s == before
