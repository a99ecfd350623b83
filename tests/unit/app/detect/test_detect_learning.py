"""A partition's learner: the durations its baselines learn, the thresholds they adapt, the
abandonment labels and session anomalies it learns, the evidence it adds, determinism."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

import pytest

from app.decide.variants import VARIANTS
from app.detect.learning import ADAPTED_THRESHOLDS, REFRESH_EVERY, PartitionLearner, adapted_rules
from app.detect.models import (
    ABANDONMENT_TRIGGERS,
    BASELINE_METRICS,
    AbandonmentFeatures,
    AbandonmentModel,
    abandonment_features,
)
from app.detect.models.partition import PartitionModels
from app.detect.partition_run import PartitionRun
from app.detect.pipeline import Outcome, Rules, fire_timers, next_due_ms, process_event
from app.detect.signals import SignalThresholds
from app.detect.state import TimeRules
from app.ingest.events import ClickEvent, validate_event
from app.tools.simulator.config import SimulationConfig
from app.tools.simulator.generate import simulate
from tables.customer_state import CustomerState
from tests.factories import T0_MS, click, fold

TIMEOUT_MS = TimeRules().session_timeout_ms
LATENESS_MS = TimeRules().allowed_lateness_ms
DEFAULTS = SignalThresholds()
# Any features: a model that learned one label answers on the label's side for all of them.
ANY_X = AbandonmentFeatures(40.0, 1.0, 0.0, 30.0, 4.0, 0.0, 0.0, 0.0, 1.0, 1.0, 60.0)


def at(ms: int, type: str = "click", **fields: object) -> ClickEvent:
    return click(type=type, ts_ms=T0_MS + ms, **fields)


class Partition:
    """One ``clicks`` partition as the runtime drives its learner: each event through
    ``process_event`` then ``learn_event`` and ``annotate``; each timer through
    ``fire_timers`` then ``learn_ended`` and ``annotate`` (agents/process_clicks.py,
    app/runtime/event_time.py)."""

    def __init__(self, models: PartitionModels | None = None) -> None:
        self.learner = PartitionLearner(models or PartitionModels(baseline_min_count=1), Rules())
        self.table: dict[str, CustomerState] = {}

    @property
    def models(self) -> PartitionModels:
        return self.learner.models

    def event(self, event: ClickEvent, watermark_ms: int = 0) -> Outcome:
        before = self.table.get(event.customer_id)
        outcome = process_event(before, event, self.learner.rules, watermark_ms, event.ts_ms)
        if not outcome.duplicate:
            self.learner.learn_event(event.customer_id, before, outcome.state, event, outcome.late)
            self.learner.annotate(outcome.interventions, outcome.state)
            self._keep(event.customer_id, outcome.state)
        return outcome

    def events(self, events: list[ClickEvent]) -> list[Outcome]:
        return [self.event(e) for e in events]

    def timers(self, watermark_ms: int) -> list[Outcome]:
        """Fire the timers due by ``watermark_ms``, customers in key order."""
        outcomes = []
        for key, before in sorted(self.table.items()):
            due = next_due_ms(before, self.learner.rules)
            if due is None or due > watermark_ms:
                continue
            outcome = fire_timers(before, watermark_ms, self.learner.rules, watermark_ms)
            if outcome.state is not before:
                self.learner.learn_ended(key, before, outcome.state)
                self.learner.annotate(outcome.interventions, outcome.state)
            self._keep(key, outcome.state)
            outcomes.append(outcome)
        return outcomes

    def _keep(self, key: str, state: CustomerState | None) -> None:
        if state is None:
            self.table.pop(key, None)
        else:
            self.table[key] = state


# --- baselines: what each event teaches ---------------------------------------------------


def learned_by_last(events: list[ClickEvent]) -> PartitionModels:
    """Models of a fresh learner taught only the last of ``events`` (the others are folded
    into the state before it, unlearned), so each metric holds at most one value."""
    *history, last = events
    before = fold(history) if history else None
    outcome = process_event(before, last, Rules(), 0, last.ts_ms)
    learner = PartitionLearner(PartitionModels(baseline_min_count=1), Rules())
    learner.learn_event(last.customer_id, before, outcome.state, last, outcome.late)
    return learner.models


PRODUCT = at(0, "product_view", page="/p/1", product_id="p1")
FORM = [
    at(0, "form_focus", page="/signup", field="email"),
    at(20_000, "form_input", page="/signup", field="email"),
]


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param([at(0, "page_view")], {}, id="first-event"),
        pytest.param(
            [at(0, "page_view"), at(5_000, "page_view", session_id="s2")], {}, id="first-of-s2"
        ),
        pytest.param([at(0, "page_view"), at(7_000)], {"event_gap_ms": 7_000}, id="gap"),
        pytest.param([at(10_000), at(6_000)], {}, id="out-of-order"),
        pytest.param([at(10_000), at(10_000)], {}, id="same-ms"),
        pytest.param([at(20_000), at(0)], {}, id="late"),
        pytest.param([PRODUCT, at(3_000)], {"event_gap_ms": 3_000}, id="stays-on-product"),
        pytest.param(
            [PRODUCT, at(3_000), at(50_000, "page_view", page="/cart")],
            {"event_gap_ms": 47_000, "dwell_product_ms": 50_000},
            id="leaves-product",
        ),
        pytest.param(
            [PRODUCT, at(40_000, "product_view", page="/p/2", product_id="p2")],
            {"event_gap_ms": 40_000, "dwell_product_ms": 40_000},
            id="next-product",
        ),
        pytest.param(
            [
                at(0, "add_to_cart", product_id="p1", value=40.0),
                at(5_000, "checkout_step", step="cart"),
            ],
            {"event_gap_ms": 5_000},
            id="first-checkout-step",
        ),
        pytest.param(
            [
                at(0, "checkout_step", step="cart"),
                at(10_000),
                at(45_000, "checkout_step", step="shipping"),
            ],
            {"event_gap_ms": 35_000, "checkout_step_ms": 45_000},
            id="next-checkout-step",
        ),
        pytest.param(FORM, {"event_gap_ms": 20_000}, id="form-in-progress"),
        pytest.param(
            [*FORM, at(95_000, "form_submit", page="/signup")],
            {"event_gap_ms": 75_000, "form_ms": 95_000},
            id="form-submitted",
        ),
    ],
)
def test_an_event_teaches_the_durations_it_ends(
    events: list[ClickEvent], expected: dict[str, int]
) -> None:
    baselines = learned_by_last(events).baselines

    counts = {m: baselines.count(m) for m in BASELINE_METRICS if baselines.count(m)}
    assert counts == dict.fromkeys(expected, 1)
    for metric, value in expected.items():
        # One value is its own p90, and any other is clamped into [v/2, 4v], never onto v.
        assert baselines.threshold(metric, value) == value


def test_a_late_event_teaches_nothing() -> None:
    partition = Partition()
    partition.events([at(0, "page_view"), at(20_000)])
    learned = dict(partition.models.learned)

    outcome = partition.event(at(1_000, "page_view"))

    assert outcome.late
    assert partition.models.learned == learned
    assert partition.models.baselines.count("event_gap_ms") == 1


def test_a_new_visit_of_the_same_tab_learns_no_duration_from_its_first_event() -> None:
    partition = Partition()
    partition.events([PRODUCT, at(1_000)])

    partition.event(at(TIMEOUT_MS + 60_000, "page_view", page="/"))

    [session] = partition.table["c1"].sessions
    assert session.started_ts_ms == T0_MS + TIMEOUT_MS + 60_000
    assert partition.models.baselines.count("event_gap_ms") == 1
    assert partition.models.baselines.count("dwell_product_ms") == 0


# --- adapted thresholds ------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ADAPTED_THRESHOLDS))
@pytest.mark.parametrize(
    ("times_default", "values", "expected_times_default"),
    [
        pytest.param(10.0, 19, 1.0, id="cold"),
        pytest.param(2.0, 20, 2.0, id="longer-the-p90"),
        pytest.param(10.0, 20, 4.0, id="much-longer-at-most-4x"),
        pytest.param(0.9, 20, 1.0, id="shorter-never-below"),
        pytest.param(0.1, 20, 1.0, id="much-shorter-never-below"),
    ],
)
def test_a_threshold_follows_the_shops_p90_above_the_default(
    name: str, times_default: float, values: int, expected_times_default: float
) -> None:
    default = getattr(DEFAULTS, name)
    models = PartitionModels(baseline_min_count=20)
    for _ in range(values):
        models.observe_baseline(ADAPTED_THRESHOLDS[name], default * times_default)

    thresholds = adapted_rules(models, Rules()).thresholds

    assert getattr(thresholds, name) == round(default * expected_times_default)
    assert replace(thresholds, **{name: getattr(DEFAULTS, name)}) == DEFAULTS


def test_adapted_thresholds_are_raised_from_the_deployments_own_rules() -> None:
    base = Rules(thresholds=replace(DEFAULTS, checkout_stall_ms=90_000))
    models = PartitionModels(baseline_min_count=20)
    for _ in range(20):
        models.observe_baseline("checkout_step_ms", 75_000.0)

    assert adapted_rules(models, Rules()).thresholds.checkout_stall_ms == 75_000
    assert adapted_rules(models, base) is base


def test_adapted_rules_keep_the_rest_of_the_rules() -> None:
    base = Rules(time=TimeRules(session_timeout_ms=600_000))
    models = PartitionModels(baseline_min_count=1)
    models.observe_baseline("form_ms", 300_000.0)

    rules = adapted_rules(models, base)

    assert rules.thresholds.form_slow_ms == 300_000
    assert (rules.time, rules.limits) == (base.time, base.limits)


def test_a_cold_learner_uses_the_published_rules() -> None:
    learner = PartitionLearner(PartitionModels(), Rules())

    assert learner.rules == Rules()
    assert {n: getattr(learner.rules.thresholds, n) for n in ADAPTED_THRESHOLDS} == {
        "checkout_stall_ms": 60_000,
        "product_dwell_ms": 120_000,
        "form_slow_ms": 180_000,
    }


def test_a_learner_starts_from_the_thresholds_of_its_models_last_refresh() -> None:
    models = PartitionModels(baseline_min_count=20)
    for _ in range(20):
        models.observe_baseline("dwell_product_ms", 200_000.0)

    # Warm baselines, but no refresh yet: the rules wait for the next one, counted in values.
    assert PartitionLearner(models, Rules()).rules.thresholds.product_dwell_ms == 120_000
    models.adapted_thresholds = {"product_dwell_ms": 200_000}
    assert PartitionLearner(models, Rules()).rules.thresholds.product_dwell_ms == 200_000


def checkout_steps(n: int, every_ms: int = 150_000) -> list[ClickEvent]:
    """One long checkout: from the second on, each event teaches two values (the gap and the
    step time)."""
    return [at(i * every_ms, "checkout_step", step=("cart", "shipping")[i % 2]) for i in range(n)]


def test_thresholds_are_refreshed_every_refresh_every_baseline_values() -> None:
    partition = Partition(PartitionModels(baseline_min_count=10))
    rules = partition.learner.rules
    refreshes = []  # (baseline values learned, checkout_stall_ms) whenever the rules change
    for event in checkout_steps(300):
        partition.event(event)
        if partition.learner.rules is not rules:
            rules = partition.learner.rules
            refreshes.append(
                (partition.models.learned["baselines"], rules.thresholds.checkout_stall_ms)
            )

    assert partition.models.learned["baselines"] == 598
    assert refreshes == [(REFRESH_EVERY, 150_000), (2 * REFRESH_EVERY, 150_000)]


def test_a_restored_learner_adapts_the_same_rules_as_one_that_ran_on() -> None:
    events = checkout_steps(300)
    ran_on = Partition(PartitionModels(baseline_min_count=10))
    ran_on.events(events[:100])
    restored = Partition(PartitionModels.from_bytes(ran_on.models.to_bytes()))
    restored.table = dict(ran_on.table)

    ran_on_rules, restored_rules = [], []
    for event in events[100:]:
        ran_on.event(event)
        restored.event(event)
        ran_on_rules.append(ran_on.learner.rules)
        restored_rules.append(restored.learner.rules)

    assert restored_rules == ran_on_rules


# --- abandonment -------------------------------------------------------------------------


def cart(session_id: str = "s1", start_ms: int = 0) -> list[ClickEvent]:
    """A session that reaches payment with 40.0 in the cart."""
    return [
        at(start_ms, "add_to_cart", session_id=session_id, product_id="p1", value=40.0),
        at(start_ms + 10_000, "checkout_step", session_id=session_id, step="cart", value=40.0),
        at(start_ms + 40_000, "checkout_step", session_id=session_id, step="payment", value=40.0),
    ]


@pytest.mark.parametrize(
    ("history", "event", "scored"),
    [
        pytest.param(cart()[:1], at(5_000, "checkout_step", step="cart"), True, id="checkout-step"),
        pytest.param(cart()[:1], at(5_000, "payment_attempt"), True, id="payment-attempt"),
        pytest.param(
            cart()[:1], at(5_000, "payment_failed", error="declined"), True, id="payment-failed"
        ),
        pytest.param(cart()[:1], at(5_000, "page_view", page="/cart"), False, id="not-checkout"),
        pytest.param([], at(0, "add_to_cart", product_id="p1", value=40.0), True, id="add"),
        pytest.param(
            [*cart()[:1], at(1_000, "add_to_cart", product_id="p2", value=10.0)],
            at(5_000, "remove_from_cart", product_id="p2", value=10.0),
            True,
            id="remove-one-of-two",
        ),
        pytest.param(
            cart()[:1],
            at(5_000, "remove_from_cart", product_id="p1", value=40.0),
            False,
            id="remove-the-last",
        ),
        pytest.param(
            [at(0, "page_view")], at(5_000, "checkout_step", step="cart"), False, id="no-cart"
        ),
        pytest.param(
            [*cart()[:1], at(1_000, "remove_from_cart", product_id="p1", value=40.0)],
            at(5_000, "checkout_step", step="cart"),
            False,
            id="emptied-cart",
        ),
    ],
)
def test_cart_and_checkout_events_of_a_session_with_a_cart_are_scored(
    history: list[ClickEvent], event: ClickEvent, scored: bool
) -> None:
    partition = Partition()
    partition.events(history)
    partition.learner.scores.clear()
    scored_before = partition.models.scored["abandonment"]

    partition.event(event)

    expected = [("abandonment", 0.5)] if scored else []  # cold: no opinion
    assert [s for s in partition.learner.scores if s[0] == "abandonment"] == expected
    assert partition.models.scored["abandonment"] - scored_before == len(expected)
    # The session waits for its label once it was scored, on this event or before.
    assert partition.models.abandonment.pending == (scored or scored_before > 0)


def test_each_session_scored_waits_once_for_its_label() -> None:
    partition = Partition()

    partition.events([*cart("s1"), *cart("s2", start_ms=50_000)])

    assert partition.models.scored["abandonment"] == 6  # each add and checkout step
    assert partition.models.abandonment.pending == 2
    assert partition.models.learned["abandonment"] == 0


def test_a_purchase_is_learned_as_not_abandoned() -> None:
    partition = Partition()
    partition.events(cart())

    partition.event(at(60_000, "purchase", value=40.0))

    abandonment = partition.models.abandonment
    # The add and both checkout steps were scored: each snapshot is validated, then learned.
    assert (partition.models.learned["abandonment"], abandonment.pending) == (3, 0)
    assert abandonment.validation.labels == 3
    assert abandonment.score_one(ANY_X) < 0.5

    partition.event(at(70_000, "session_end"))  # learned at the purchase, not again

    assert (partition.models.learned["abandonment"], abandonment.validation.labels) == (3, 3)
    assert partition.models.learned["anomaly"] == 1


def end_by_session_end(partition: Partition) -> None:
    last_ms = partition.table["c1"].sessions[-1].last_ts_ms - T0_MS
    partition.event(at(last_ms + 20_000, "session_end"))


def end_by_timeout(partition: Partition) -> None:
    state = partition.table["c1"]
    outcome = fire_timers(state, state.sessions[-1].last_ts_ms + TIMEOUT_MS + 1, Rules(), 0)
    assert (outcome.state.sessions, len(outcome.state.ended_sessions)) == ((), 1)
    partition.learner.learn_ended("c1", state, outcome.state)


ENDINGS = [
    pytest.param(end_by_session_end, id="session-end"),
    pytest.param(end_by_timeout, id="timeout"),
]


@pytest.mark.parametrize("end", ENDINGS)
def test_a_session_that_ends_with_a_cart_is_learned_as_abandoned(
    end: Callable[[Partition], None],
) -> None:
    partition = Partition()
    partition.events(cart())

    end(partition)

    abandonment = partition.models.abandonment
    assert (partition.models.learned["abandonment"], abandonment.pending) == (3, 0)
    assert abandonment.validation.labels == 3
    assert abandonment.score_one(ANY_X) > 0.5


@pytest.mark.parametrize("end", ENDINGS)
def test_a_cart_without_prices_is_scored_and_learned(end: Callable[[Partition], None]) -> None:
    # A shop whose events carry no value: the item in the cart makes it a cart.
    partition = Partition()
    partition.events([replace(e, value=None) for e in cart()])
    assert partition.models.scored["abandonment"] == 3

    end(partition)

    assert partition.models.learned["abandonment"] == 3
    assert partition.models.abandonment.validation.labels == 3


@pytest.mark.parametrize("end", ENDINGS)
def test_a_session_that_ends_without_a_cart_is_forgotten(end: Callable[[Partition], None]) -> None:
    partition = Partition()
    partition.events([*cart(), at(50_000, "checkout_step", step="cart", value=0.0)])
    assert partition.models.abandonment.pending == 1

    end(partition)

    abandonment = partition.models.abandonment
    assert (partition.models.learned["abandonment"], abandonment.pending) == (0, 0)
    assert abandonment.validation.labels == 0
    assert abandonment.score_one(ANY_X) == 0.5


def test_the_runtimes_timer_path_learns_the_abandoned_cart() -> None:
    partition = Partition()
    partition.events(cart())

    [outcome] = partition.timers(T0_MS + 40_000 + TIMEOUT_MS + 1)

    assert outcome.state is not None and outcome.state.sessions == ()
    assert partition.models.learned["abandonment"] == 3  # its add and two checkout steps
    assert partition.models.learned["anomaly"] == 1


def test_each_scored_checkout_event_is_learned_with_the_sessions_outcome() -> None:
    """The features of every cart and checkout event scored, as they were then; not only
    the last."""
    partition = Partition()
    events = [*cart(), at(50_000, "payment_failed", error="declined", value=40.0)]
    partition.events(events)
    scored = [
        abandonment_features(fold(events[: n + 1]).sessions[0], event.ts_ms)
        for n, event in enumerate(events)
        if event.type in ABANDONMENT_TRIGGERS
    ]

    end_by_session_end(partition)

    reference = AbandonmentModel()
    for x in scored:
        reference.learn_one(x, True)
    assert len(scored) == partition.models.learned["abandonment"] == 4
    assert partition.models.abandonment.score_one(ANY_X) == reference.score_one(ANY_X)


# --- session anomaly ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "ended"),
    [
        pytest.param([at(0, "page_view"), at(10_000)], 0, id="live"),
        pytest.param([at(0, "page_view"), at(10_000, "session_end")], 1, id="session-end"),
        pytest.param(
            [at(0, "page_view"), at(10_000, "session_end"), at(12_000)], 1, id="then-a-straggler"
        ),
        pytest.param(
            [at(0, "page_view"), at(TIMEOUT_MS + 60_000, "page_view", session_id="s2")],
            1,
            id="timed-out-at-next-visit",
        ),
        pytest.param(
            [at(0, "page_view"), at(TIMEOUT_MS + 60_000, "page_view")], 1, id="same-tab-back"
        ),
        pytest.param(
            [at(i * 1_000, "page_view", session_id=f"s{i}") for i in range(5)],
            1,
            id="past-the-live-bound",
        ),
        pytest.param(
            [
                at(0, "page_view"),
                at(1_000, "session_end"),
                at(2_000, "page_view", session_id="s2"),
                at(3_000, "session_end", session_id="s2"),
            ],
            2,
            id="two-sessions",
        ),
    ],
)
def test_each_ended_session_is_learned_once(events: list[ClickEvent], ended: int) -> None:
    partition = Partition()

    partition.events(events)

    assert partition.models.learned["anomaly"] == ended


def test_timers_learn_a_timed_out_session_once() -> None:
    partition = Partition()
    partition.event(at(0, "page_view"))

    partition.timers(T0_MS + TIMEOUT_MS + 1)
    partition.timers(T0_MS + 2 * TIMEOUT_MS)
    state = partition.table["c1"]
    partition.learner.learn_ended("c1", state, state)

    assert partition.models.learned["anomaly"] == 1


def test_nothing_ends_for_a_customer_not_seen_before() -> None:
    learner = PartitionLearner(PartitionModels(), Rules())

    learner.learn_ended("c1", None, fold([at(0, "page_view")]))

    assert learner.models.learned == dict.fromkeys(learner.models.learned, 0)


# --- evidence on interventions -----------------------------------------------------------


def test_an_intervention_with_a_cart_gets_anomaly_and_abandonment_risk() -> None:
    partition = Partition()
    partition.event(at(0, "add_to_cart", product_id="p1", value=40.0))
    partition.learner.scores.clear()

    outcome = partition.event(at(5_000, "payment_failed", error="declined"))

    [intervention] = outcome.interventions
    assert intervention["reason"] == "payment_failure"
    assert intervention["signals"]["session_anomaly"] == 0.0  # cold trees: 0
    assert intervention["signals"]["abandonment_risk"] == 0.5  # cold classifier: no opinion
    assert partition.learner.scores == [("abandonment", 0.5), ("anomaly", 0.0)]
    assert partition.models.scored["anomaly"] == 1


def test_an_intervention_without_a_cart_gets_no_abandonment_risk() -> None:
    partition = Partition()

    outcome = partition.event(at(0, "payment_failed", error="declined"))

    [intervention] = outcome.interventions
    assert intervention["signals"]["session_anomaly"] == 0.0
    assert "abandonment_risk" not in intervention["signals"]
    assert partition.learner.scores == [("anomaly", 0.0)]


def test_the_abandonment_risk_is_the_models_current_answer() -> None:
    partition = Partition()
    partition.events(cart())
    end_by_session_end(partition)  # learned: abandoned
    partition.event(at(100_000, "add_to_cart", session_id="s2", product_id="p1", value=40.0))

    outcome = partition.event(at(105_000, "payment_failed", session_id="s2", error="declined"))

    [intervention] = outcome.interventions
    model, risk = partition.learner.scores[-2]
    assert model == "abandonment"
    assert risk != 0.5  # no longer cold
    assert intervention["signals"]["abandonment_risk"] == round(risk, 3)


def view(ms: int, product_id: str = "p1") -> ClickEvent:
    return at(ms, "product_view", page=f"/p/{product_id}", product_id=product_id, value=80.0)


def in_cart(ms: int, type: str) -> ClickEvent:
    return at(ms, type, product_id="p1", value=80.0)


@pytest.mark.parametrize(
    ("events", "kind", "reason", "variant"),
    [
        pytest.param([view(0), view(30_000), view(60_000)], "offer", "product_hesitation", True,
                     id="three-views"),
        pytest.param([in_cart(0, "add_to_cart"), in_cart(1_000, "remove_from_cart"),
                      in_cart(2_000, "add_to_cart")], "offer", "product_hesitation", True,
                     id="add-remove-add"),
        pytest.param([view(0), at(60_000, "scroll"), at(120_000, "scroll")], "assist",
                     "product_hesitation", False, id="long-dwell"),
        pytest.param([at(0, "payment_failed", error="declined")], "assist", "payment_failure",
                     False, id="another-reason"),
    ],
)  # fmt: skip
def test_only_an_offer_of_a_reason_with_variants_gets_one(
    events: list[ClickEvent], kind: str, reason: str, variant: bool
) -> None:
    partition = Partition()

    *_, outcome = partition.events(events)

    [intervention] = outcome.interventions
    assert (intervention["kind"], intervention["reason"]) == (kind, reason)
    if variant:
        assert intervention["context"]["variant"] in VARIANTS[reason]
    else:
        assert "variant" not in intervention["context"]
    assert partition.models.scored["variants"] == int(variant)
    assert partition.models.learned["variants"] == 0  # feedback teaches it, not events
    # The customer's own record of the decision carries it too (the customer view).
    assert partition.table["c1"].interventions[0] is intervention


def test_the_variant_is_the_partitions_bandits_pick() -> None:
    views = [view(0), view(30_000), view(60_000)]
    partition, twin = Partition(), PartitionModels(baseline_min_count=1)
    picked = []
    for n in range(30):  # customers hesitating over a product, an offer each (but the holdout)
        outcome = partition.events([replace(e, customer_id=f"c{n}") for e in views])[-1]
        picked += [i["context"]["variant"] for i in outcome.interventions]

    assert len(picked) >= 20
    assert picked == [twin.pick_variant("product_hesitation", VARIANTS["product_hesitation"])
                      for _ in picked]  # fmt: skip
    assert partition.models.variants.arms == twin.variants.arms


def test_no_interventions_no_scores() -> None:
    partition = Partition()

    partition.events([at(0, "page_view"), at(1_000)])
    partition.learner.annotate([], partition.table["c1"])

    assert partition.learner.scores == []
    assert partition.models.scored["anomaly"] == 0


# --- determinism -------------------------------------------------------------------------


def partition_stream(seed: int, visits: int) -> list[ClickEvent]:
    """Visits of a few customers, interleaved in event time as a partition holds them:
    browsing, forms, carts, checkouts; ended by a purchase, ``session_end`` or silence."""
    rng = random.Random(seed)
    events: list[ClickEvent] = []
    for visit in range(visits):
        # Up to three live sessions a customer, within the live bound.
        customer, session = f"c{visit % 60}", f"s{visit}"
        ts = T0_MS + visit * 30_000 + rng.randrange(20_000)
        script: list[tuple[str, dict[str, object]]] = [("page_view", {"page": "/"})]
        for p in range(rng.randint(1, 3)):
            script.append(("product_view", {"page": f"/p/{p}", "product_id": f"p{p}"}))
        if rng.random() < 0.3:
            form = {"page": "/signup", "field": "email"}
            script += [("form_focus", form), ("form_input", form), ("form_submit", form)]
        ending: list[str | None] = ["session_end", None]
        if rng.random() < 0.6:
            value = float(rng.randint(10, 200))
            script.append(("add_to_cart", {"product_id": "p0", "value": value}))
            for step in ("cart", "shipping", "payment")[: rng.randint(1, 3)]:
                script.append(("checkout_step", {"step": step, "value": value}))
            if rng.random() < 0.3:
                script.append(("payment_failed", {"error": "declined", "value": value}))
            ending.append("purchase")
        end = rng.choice(ending)
        if end is not None:
            script.append((end, {}))
        for type_, fields in script:
            event = click(customer_id=customer, session_id=session, type=type_, ts_ms=ts, **fields)
            events.append(event)
            ts += rng.randint(1_000, 200_000)
    return sorted(events, key=lambda e: e.ts_ms)


def run_partition(events: list[ClickEvent]) -> Partition:
    partition = Partition(PartitionModels(baseline_min_count=50))
    newest_ms = 0
    for event in events:
        newest_ms = max(newest_ms, event.ts_ms)
        watermark_ms = newest_ms - LATENESS_MS
        partition.timers(watermark_ms)
        partition.event(event, watermark_ms)
    partition.timers(newest_ms + TIMEOUT_MS + 1)
    return partition


def test_the_same_events_teach_the_same_models_and_rules() -> None:
    events = partition_stream(seed=7, visits=150)

    first, second = run_partition(events), run_partition(events)

    models = first.models
    assert all(not state.sessions for state in first.table.values())
    assert sum(state.profile.visits for state in first.table.values()) == 150
    assert models.learned["anomaly"] == 150  # every visit ended, each learned once
    assert models.learned["abandonment"] > 20
    assert models.learned["baselines"] > 2 * REFRESH_EVERY
    assert first.learner.rules.thresholds.checkout_stall_ms > DEFAULTS.checkout_stall_ms
    assert first.models.to_bytes() == second.models.to_bytes()
    assert first.learner.rules == second.learner.rules
    assert first.learner.scores == second.learner.scores


def test_an_intervention_of_a_session_its_event_ended_still_gets_the_models_evidence() -> None:
    learner = PartitionLearner(PartitionModels(), Rules())
    before = fold([click(type="add_to_cart", product_id="p1", value=40.0, ts_ms=T0_MS)])
    intervention = {"session_id": before.sessions[0].session_id, "event_ts": T0_MS + 1_000,
                    "kind": "assist", "reason": "payment_failure", "signals": {},
                    "context": {}}  # fmt: skip
    ended = replace(before, sessions=())

    learner.annotate([intervention], ended)
    assert intervention["signals"] == {}
    learner.annotate([intervention], ended, before)
    assert set(intervention["signals"]) == {"session_anomaly", "abandonment_risk"}


def test_a_simulated_shop_without_prices_learns_about_as_many_carts() -> None:
    simulated = simulate(SimulationConfig(customers=100, days=2, seed=5))

    def run(keep_value: bool) -> tuple[int, int]:
        partition = PartitionRun(learner=PartitionLearner(PartitionModels(), Rules()))
        reminders = 0
        for wire, arrival_ms in zip(simulated.events, simulated.arrival_ms, strict=True):
            if not keep_value:
                wire = {k: v for k, v in wire.items() if k != "value"}
            outcome = partition.event(validate_event(wire, arrival_ms), arrival_ms)
            reminders += sum(i["reason"] == "cart_abandonment_risk" for i in outcome.interventions)
        assert partition.learner is not None
        return partition.learner.models.learned["abandonment"], reminders

    (with_prices, reminded), (without, reminded_without) = run(True), run(False)

    assert with_prices > 100
    assert without >= 0.9 * with_prices
    assert reminded > 0 and reminded_without > 0


def test_a_simulated_shop_without_checkout_steps_still_learns_its_carts() -> None:
    # Many shops send cart changes and purchases only: their carts are scored where they
    # change, and the model does better than chance at telling which will be bought.
    simulated = simulate(SimulationConfig(customers=100, days=2, seed=5))
    partition = PartitionRun(learner=PartitionLearner(PartitionModels(), Rules()))
    for wire, arrival_ms in zip(simulated.events, simulated.arrival_ms, strict=True):
        if wire["type"] not in {"checkout_step", "payment_attempt", "payment_failed"}:
            partition.event(validate_event(wire, arrival_ms), arrival_ms)
    assert partition.learner is not None
    models = partition.learner.models

    assert models.learned["abandonment"] > 100
    assert models.auc("abandonment") > 0.55


# --- rhythm: the customer's own statistics, counted and scored here -----------------------

DAY_MS = 86_400_000


def visit(day: float, events: int = 3, session_end: bool = True) -> list[ClickEvent]:
    """A visit of ``events`` page views on ``day``, ended by ``session_end``; the later the
    day, the slower the visit (each visit's pace differs)."""
    session_id = f"v{day}"
    start_ms, gap_ms = int(day * DAY_MS), 60_000 + int(day * 1_000)
    views = [at(start_ms + gap_ms * i, "page_view", session_id=session_id, page=f"/{i}")
             for i in range(events)]  # fmt: skip
    end = [at(start_ms + gap_ms * events, "session_end", session_id=session_id)]
    return [*views, *(end if session_end else [])]


def test_a_returning_visit_is_scored_against_the_usual_gap_and_learned() -> None:
    partition = Partition()
    partition.events([*visit(0), *visit(2), *visit(4)])
    scored, learned = partition.models.scored["rhythm"], partition.models.learned["rhythm"]
    # Gaps of the 2nd and 3rd visit (the 3rd scored against the 2nd's); paces of three visits.
    assert (scored, learned) == (1, 2 + 3)
    partition.learner.scores.clear()

    partition.events(visit(20))  # 16 days late against a usual 2

    assert partition.models.scored["rhythm"] == scored + 1
    assert partition.models.learned["rhythm"] == learned + 2
    (model, risk), *_ = [s for s in partition.learner.scores if s[0] == "rhythm"]
    assert model == "rhythm" and risk > 0.9


def test_a_visit_ended_by_a_timer_teaches_its_pace() -> None:
    partition = Partition()
    partition.events(visit(0, session_end=False))
    assert partition.models.learned["rhythm"] == 0

    partition.timers(T0_MS + TIMEOUT_MS + DAY_MS)

    assert partition.models.learned["rhythm"] == 1


def test_a_customer_back_after_the_ttl_starts_afresh_and_teaches_no_gap() -> None:
    partition = Partition()
    partition.events([*visit(0), *visit(2)])
    learned = partition.models.learned["rhythm"]

    partition.events(visit(2 + TimeRules().customer_ttl_ms / DAY_MS + 1))

    assert partition.models.scored["rhythm"] == 0
    assert partition.models.learned["rhythm"] == learned + 1  # its own pace only
