"""``decide``: which signal speaks, which are held back and why."""

from __future__ import annotations

import pytest

from app.decide.policy import PolicyRules, decide, in_holdout
from app.detect.signals import PRIORITY, Signal
from tables.customer_state import SessionState


def session(**fields: object) -> SessionState:
    return SessionState("s", 0, 0, **fields)  # type: ignore[arg-type]


def test_no_signal_no_decision() -> None:
    decision = decide([], session())

    assert (decision.main, decision.others, decision.suppressed) == (None, [], [])


@pytest.mark.parametrize(
    ("fired", "main", "others"),
    [
        (["rage_click"], "rage_click", []),
        (["product_hesitation", "payment_failure"], "payment_failure", ["product_hesitation"]),
        (
            ["micro_action", "dead_click", "rage_click"],
            "rage_click",
            ["dead_click", "micro_action"],
        ),
    ],
)
def test_the_highest_priority_speaks_and_lists_the_others(
    fired: list[str], main: str, others: list[str]
) -> None:
    decision = decide([Signal(r, "assist", 0.5) for r in fired], session())

    assert decision.main is not None and decision.main.reason == main
    assert [o.reason for o in decision.others] == others


def test_equal_priority_goes_to_the_higher_score() -> None:
    low, high = Signal("rage_click", "assist", 0.7), Signal("rage_click", "assist", 0.9)

    assert decide([low, high], session()).main is high


def test_a_reason_already_acted_on_is_held_back_as_cooldown() -> None:
    decision = decide([Signal("rage_click", "assist", 0.9)], session(fired_reasons=("rage_click",)))

    assert decision.main is None
    assert decision.suppressed == [("rage_click", "cooldown")]


def test_bots_get_nothing() -> None:
    signals = [Signal("payment_failure", "assist", 0.9), Signal("micro_action", "reward", 0.5)]

    decision = decide(signals, session(bot=True))

    assert decision.main is None
    assert decision.suppressed == [("payment_failure", "bot"), ("micro_action", "bot")]


def test_payment_trouble_beats_everything() -> None:
    assert min(PRIORITY, key=PRIORITY.__getitem__) == "payment_failure"


# --- cooldowns, caps, quiet, shadow, holdout (event time) -----------------------------------

MINUTE = 60_000
T0 = 1_800_000_000_000


def decided(reason: str, at_ms: int, session_id: str = "s", **extra: object) -> dict[str, object]:
    """A recorded decision, as ``CustomerState.interventions`` keeps it."""
    return {"intervention_id": f"{reason}@{at_ms}", "reason": reason, "session_id": session_id,
            "event_ts": at_ms, **extra}  # fmt: skip


def customer(*interventions: dict[str, object], customer_id: str = "c1", **profile: int):
    from tables.customer_state import CustomerProfile, CustomerState

    return CustomerState(customer_id, CustomerProfile(0, 0, **profile), sessions=(session(),),
                         interventions=tuple(interventions))  # fmt: skip


NO_HOLDOUT = PolicyRules(holdout_share=0.0)


def test_the_same_reason_waits_for_its_cooldown_across_visits() -> None:
    state = customer(decided("rage_click", T0, session_id="earlier-visit"))
    signal = [Signal("rage_click", "assist", 0.9)]

    soon = decide(signal, session(), state, NO_HOLDOUT, T0 + 9 * MINUTE)
    later = decide(signal, session(), state, NO_HOLDOUT, T0 + 10 * MINUTE)

    assert soon.main is None and soon.suppressed == [("rage_click", "cooldown")]
    assert later.main is not None and later.main.reason == "rage_click"


def test_any_reason_waits_for_the_overall_cooldown_unless_more_urgent() -> None:
    state = customer(decided("rage_click", T0, session_id="earlier-visit"))
    at = T0 + MINUTE

    calmer = decide([Signal("search_frustration", "assist", 0.9)], session(), state, NO_HOLDOUT, at)
    urgent = decide([Signal("payment_failure", "assist", 0.9)], session(), state, NO_HOLDOUT, at)
    after = decide([Signal("search_frustration", "assist", 0.9)], session(), state, NO_HOLDOUT,
                   T0 + 2 * MINUTE)  # fmt: skip

    assert calmer.main is None and calmer.suppressed == [("search_frustration", "cooldown")]
    assert urgent.main is not None and urgent.main.reason == "payment_failure"
    assert after.main is not None


def test_another_live_session_is_another_conversation() -> None:
    # Two tabs taking turns: each is told once per reason, whatever the other was told.
    from tables.customer_state import SessionState

    other_tab = SessionState("tab-a", T0, T0)
    state = customer(decided("rage_click", T0, session_id="tab-a"))
    state.sessions = (other_tab, session())

    decision = decide([Signal("rage_click", "assist", 0.9)], session(), state, NO_HOLDOUT, T0 + 1)

    assert decision.main is not None


