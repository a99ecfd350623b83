"""The offline comparison of the learned abandonment score with the rule: what the replay
records of each cart session, how the threshold is chosen (on tuning only), the metrics,
and that the model's AUC tells a predictable stream from an unpredictable one."""

from __future__ import annotations

import random
from functools import cache
from typing import Any

import pytest

from app.detect.learning import PartitionLearner
from app.detect.models.partition import PartitionModels
from app.detect.pipeline import Rules
from app.tools.abandonment_comparison import (
    AbandonmentComparison,
    CartSession,
    Detection,
    choose_threshold,
    compare,
    compare_and_render,
    render_cart_only,
    render_markdown,
    replay_cart_sessions,
    roc_auc,
    simulated_streams,
    without_checkout,
)

T0_MS = 1_767_225_600_000
CART_IDLE_MS = 600_000
STALL_MS = 60_000
Stream = list[dict[str, Any]]


def ev(customer: str, type: str, ms: int, **fields: Any) -> dict[str, Any]:
    """One contract event of ``customer``'s only session, ``ms`` after T0."""
    return {"event_id": f"{customer}-{type}-{ms}", "customer_id": customer,
            "session_id": f"{customer}-s", "type": type, "ts": T0_MS + ms, **fields}  # fmt: skip


def replay(events: Stream) -> list[CartSession]:
    sessions, _ = replay_cart_sessions(events, PartitionLearner(PartitionModels(), Rules()))
    return sessions


def cart_session(abandoned: bool, *scores: float, ended_ms: int = 100) -> CartSession:
    return CartSession("c", "s", abandoned, not abandoned, ended_ms, None, None,
                       tuple((10 * n, score) for n, score in enumerate(scores)))  # fmt: skip


# --- the replay: outcome, the rule's time, the model's scores ---------------------------------


def add(customer: str, ms: int = 0) -> dict[str, Any]:
    return ev(customer, "add_to_cart", ms, product_id="p1", value=40.0)


def step(customer: str, ms: int, name: str) -> dict[str, Any]:
    return ev(customer, "checkout_step", ms, step=name, value=40.0)


@pytest.mark.parametrize(
    ("events", "abandoned", "rule_after_end_ms", "scores"),
    [
        pytest.param([add("a"), step("a", 10_000, "cart"), ev("a", "session_end", 20_000)],
                     True, 0, 2, id="leaves-at-session-end"),
        pytest.param([add("a"), ev("a", "page_view", 5_000, page="/")],
                     True, CART_IDLE_MS, 1, id="cart-left-idle"),
        pytest.param([add("a"), step("a", 10_000, "cart"), ev("a", "purchase", 20_000, value=40.0)],
                     False, None, 2, id="buys"),
        pytest.param([add("a"), ev("a", "remove_from_cart", 5_000, product_id="p1", value=40.0),
                      ev("a", "session_end", 9_000)], False, None, 1, id="empties-the-cart"),
    ],
)  # fmt: skip
def test_replay_records_outcome_rule_and_scores(
    events: Stream, abandoned: bool, rule_after_end_ms: int | None, scores: int
) -> None:
    [session] = replay(events)
    assert session.abandoned is abandoned
    assert session.ended_ts_ms == max(e["ts"] for e in events)
    fired = None if session.rule_ts_ms is None else session.rule_ts_ms - session.ended_ts_ms
    assert fired == rule_after_end_ms
    assert len(session.scores) == scores


def test_a_session_without_a_cart_is_not_a_cart_session() -> None:
    assert replay([ev("a", "page_view", 0, page="/"), ev("a", "session_end", 5_000)]) == []


def test_a_purchase_too_late_for_the_pipeline_still_counts_as_bought() -> None:
    # The purchase arrives after another customer moved the watermark far past it.
    late_purchase = ev("a", "purchase", 20_000, value=40.0)
    events = [add("a"), step("a", 10_000, "payment"), ev("b", "page_view", 900_000, page="/"),
              late_purchase]  # fmt: skip
    [session] = replay(events)
    assert session.purchased and not session.abandoned


