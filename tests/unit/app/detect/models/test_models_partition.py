"""A partition's models: counters, offsets, checkpoints that continue exactly, determinism,
and the variant bandit."""

from __future__ import annotations

import pickle
import random
import struct
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from app.decide.variants import VARIANTS
from app.detect.models.abandonment import AbandonmentFeatures
from app.detect.models.anomaly import SessionFeatures
from app.detect.models.partition import CHECKPOINT_VERSION, MODEL_NAMES, PartitionModels
from app.detect.models.rhythm import EwStats, update_ew

# A method of PartitionModels and its arguments.
Call = tuple[str, tuple[Any, ...]]

HESITATION = "product_hesitation"
OFFER_VARIANTS = VARIANTS[HESITATION]


def abandonment_x(rng: random.Random) -> AbandonmentFeatures:
    return AbandonmentFeatures(
        cart_value=rng.expovariate(1 / 80),
        step_index=float(rng.randint(-1, 4)),
        failed_payments=float(rng.randint(0, 3)),
        checkout_s=rng.expovariate(1 / 120),
        events=float(rng.randint(3, 80)),
        step_regressions=float(rng.randint(0, 2)),
        back_navigations=float(rng.randint(0, 3)),
        errors=float(rng.randint(0, 2)),
        cart_items=float(rng.randint(0, 4)),
        cart_changes=float(rng.randint(0, 6)),
        session_s=rng.expovariate(1 / 600),
    )


def session_x(rng: random.Random) -> SessionFeatures:
    return SessionFeatures(
        events_per_min=rng.lognormvariate(1.4, 0.5),
        back_navigations=float(rng.randint(0, 3)),
        errors=float(rng.randint(0, 2)),
        form_s=rng.expovariate(1 / 30),
        step_regressions=float(rng.randint(0, 1)),
        search_reformulations=float(rng.randint(0, 3)),
    )


def script(n: int, seed: int, first_offset: int = 0) -> list[Call]:
    """The model calls of ``n`` events of a partition, in offset order."""
    rng = random.Random(seed)
    calls: list[Call] = []
    open_sessions: list[str] = []
    rhythm = EwStats()  # one customer's, kept in their state
    for offset in range(first_offset, first_offset + n):
        metric = rng.choice(["dwell_product_ms", "event_gap_ms", "form_ms"])
        calls.append(("observe_baseline", (metric, rng.expovariate(1 / 20_000))))
        calls.append(("baseline_threshold", (metric, 60_000.0)))
        if open_sessions and rng.random() < 0.6:  # the next checkout event of an open session
            key = rng.choice(open_sessions)
        else:
            key = f"c{rng.randint(0, 50)}/s{offset}"
            open_sessions.append(key)
        x = abandonment_x(rng)
        calls.append(("score_abandonment", (key, x)))
        if len(open_sessions) > 5:
            ended = open_sessions.pop(rng.randrange(len(open_sessions)))
            calls.append(("label_session", (ended, rng.random() < 0.3 + 0.2 * x.failed_payments)))
            calls.append(("learn_anomaly", (session_x(rng),)))
        calls.append(("score_anomaly", (session_x(rng),)))
        if rng.random() < 0.2:  # an offer, and now and then a verdict on an earlier one
            calls.append(("pick_variant", (HESITATION, OFFER_VARIANTS)))
        if rng.random() < 0.1:
            reward = float(rng.random() < 0.3)
            calls.append(("learn_variant", (HESITATION, rng.choice(OFFER_VARIANTS), reward)))
        gap_days = rng.expovariate(1 / 7)
        calls.append(("churn_risk", (rhythm, gap_days)))
        calls.append(("learn_rhythm", ()))
        rhythm = update_ew(rhythm, gap_days)
        calls.append(("include", (offset,)))
    return calls


def run(models: PartitionModels, calls: list[Call]) -> list[object]:
    """Every call's result, in order."""
    return [getattr(models, name)(*args) for name, args in calls]


def test_the_same_inputs_in_the_same_order_give_the_same_outputs_bit_for_bit() -> None:
    calls = script(1_200, seed=1)
    first, second = PartitionModels(), PartitionModels()
    assert run(first, calls) == run(second, calls)
    assert first.to_bytes() == second.to_bytes()


def test_a_restored_checkpoint_continues_exactly_like_the_original() -> None:
    original = PartitionModels()
    run(original, script(800, seed=2))
    restored = PartitionModels.from_bytes(original.to_bytes())
    assert restored.offset == original.offset == 799
    later = script(500, seed=3, first_offset=800)
    assert run(restored, later) == run(original, later)
    # Not byte for byte: pickle shares an object met twice, and a restored copy may hold
    # two equal objects where the original held one.
    assert restored.learned == original.learned
    assert restored.auc("abandonment") == original.auc("abandonment")


