"""Response variants: which interventions get one, what feedback teaches, the bandit's contract."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import pytest

from app.decide.variants import (
    VARIANTS,
    VariantBandit,
    reward_of,
    variant_lesson,
    variants_for,
)
from app.detect.signals import CATALOGUE
from app.feedback import OUTCOMES

README = Path(__file__).resolve().parents[4] / "README.md"
HESITATION = "product_hesitation"
OFFER_VARIANTS = ("discount", "price_comparison", "free_shipping")


@pytest.mark.parametrize(
    ("kind", "reason", "expected"),
    [
        ("offer", HESITATION, OFFER_VARIANTS),
        ("assist", HESITATION, ()),  # a long dwell asks for information, not a price
        ("assist", "rage_click", ()),
        ("reminder", "cart_abandonment_risk", ()),
        ("offer", "not_a_reason", ()),
    ],
)
def test_variants_for(kind: str, reason: str, expected: tuple[str, ...]) -> None:
    assert variants_for(kind, reason) == expected


def test_every_reason_with_variants_is_a_rule_that_makes_offers() -> None:
    offering = {reason for kind, reason in CATALOGUE if kind == "offer"}
    assert set(VARIANTS) <= offering
    for variants in VARIANTS.values():
        assert len(variants) >= 2 and len(set(variants)) == len(variants)


@pytest.mark.parametrize(
    ("outcome", "reward"),
    [("accepted", 1.0), ("converted", 1.0), ("dismissed", 0.0), ("shown", None),
     ("delivered", None)],
)  # fmt: skip
def test_reward_of(outcome: str, reward: float | None) -> None:
    assert reward_of(outcome) == reward


def test_every_contract_outcome_has_a_rule() -> None:
    assert {outcome for outcome in OUTCOMES if reward_of(outcome) is not None} == {
        "accepted", "converted", "dismissed"
    }  # fmt: skip


OFFER = {"customer_id": "c1", "kind": "offer", "reason": HESITATION, "variant": "discount"}


@pytest.mark.parametrize(
    ("indexed", "outcome", "lesson"),
    [
        (OFFER, "accepted", (HESITATION, "discount", 1.0)),
        (OFFER, "converted", (HESITATION, "discount", 1.0)),
        (OFFER, "dismissed", (HESITATION, "discount", 0.0)),
        (OFFER, "shown", None),
        (OFFER, "delivered", None),
        ({**OFFER, "variant": None}, "accepted", None),
        ({k: v for k, v in OFFER.items() if k != "variant"}, "accepted", None),
        ({**OFFER, "variant": "a_variant_since_removed"}, "accepted", None),
        ({**OFFER, "kind": "assist"}, "accepted", None),
        ({**OFFER, "reason": "rage_click"}, "accepted", None),
        ({**OFFER, "variant": 3}, "accepted", None),
    ],
)
def test_variant_lesson(
    indexed: dict[str, Any], outcome: str, lesson: tuple[str, str, float] | None
) -> None:
    assert variant_lesson(indexed, outcome) == lesson


def test_the_bandit_picks_only_among_the_variants_it_is_given() -> None:
    bandit = VariantBandit()
    assert {bandit.pick(HESITATION, ("discount", "free_shipping")) for _ in range(100)} == {
        "discount", "free_shipping"
    }  # fmt: skip
    assert bandit.pick(HESITATION, ("discount",)) == "discount"
    assert bandit.arms[HESITATION]["discount"].pulls > 1


def test_the_bandit_refuses_what_it_cannot_learn_from() -> None:
    bandit = VariantBandit()
    with pytest.raises(ValueError, match="no variants"):
        bandit.pick(HESITATION, ())
    with pytest.raises(ValueError, match="Bernoulli"):
        bandit.learn(HESITATION, "discount", 0.5)
    assert bandit.arms == {}


def test_each_reason_has_its_own_policy_and_draws() -> None:
    # A pick for one reason does not move another reason's draws.
    alone, beside = VariantBandit(seed=3), VariantBandit(seed=3)
    picks = []
    for _ in range(50):
        beside.pick("another_reason", ("a", "b"))
        picks.append((alone.pick(HESITATION, OFFER_VARIANTS),
                      beside.pick(HESITATION, OFFER_VARIANTS)))  # fmt: skip
    assert all(a == b for a, b in picks)


def test_the_bandit_pickles_and_goes_on_exactly() -> None:
    bandit = VariantBandit(seed=5)
    for n in range(60):
        bandit.learn(HESITATION, bandit.pick(HESITATION, OFFER_VARIANTS), float(n % 3 == 0))
    copy = pickle.loads(pickle.dumps(bandit, protocol=5))
    assert pickle.dumps(copy, protocol=5) == pickle.dumps(bandit, protocol=5)
    assert [copy.pick(HESITATION, OFFER_VARIANTS) for _ in range(30)] == [
        bandit.pick(HESITATION, OFFER_VARIANTS) for _ in range(30)
    ]


def test_the_readme_tells_chatbots_what_each_variant_means() -> None:
    text = README.read_text()
    for reason, variants in VARIANTS.items():
        for variant in variants:
            assert re.search(rf"^\| `{reason}` \| `{variant}` \| .+ \|$", text, re.M), variant