def test_a_timer_that_came_up_early_is_set_again() -> None:
    """The stall's due time moves later (a scroll) after its timer was set: when that timer
    comes up nothing is due yet, and the stall must still be heard at its new time."""
    events = [add("a"), step("a", 1_000, "payment"), ev("a", "scroll", 30_000, scroll_pct=50),
              ev("b", "page_view", 70_000, page="/")]  # fmt: skip
    [session] = replay(events)
    assert session.stall_ts_ms == T0_MS + 30_000 + STALL_MS
    assert session.rules_ts_ms == session.stall_ts_ms
    assert session.rule_ts_ms is None  # the rule leaves a stalled checkout to the stall


# --- metrics and the threshold ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "scores", "expected"),
    [
        pytest.param([True, False], [0.9, 0.1], 1.0, id="perfect"),
        pytest.param([True, False], [0.1, 0.9], 0.0, id="inverted"),
        pytest.param([True, False, True, False], [0.5] * 4, 0.5, id="all-tied"),
        pytest.param([True, True, False], [0.8, 0.4, 0.6], 0.5, id="half"),
        pytest.param([True, True], [0.8, 0.4], None, id="one-class"),
    ],
)
def test_roc_auc(labels: list[bool], scores: list[float], expected: float | None) -> None:
    assert roc_auc(labels, scores) == expected


@pytest.mark.parametrize(
    ("detection", "precision", "recall", "f1"),
    [
        (Detection(10, 4, 4, 3, None), 0.75, 0.75, 0.75),
        (Detection(10, 4, 0, 0, None), None, 0.0, 0.0),
        (Detection(10, 0, 2, 0, None), 0.0, None, 0.0),
        (Detection(10, 5, 10, 5, None), 0.5, 1.0, 2 / 3),
    ],
)
def test_detection_rates(
    detection: Detection, precision: float | None, recall: float | None, f1: float
) -> None:
    assert (detection.precision, detection.recall) == (precision, recall)
    assert detection.f1 == pytest.approx(f1)


@pytest.mark.parametrize(
    ("sessions", "expected"),
    [
        pytest.param([cart_session(True, 0.9), cart_session(False, 0.2)], 0.9, id="separable"),
        pytest.param([cart_session(True, 0.9), cart_session(True, 0.4, 0.7),
                      cart_session(False, 0.6), cart_session(False, 0.2)], 0.7, id="any-score"),
        pytest.param([cart_session(True, 0.3), cart_session(False, 0.8),
                      cart_session(True, 0.5)], 0.3, id="inverted-flags-all"),
        pytest.param([cart_session(True), cart_session(True, 0.6),
                      cart_session(False, 0.6)], 0.6, id="tie-unscored"),
    ],
)  # fmt: skip
def test_choose_threshold_maximises_f1(sessions: list[CartSession], expected: float) -> None:
    assert choose_threshold(sessions) == expected


def test_choose_threshold_needs_a_score() -> None:
    with pytest.raises(ValueError, match="no cart session was scored"):
        choose_threshold([cart_session(True), cart_session(False)])


def test_model_flags_at_its_first_score_over_the_threshold() -> None:
    session = cart_session(True, 0.2, 0.7, 0.4, 0.9)
    assert (session.model_ts_ms(0.5), session.model_ts_ms(0.8), session.model_ts_ms(0.95)) == (
        10, 30, None,
    )  # fmt: skip


# --- whole comparisons -----------------------------------------------------------------------


def checkout_sessions(seed: int, n: int, predictable: bool) -> Stream:
    """``n`` customers one after another, each a checkout that is bought or abandoned (coin
    flip). Predictable: the abandoners' payment fails twice first. Unpredictable: they go
    through the same steps as the buyers and leave instead of buying."""
    rng = random.Random(seed)
    events: Stream = []
    for i in range(n):
        c, start = f"c{seed}-{i}", i * 3_600_000
        abandons = rng.random() < 0.5
        events += [
            add(c, start),
            step(c, start + 10_000, "cart"),
            step(c, start + 30_000, "shipping"),
            step(c, start + 60_000, "payment"),
        ]
        if abandons and predictable:
            events += [ev(c, "payment_failed", start + 80_000 + 10_000 * k, error="declined",
                          value=40.0) for k in range(2)]  # fmt: skip
        events.append(ev(c, "payment_attempt", start + 120_000, value=40.0))
        last = "session_end" if abandons else "purchase"
        events.append(ev(c, last, start + 130_000, value=40.0))
    return events