def test_caps_per_session_and_per_day() -> None:
    rules = PolicyRules(holdout_share=0.0, session_cap=2, daily_cap=3, reason_cooldown_ms=0,
                        any_cooldown_ms=0)  # fmt: skip
    signal = [Signal("rage_click", "assist", 0.9)]
    two_here = customer(decided("dead_click", T0), decided("error_burst", T0 + 1))
    three_today = customer(decided("dead_click", T0 - 20 * 3_600_000, session_id="a"),
                           decided("dead_click", T0 - 10 * 3_600_000, session_id="b"),
                           decided("dead_click", T0 - 3_600_000, session_id="c"))  # fmt: skip
    three_over_a_day = customer(decided("dead_click", T0 - 25 * 3_600_000, session_id="a"),
                                decided("dead_click", T0 - 10 * 3_600_000, session_id="b"),
                                decided("dead_click", T0 - 3_600_000, session_id="c"))  # fmt: skip

    assert decide(signal, session(), two_here, rules, T0 + 2).suppressed == [("rage_click", "cap")]
    assert decide(signal, session(), three_today, rules, T0).suppressed == [("rage_click", "cap")]
    assert decide(signal, session(), three_over_a_day, rules, T0).main is not None


def test_quiet_after_a_purchase_holds_offers_and_reminders_only() -> None:
    state = customer(last_purchase_ts_ms=T0)
    signals = [Signal("product_hesitation", "offer", 0.9), Signal("cart_abandonment_risk",
               "reminder", 0.8), Signal("micro_action", "reward", 0.5)]  # fmt: skip

    quiet = decide(signals, session(), state, NO_HOLDOUT, T0 + 29 * MINUTE)
    over = decide(signals, session(), state, NO_HOLDOUT, T0 + 30 * MINUTE)

    assert quiet.main is not None and quiet.main.reason == "micro_action"
    assert sorted(quiet.suppressed) == [("cart_abandonment_risk", "quiet"),
                                        ("product_hesitation", "quiet")]  # fmt: skip
    assert over.main is not None and over.main.reason == "product_hesitation"


def test_shadow_reasons_are_decided_apart_and_count_for_nothing() -> None:
    rules = PolicyRules(holdout_share=0.0, shadow_reasons=frozenset({"search_frustration"}))
    signals = [Signal("search_frustration", "assist", 0.9), Signal("dead_click", "assist", 0.5)]
    shadowed_before = customer(decided("dead_click", T0, delivery="shadow"))

    decision = decide(signals, session(), shadowed_before, rules, T0 + 1)

    assert [s.reason for s in decision.shadowed] == ["search_frustration"]
    assert decision.main is not None and decision.main.reason == "dead_click"
    assert decision.others == []
    assert decision.suppressed == [("search_frustration", "shadow")]


def test_a_holdout_customer_is_decided_for_but_not_sent() -> None:
    everyone = PolicyRules(holdout_share=1.0)

    decision = decide([Signal("rage_click", "assist", 0.9)], session(), customer(), everyone, T0)

    assert decision.main is not None and decision.delivery == "holdout"
    assert decision.suppressed == [("rage_click", "holdout")]


def test_held_out_decisions_cool_down_like_sent_ones() -> None:
    # The control group meets the same cooldowns, or the groups would not compare.
    state = customer(decided("rage_click", T0, delivery="holdout"))

    decision = decide([Signal("rage_click", "assist", 0.9)], session(), state, NO_HOLDOUT, T0 + 1)

    assert decision.suppressed == [("rage_click", "cooldown")]


def test_the_holdout_is_stable_and_near_its_share() -> None:
    ids = [f"customer-{i}" for i in range(20_000)]

    chosen = [c for c in ids if in_holdout(c, 0.05)]

    assert 0.045 < len(chosen) / len(ids) < 0.055
    assert chosen == [c for c in ids if in_holdout(c, 0.05)]
    assert set(chosen) <= {c for c in ids if in_holdout(c, 0.10)}  # a larger share adds only


def test_a_reward_is_not_held_by_the_overall_cooldown() -> None:
    # Thanks for a step the customer took is not one more request of them.
    state = customer(decided("product_hesitation", T0, session_id="earlier-visit"))

    decision = decide([Signal("micro_action", "reward", 0.5)], session(), state, NO_HOLDOUT,
                      T0 + MINUTE)  # fmt: skip

    assert decision.main is not None and decision.main.reason == "micro_action"
