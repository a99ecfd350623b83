"""Treated vs holdout: the marks the pipeline emits and the report built from their counts."""

from __future__ import annotations

import random

import pytest

from app.decide.policy import PolicyRules
from app.decide.uplift import newcombe_interval, uplift_report, wilson_interval
from app.detect.pipeline import Rules, process_event
from app.ingest.events import ClickEvent
from tables.customer_state import CustomerState
from tests.factories import T0_MS, click

HOUR = 3_600_000


def run(events: list[ClickEvent], rules: Rules) -> tuple[CustomerState | None, list, list]:
    state, sent, marks = None, [], []
    for event in events:
        outcome = process_event(state, event, rules, 0, event.ts_ms)
        state = outcome.state
        sent.extend(outcome.interventions)
        marks.extend(outcome.uplift)
    return state, sent, marks


def failed_then_bought(buy_after_ms: int, next_session: bool = False) -> list[ClickEvent]:
    return [
        click(type="add_to_cart", product_id="p1", value=40.0, ts_ms=T0_MS),
        click(type="payment_failed", error="declined", ts_ms=T0_MS + 1_000),
        click(
            type="purchase",
            value=40.0,
            ts_ms=T0_MS + buy_after_ms,
            session_id="s2" if next_session else "s1",
        ),
    ]


@pytest.mark.parametrize(
    ("share", "group", "delivered"), [(0.0, "treated", 1), (1.0, "holdout", 0)]
)
def test_a_decision_and_its_conversion_are_marked_for_its_group(
    share: float, group: str, delivered: int
) -> None:
    rules = Rules(policy=PolicyRules(holdout_share=share))

    state, sent, marks = run(failed_then_bought(60_000), rules)

    assert len(sent) == delivered
    assert [(m.reason, m.group, m.mark) for m in marks] == [
        ("payment_failure", group, "decided"),
        ("payment_failure", group, "converted"),
        ("payment_failure", group, "converted_in_session"),
    ]
    assert len({m.intervention_id for m in marks}) == 1
    assert state is not None
    [record] = state.interventions
    assert record["converted_ts"] == T0_MS + 60_000
    assert record.get("delivery") == (None if share == 0 else "holdout")


def test_a_purchase_in_a_later_visit_converts_within_the_window_only() -> None:
    rules = Rules(policy=PolicyRules(holdout_share=0.0, conversion_window_ms=24 * HOUR))

    _, _, within = run(failed_then_bought(3 * HOUR, next_session=True), rules)
    _, _, beyond = run(failed_then_bought(25 * HOUR, next_session=True), rules)

    assert [m.mark for m in within] == ["decided", "converted"]
    assert [m.mark for m in beyond] == ["decided"]


def test_a_second_purchase_converts_nothing_again() -> None:
    rules = Rules(policy=PolicyRules(holdout_share=0.0))
    events = [*failed_then_bought(60_000), click(type="purchase", value=5.0, ts_ms=T0_MS + 90_000)]

    _, _, marks = run(events, rules)

    assert [m.mark for m in marks].count("converted") == 1


def test_shadow_decisions_are_recorded_but_neither_sent_nor_counted() -> None:
    rules = Rules(policy=PolicyRules(holdout_share=0.0,
                                     shadow_reasons=frozenset({"payment_failure"})))  # fmt: skip

    state, sent, marks = run(failed_then_bought(60_000), rules)

    assert sent == [] and marks == []
    assert state is not None
    assert [(i["reason"], i["delivery"]) for i in state.interventions] == [
        ("payment_failure", "shadow")
    ]


def test_the_wilson_interval_matches_the_published_values() -> None:
    # Newcombe (1998), Statistics in Medicine 17: 857-872, table I: 81/263 → 0.2553, 0.3662.
    low, high = wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


def test_the_interval_of_a_difference_matches_newcombes_examples() -> None:
    # Newcombe (1998), Statistics in Medicine 17: 873-890, table II, method 10.
    assert [round(x, 4) for x in newcombe_interval(56, 70, 48, 80)] == [0.0524, 0.3339]
    assert [round(x, 4) for x in newcombe_interval(9, 10, 3, 10)] == [0.1705, 0.8090]


def test_the_interval_covers_the_true_difference_about_95_percent_of_the_time() -> None:
    rng = random.Random(7)
    p_treated, p_holdout, n_treated, n_holdout = 0.30, 0.22, 400, 40
    covered = 0
    for _ in range(2_000):
        x1 = sum(rng.random() < p_treated for _ in range(n_treated))
        x2 = sum(rng.random() < p_holdout for _ in range(n_holdout))
        low, high = newcombe_interval(x1, n_treated, x2, n_holdout)
        covered += low <= p_treated - p_holdout <= high
    assert 0.93 < covered / 2_000 < 0.975


def test_a_reason_without_a_holdout_decision_has_no_uplift_yet() -> None:
    report = uplift_report({("rage_click", "treated", "decided"): 3})

    entry = report["reasons"]["rage_click"]
    assert entry["uplift"] is None and entry["uplift_ci95"] is None
    assert entry["holdout"]["decisions"] == 0
    assert entry["treated"]["conversion_rate"] == 0.0