def test_counters_per_model() -> None:
    models = PartitionModels()
    x = abandonment_x(random.Random(4))
    s = session_x(random.Random(5))
    models.observe_baseline("form_ms", 1_000.0)
    models.baseline_threshold("form_ms", 180_000.0)
    models.score_abandonment("c1/s1", x)
    models.score_abandonment("c1/s1", x)
    models.label_session("c1/s1", abandoned=False)  # both snapshots learned
    models.label_session("c2/s2", abandoned=True)  # never scored: not learned
    models.learn_anomaly(s)
    models.score_anomaly(s)
    models.learn_rhythm()
    models.churn_risk(update_ew(EwStats(), 3.0), 4.0)
    models.pick_variant(HESITATION, OFFER_VARIANTS)
    models.pick_variant(HESITATION, OFFER_VARIANTS)
    models.learn_variant(HESITATION, "discount", 1.0)
    assert set(models.learned) == set(models.scored) == set(MODEL_NAMES)
    assert models.learned == {"baselines": 1, "abandonment": 2, "anomaly": 1, "rhythm": 1,
                              "variants": 1}  # fmt: skip
    assert models.scored == {"baselines": 1, "abandonment": 2, "anomaly": 1, "rhythm": 1,
                             "variants": 2}  # fmt: skip


def test_the_offset_only_moves_forward() -> None:
    models = PartitionModels()
    assert models.offset == -1 and not models.includes(0)
    models.include(10)
    models.include(10)  # again before another checkpoint: nothing new
    assert models.includes(10) and not models.includes(11)
    with pytest.raises(ValueError, match="before"):
        models.include(9)


def test_only_the_abandonment_model_is_validated_against_labels() -> None:
    models = PartitionModels()
    run(models, script(300, seed=6))
    assert 0.0 < models.auc("abandonment") <= 1.0
    assert models.log_loss("abandonment") > 0.0
    assert models.drifts("abandonment") >= 0
    for name in ("baselines", "anomaly", "rhythm", "variants", "rules"):
        with pytest.raises(ValueError, match="not validated"):
            models.auc(name)


def test_pending_sessions_are_bounded() -> None:
    models = PartitionModels(pending_max=100)
    rng = random.Random(7)
    for i in range(1_000):
        models.score_abandonment(f"c{i}/s1", abandonment_x(rng))
    assert models.abandonment.pending == 100
    assert models.abandonment.evicted == 900
    assert not models.label_session("c0/s1", abandoned=True)
    assert models.label_session("c999/s1", abandoned=True)


def test_a_restored_checkpoint_keeps_each_pending_sessions_snapshots() -> None:
    rng = random.Random(9)
    original = PartitionModels()
    for i in range(30):  # sessions with 1 to 10 checkout events, none labelled yet
        for _ in range(1 + i % 10):
            original.score_abandonment(f"c{i}/s1", abandonment_x(rng))
    restored = PartitionModels.from_bytes(original.to_bytes())
    assert restored.abandonment.pending == original.abandonment.pending == 30
    labels = [(f"c{i}/s1", rng.random() < 0.4) for i in range(30)]
    assert [restored.label_session(*label) for label in labels] == [
        original.label_session(*label) for label in labels
    ]
    learned = 3 * sum(min(n, 8) for n in range(1, 11))  # the newest 8 of each
    assert restored.learned["abandonment"] == original.learned["abandonment"] == learned
    assert restored.abandonment.validation.labels == original.abandonment.validation.labels
    assert restored.auc("abandonment") == original.auc("abandonment")
    probes = [abandonment_x(rng) for _ in range(20)]
    assert [restored.abandonment.score_one(x) for x in probes] == [
        original.abandonment.score_one(x) for x in probes
    ]


def test_a_checkpoint_is_about_the_size_of_its_trees_bandit_and_pending_snapshots() -> None:
    models = PartitionModels()
    rng = random.Random(8)
    models.learn_anomaly(session_x(rng))
    models.pick_variant(HESITATION, OFFER_VARIANTS)
    trees = len(pickle.dumps(models.anomaly))
    bandit = len(pickle.dumps(models.variants))
    assert bandit < 400  # its counts: no random generator's state (2.5 KB each)
    # The baselines' quantiles and the abandonment model, cold: ~5 KB.
    assert len(models.to_bytes()) < trees + bandit + 6_000
    for i in range(1_000):
        models.score_abandonment(f"c{i}/s{i}", abandonment_x(rng))
    one_each = len(models.to_bytes())
    assert one_each < trees + bandit + 10_000 + 1_000 * 130
    for i in range(1_000):  # each session at its bound: 8 snapshots
        for _ in range(9):
            models.score_abandonment(f"c{i}/s{i}", abandonment_x(rng))
    assert len(models.to_bytes()) < one_each + 1_000 * 7 * 100


