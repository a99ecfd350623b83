"""Product hesitation: three views of one product, add → remove → add, or two minutes on it."""

from __future__ import annotations

from typing import Any

import pytest

from app.detect.signals import Signal, SignalThresholds
from app.detect.signals.product_hesitation import (
    DWELL_KIND,
    KIND,
    REASON,
    detect_product_hesitation,
)
from app.ingest.events import ClickEvent
from tests.factories import T0_MS, click, context

DEFAULT_THRESHOLDS = SignalThresholds()
DWELL = DEFAULT_THRESHOLDS.product_dwell_ms


def view(ms: int, product_id: str = "p1", **fields: Any) -> ClickEvent:
    return click(type="product_view", product_id=product_id, page=f"/p/{product_id}",
                 value=80.0, ts_ms=T0_MS + ms, **fields)  # fmt: skip


def cart(ms: int, type: str, product_id: str = "p1") -> ClickEvent:
    return click(type=type, product_id=product_id, value=80.0, ts_ms=T0_MS + ms)


def at(ms: int, type: str, **fields: Any) -> ClickEvent:
    return click(type=type, ts_ms=T0_MS + ms, **fields)


def detect(
    events: list[ClickEvent], thresholds: SignalThresholds = DEFAULT_THRESHOLDS
) -> Signal | None:
    return detect_product_hesitation(context(events, thresholds=thresholds))


@pytest.mark.parametrize(
    ("events", "fires"),
    [
        # Coming back to one product.
        pytest.param([view(0), view(30_000)], False, id="two-views"),
        pytest.param([view(0), view(30_000), view(60_000)], True, id="three-views"),
        pytest.param([view(0), view(1, "p2"), view(2), view(3, "p2")], False,
                     id="two-products-twice-each"),
        pytest.param([view(0), view(30_000), view(60_000), at(61_000, "scroll")], False,
                     id="only-the-view-itself-counts-views"),
        # Flipping it in and out of the cart.
        pytest.param([cart(0, "add_to_cart"), cart(1000, "remove_from_cart"),
                      cart(2000, "add_to_cart")], True, id="add-remove-add"),
        pytest.param([cart(0, "add_to_cart"), cart(1000, "add_to_cart")], False,
                     id="two-adds"),
        pytest.param([cart(0, "add_to_cart"), cart(1000, "remove_from_cart")], False,
                     id="add-remove"),
        pytest.param([cart(0, "add_to_cart"), cart(1000, "remove_from_cart"),
                      cart(2000, "add_to_cart", "p2")], False, id="re-add-of-another-product"),
        # Lingering on its page.
        pytest.param([view(0), at(60_000, "scroll"), at(DWELL - 1, "scroll")], False,
                     id="just-under-two-minutes"),
        pytest.param([view(0), at(60_000, "scroll"), at(DWELL, "scroll")], True,
                     id="two-minutes"),
        # A page left open in a background tab is not being read.
        pytest.param([view(0), at(60_001, "scroll"), at(DWELL, "scroll")], False,
                     id="left-open-a-minute"),
        pytest.param([view(0), at(DWELL * 3, "scroll")], False, id="back-after-six-minutes"),
        pytest.param([view(0), at(60_000, "page_view", page="/"), at(DWELL, "scroll")], False,
                     id="left-the-page"),
        pytest.param([view(0), view(60_000, "p2"), at(DWELL, "scroll")], False,
                     id="moved-to-another-product"),
    ],
)  # fmt: skip
def test_when_it_fires(events: list[ClickEvent], fires: bool) -> None:
    assert (detect(events) is not None) is fires


def test_a_timer_never_fires() -> None:
    ctx = context([view(0), view(1), view(2)], now_ms=T0_MS + 3 * DWELL, timer=True)

    assert detect_product_hesitation(ctx) is None


def test_an_event_away_from_any_product_never_fires() -> None:
    assert detect([at(0, "page_view", page="/"), at(DWELL, "scroll")]) is None


def test_a_resent_view_counts_once() -> None:
    first, second = view(0), view(30_000)

    assert detect([first, second, second, first]) is None


def test_a_late_view_counts() -> None:
    assert detect([view(0), view(60_000), view(57_000)]) is not None


@pytest.mark.parametrize(
    ("thresholds", "events", "fires"),
    [
        (SignalThresholds(product_min_views=4), [view(0), view(1), view(2)], False),
        (SignalThresholds(product_min_views=2), [view(0), view(1)], True),
        (SignalThresholds(product_dwell_ms=30_000), [view(0), at(30_000, "scroll")], True),
        (SignalThresholds(product_dwell_ms=30_000), [view(0), at(29_999, "scroll")], False),
    ],
)
def test_thresholds_are_respected(
    thresholds: SignalThresholds, events: list[ClickEvent], fires: bool
) -> None:
    assert (detect(events, thresholds) is not None) is fires


@pytest.mark.parametrize(
    ("events", "kind", "score", "evidence", "what"),
    [
        pytest.param(
            [view(0), view(30_000), view(60_000), view(90_000)], KIND, 0.7,
            {"views": 4.0, "adds": 0.0, "removes": 0.0, "dwell_s": 0.0},
            "viewed it 4 times in this visit", id="views",
        ),
        pytest.param(
            [view(0), cart(1000, "add_to_cart"), cart(2000, "remove_from_cart"),
             cart(3000, "add_to_cart")], KIND, 0.75,
            {"views": 1.0, "adds": 2.0, "removes": 1.0, "dwell_s": 3.0},
            "added it 2 times and removed it once", id="cart-flips",
        ),
        pytest.param(
            [view(0), at(60_000, "scroll"), at(120_000, "scroll"), at(175_000, "scroll")],
            DWELL_KIND, 0.55,
            {"views": 1.0, "adds": 0.0, "removes": 0.0, "dwell_s": 175.0},
            "has been on its page for 3 minutes", id="dwell",
        ),
    ],
)  # fmt: skip
def test_signal(
    events: list[ClickEvent], kind: str, score: float, evidence: dict[str, float], what: str
) -> None:
    signal = detect(events)

    assert signal is not None
    assert (signal.reason, signal.kind) == (REASON, kind)
    assert (KIND, DWELL_KIND) == ("offer", "assist")
    assert signal.score == pytest.approx(score)
    assert signal.evidence == evidence
    assert signal.subject == "p1"
    assert signal.explanation == f"The customer keeps hesitating over product p1: {what}."
