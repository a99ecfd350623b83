"""Micro-actions: a first review, a completed profile, or a wishlist save after doubt."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from app.detect.signals import DetectionContext, Signal
from app.detect.signals.micro_action import KIND, REASON, detect_micro_action
from app.ingest.events import ClickEvent
from tests.factories import T0_MS, click, context


def at(ms: int, type: str = "click", **fields: Any) -> ClickEvent:
    return click(type=type, ts_ms=T0_MS + ms, **fields)


def view(ms: int, product_id: str = "p1") -> ClickEvent:
    return at(ms, "product_view", product_id=product_id, page=f"/p/{product_id}")


def submitted(form: str) -> ClickEvent:
    return at(60_000, "form_submit", props={"form": form})


def wishlist(product_id: str | None = "p1") -> ClickEvent:
    return at(90_000, element="#wishlist", product_id=product_id, props={"action": "wishlist"})


def detect(ctx: DetectionContext) -> Signal | None:
    return detect_micro_action(ctx)


@pytest.mark.parametrize(
    ("events", "subject"),
    [
        pytest.param([submitted("review")], "review", id="review"),
        pytest.param([submitted("profile")], "profile", id="profile"),
        pytest.param([submitted("shipping")], None, id="other-form"),
        pytest.param([at(0, "form_submit")], None, id="form-not-named"),
        pytest.param([at(0, "form_submit", props={"action": "review"})], None,
                     id="action-is-not-a-form"),
        pytest.param([view(0), view(30_000), wishlist()], "wishlist", id="wishlist-after-doubt"),
        pytest.param([view(0), wishlist()], None, id="wishlist-after-one-view"),
        pytest.param([view(0), view(1, "p2"), view(2), wishlist("p2")], None,
                     id="doubt-was-about-another-product"),
        # Without a product on the event, the product in view.
        pytest.param([view(0), view(30_000), wishlist(None)], "wishlist", id="product-in-view"),
        pytest.param([view(0), view(30_000), at(90_000, element="#wishlist")], None,
                     id="a-click-without-the-action"),
    ],
)  # fmt: skip
def test_what_counts(events: list[ClickEvent], subject: str | None) -> None:
    signal = detect(context(events))

    assert (None if signal is None else signal.subject) == subject


def test_a_wishlist_save_after_a_hesitation_signal_counts_from_one_view() -> None:
    ctx = context([view(0), wishlist()])
    after = replace(ctx, session=replace(ctx.session, fired_reasons=("product_hesitation",)))

    assert detect(ctx) is None
    assert detect(after) is not None


@pytest.mark.parametrize(
    ("rewarded", "events", "fires"),
    [
        (("review",), [submitted("review")], False),
        (("review",), [submitted("profile")], True),
        (("wishlist",), [view(0), view(1), wishlist()], False),
        (("profile", "wishlist"), [submitted("review")], True),
    ],
)
def test_once_per_customer(
    rewarded: tuple[str, ...], events: list[ClickEvent], fires: bool
) -> None:
    ctx = context(events)
    ctx = replace(ctx, state=replace(ctx.state, rewarded=rewarded))

    assert (detect(ctx) is not None) is fires


def test_a_timer_never_fires() -> None:
    assert detect(context([submitted("review")], now_ms=T0_MS + 120_000, timer=True)) is None


@pytest.mark.parametrize(
    ("events", "subject", "what"),
    [
        ([submitted("review")], "review", "wrote a first review"),
        ([submitted("profile")], "profile", "completed their profile"),
        ([view(0), view(1), wishlist()], "wishlist",
         "saved a product they had hesitated over to their wishlist"),
    ],
)  # fmt: skip
def test_signal(events: list[ClickEvent], subject: str, what: str) -> None:
    signal = detect(context(events))

    assert signal is not None
    assert (signal.reason, signal.kind) == (REASON, KIND) == ("micro_action", "reward")
    assert signal.score == pytest.approx(0.5)
    assert signal.subject == subject
    assert signal.explanation == f"The customer {what}; a thank-you would recognise it."