def header(version: int = CHECKPOINT_VERSION, river: bytes = b"0.26.1") -> bytes:
    return struct.pack(">4sHB", b"NFPM", version, len(river)) + river


def payload(data: bytes) -> bytes:
    return data[struct.calcsize(">4sHB") + data[6] :]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param(lambda d: d[:5], "too short", id="truncated"),
        pytest.param(lambda d: b"XXXX" + d[4:], "not a models checkpoint", id="not-ours"),
        pytest.param(
            lambda d: header(version=CHECKPOINT_VERSION + 1) + payload(d), "version", id="newer"
        ),
        pytest.param(
            lambda d: header(version=CHECKPOINT_VERSION - 1) + payload(d),
            f"version {CHECKPOINT_VERSION - 1}",
            id="older",
        ),
        pytest.param(lambda d: header(river=b"0.1.0") + payload(d), "River 0.1.0", id="old-river"),
        pytest.param(
            lambda d: d[: len(d) - len(payload(d))] + zlib.compress(pickle.dumps({"not": 1})),
            "holds a dict",
            id="not-models-inside",
        ),
        pytest.param(
            lambda d: d[: len(d) - len(payload(d))] + pickle.dumps(PartitionModels()),
            "does not decompress",
            id="not-compressed",
        ),
    ],
)
def test_a_checkpoint_of_another_kind_is_refused(
    damage: Callable[[bytes], bytes], message: str
) -> None:
    data = PartitionModels().to_bytes()
    assert PartitionModels.from_bytes(data).offset == -1
    with pytest.raises(ValueError, match=message):
        PartitionModels.from_bytes(damage(data))


# --- the variant bandit -------------------------------------------------------------------


def offers(models: PartitionModels, rounds: int, rates: dict[str, float], seed: int) -> list[str]:
    """``rounds`` offers, each with a verdict drawn at its variant's acceptance rate."""
    rng = random.Random(seed)
    picked = []
    for _ in range(rounds):
        variant = models.pick_variant(HESITATION, OFFER_VARIANTS)
        models.learn_variant(HESITATION, variant, float(rng.random() < rates[variant]))
        picked.append(variant)
    return picked


@pytest.mark.parametrize("best", OFFER_VARIANTS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_bandit_comes_to_pick_the_variant_that_converts_most(best: str, seed: int) -> None:
    rates = {variant: 0.3 if variant == best else 0.05 for variant in OFFER_VARIANTS}
    picked = offers(PartitionModels(seed=seed), 400, rates, seed)
    assert picked[-100:].count(best) >= 80
    assert picked.count(best) >= 250  # it did not take long to find


def test_a_restored_bandit_keeps_its_counts_and_goes_on_like_the_original() -> None:
    rates = dict(zip(OFFER_VARIANTS, (0.1, 0.3, 0.05), strict=True))
    original = PartitionModels()
    offers(original, 200, rates, seed=4)
    restored = PartitionModels.from_bytes(original.to_bytes())
    assert restored.variants.arms == original.variants.arms
    arms = restored.variants.arms[HESITATION]
    assert sum(arm.pulls for arm in arms.values()) == sum(arm.learned for arm in arms.values())
    assert sum(arm.pulls for arm in arms.values()) == 200
    assert (restored.learned["variants"], restored.scored["variants"]) == (200, 200)
    assert offers(restored, 100, rates, seed=5) == offers(original, 100, rates, seed=5)


def test_the_same_pulls_and_rewards_give_the_same_choices() -> None:
    rates = dict(zip(OFFER_VARIANTS, (0.2, 0.2, 0.2), strict=True))
    first = offers(PartitionModels(seed=7), 300, rates, seed=8)
    assert offers(PartitionModels(seed=7), 300, rates, seed=8) == first
    assert len(set(first)) == len(OFFER_VARIANTS)  # equal rates: all are tried
    assert offers(PartitionModels(seed=9), 300, rates, seed=8) != first


def test_a_cold_bandit_spreads_its_picks_until_feedback_comes() -> None:
    models = PartitionModels()
    picked = [models.pick_variant(HESITATION, OFFER_VARIANTS) for _ in range(300)]
    assert all(picked.count(variant) > 60 for variant in OFFER_VARIANTS)
    assert models.learned["variants"] == 0


def test_the_bandit_learns_a_reward_for_a_variant_it_has_not_picked_yet() -> None:
    # Feedback may come for a pick the restored models do not include (lost in a crash).
    models = PartitionModels()
    models.learn_variant(HESITATION, "free_shipping", 1.0)
    arm = models.variants.arms[HESITATION]["free_shipping"]
    assert (arm.pulls, arm.learned, arm.rewarded) == (0, 1, 1)