@cache
def simulated() -> tuple[list[Stream], list[Stream]]:
    return simulated_streams(customers=20, days=1.0, tuning_seeds=(1,), holdout_seed=1000)


@cache
def simulated_comparison() -> AbandonmentComparison:
    return compare(*simulated())


def test_auc_is_high_where_abandonment_shows_in_the_features() -> None:
    result = compare([checkout_sessions(1, 80, True)], [checkout_sessions(2, 80, True)])
    assert result.holdout.auc_last is not None and result.holdout.auc_last > 0.6
    assert result.tuning.auc_last is not None and result.tuning.auc_last > 0.6


def test_auc_is_no_better_than_chance_where_it_does_not() -> None:
    result = compare([checkout_sessions(1, 80, False)], [checkout_sessions(2, 80, False)])
    assert result.holdout.auc_last is not None and result.holdout.auc_last < 0.6


def test_the_threshold_is_chosen_on_tuning_only() -> None:
    tuning, holdout = simulated()
    other_holdout = [checkout_sessions(3, 40, True)]
    first, second = compare(tuning, holdout), compare(tuning, other_holdout)
    assert first.holdout != second.holdout  # the held-out data did change
    assert (first.threshold, first.tuning) == (second.threshold, second.tuning)
    # ... and the threshold does follow the tuning data.
    assert compare([checkout_sessions(4, 40, True)], holdout).threshold != first.threshold


def test_a_comparison_is_deterministic() -> None:
    assert compare(*simulated()) == simulated_comparison()


def test_simulated_streams_are_the_variants_apart_in_time() -> None:
    tuning, [holdout] = simulated()
    assert {e["customer_id"][:3] for e in tuning[0]} == {"c1-"}
    assert max(e["ts"] for e in tuning[0]) < min(e["ts"] for e in holdout)


def test_the_rule_is_precise_and_knows_no_earlier_than_the_last_event() -> None:
    every = simulated_comparison().tuning.every
    assert every.rule.precision is not None and every.rule.precision >= 0.95
    assert every.rule.lead_p50_s is not None and every.rule.lead_p50_s <= 0


def test_render_markdown_says_the_verdict() -> None:
    result = simulated_comparison()
    text = render_markdown(result)
    assert text.startswith("## Abandonment: learned score vs rule\n")
    assert f"Model threshold {result.threshold:.3f}" in text
    verdict = "beats" if result.model_beats_rule else "does not beat"
    assert f"On held-out the model {verdict} the rule" in text
    assert text.count("| tuning |") == text.count("| holdout |") == 6


def test_a_shop_without_checkout_events_still_gets_a_model_that_tells_carts_apart() -> None:
    tuning, holdout = simulated()
    cart_only = compare([without_checkout(s) for s in tuning],
                        [without_checkout(s) for s in holdout])  # fmt: skip
    # The same cart sessions, each scored at its cart changes.
    sessions = cart_only.holdout.every.rule.sessions
    assert sessions == simulated_comparison().holdout.every.rule.sessions
    assert cart_only.holdout.scored.rule.sessions == sessions
    assert cart_only.holdout.worker_auc > 0.55

    text = render_cart_only(cart_only)
    assert text.startswith("\nWithout checkout steps or payments")
    assert f"{cart_only.holdout.worker_auc:.3f} on held-out" in text


def test_carts_known_only_from_checkout_totals_leave_nothing_to_compare_without_checkout() -> None:
    # The carts of these sessions are the order totals their checkout steps report.
    def stream(customers: range) -> Stream:
        events = []
        for c in customers:
            outcome = "purchase" if c % 2 else "session_end"
            events += [step(f"c{c}", 1_000 * c, "cart"), ev(f"c{c}", outcome, 1_000 * c + 500)]
        return events

    text = compare_and_render([stream(range(10))], [stream(range(10, 20))])

    assert "| holdout | every | model |" in text
    assert text.endswith(
        "\nWithout checkout steps or payments, no comparison: "
        "no cart session was scored: there is no threshold to choose.\n"
    )
