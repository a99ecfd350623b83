"""Response variants: where a reason can be answered several ways, which way, learned from feedback.

A price-hesitation offer can be a discount, help comparing prices, or a note on free
shipping; which works best differs from shop to shop and changes over time. A bandit per
``clicks`` partition (``VariantBandit``, kept with the partition's models) picks one for
each such intervention, as ``context.variant``, and learns from what chatbots report of
it (``variant_lesson``): an accepted or converted offer rewards its variant, a dismissed
one does not.

Pure: no Faust, no Redis, no clock.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "VARIANTS",
    "VARIANT_KIND",
    "ArmStats",
    "VariantBandit",
    "reward_of",
    "variant_lesson",
    "variants_for",
]

#: Reason → the variants a chatbot may answer it with (``context.variant``; the README says
#: what each one means).
VARIANTS: dict[str, tuple[str, ...]] = {
    "product_hesitation": ("discount", "price_comparison", "free_shipping"),
}
#: Variants are ways to make an offer. An assist answers a difficulty, which has one right
#: answer: a long read of a product page (an assist) asks for information, not a price.
VARIANT_KIND = "offer"
# The outcomes that judge the choice. ``delivered`` and ``shown`` say nothing of it.
_REWARDS = {"accepted": 1.0, "converted": 1.0, "dismissed": 0.0}


def variants_for(kind: str, reason: str) -> tuple[str, ...]:
    """The variants an intervention of ``kind`` and ``reason`` is given one of (none: empty).

    Examples
    --------
    >>> variants_for("offer", "product_hesitation")
    ('discount', 'price_comparison', 'free_shipping')
    >>> variants_for("assist", "product_hesitation"), variants_for("offer", "micro_action")
    ((), ())
    """
    return VARIANTS.get(reason, ()) if kind == VARIANT_KIND else ()


def reward_of(outcome: str) -> float | None:
    """The bandit's reward for a feedback ``outcome``; None for one that is no verdict.

    Examples
    --------
    >>> [reward_of(o) for o in ("accepted", "converted", "dismissed", "shown", "delivered")]
    [1.0, 1.0, 0.0, None, None]
    """
    return _REWARDS.get(outcome)


def variant_lesson(indexed: Mapping[str, Any], outcome: str) -> tuple[str, str, float] | None:
    """What feedback teaches the bandit: (reason, variant, reward), or None when nothing.

    ``indexed`` is what delivery kept of the intervention (its ``kind``, ``reason`` and,
    when one was picked, ``variant``). Nothing is taught by an outcome that is no verdict,
    by an intervention with no variant, or by a variant its reason no longer has.

    Examples
    --------
    >>> offer = {"kind": "offer", "reason": "product_hesitation", "variant": "discount"}
    >>> variant_lesson(offer, "converted")
    ('product_hesitation', 'discount', 1.0)
    >>> variant_lesson(offer, "shown") is None
    True
    >>> variant_lesson({"kind": "assist", "reason": "rage_click"}, "accepted") is None
    True
    """
    reward = reward_of(outcome)
    variant = indexed.get("variant")
    if reward is None or not isinstance(variant, str):
        return None
    reason = str(indexed.get("reason"))
    if variant not in variants_for(str(indexed.get("kind")), reason):
        return None
    return reason, variant, reward


@dataclass(slots=True)
class ArmStats:
    """One variant of a reason: times picked, rewards learned, and how many were 1."""

    pulls: int = 0
    learned: int = 0
    rewarded: int = 0


class VariantBandit:
    """Thompson sampling over each reason's variants, with a Beta posterior per variant.

    The rewards are Bernoulli (an offer accepted or not), which is what a Beta prior is
    conjugate to; and a pull samples each posterior, so while feedback is scarce (a pull
    per offer, a reward only for some) the choices stay spread rather than stuck on the
    first arm that ever paid, as a deterministic UCB would be between two rewards. Each
    variant's posterior is Beta(1 + rewards of 1, 1 + rewards of 0), from its counts in
    ``arms``; a pull draws from them with a generator seeded from ``seed``, the reason
    and the reason's number of pulls so far. So the counts are the bandit's whole state
    (a partition's models are checkpointed at every commit: a random generator's state
    would be 2.5 KB of each), and the same pulls and rewards in the same order give the
    same choices, restored or not.

    Parameters
    ----------
    seed
        Seed of the pulls' random draws.

    Examples
    --------
    >>> bandit = VariantBandit(seed=1)
    >>> variants = ("discount", "price_comparison", "free_shipping")
    >>> bandit.pick("product_hesitation", variants) in variants
    True
    >>> bandit.learn("product_hesitation", "discount", 1.0)
    >>> bandit.arms["product_hesitation"]["discount"]
    ArmStats(pulls=..., learned=1, rewarded=1)
    """

    def __init__(self, seed: int = 42) -> None:
        self.seed = seed
        # Reason → variant → what it was given.
        self.arms: dict[str, dict[str, ArmStats]] = {}

    def pick(self, reason: str, variants: Sequence[str]) -> str:
        """The variant to answer ``reason`` with this time, one of ``variants``."""
        if not variants:
            raise ValueError(f"no variants to pick from for {reason!r}")
        arms = self.arms.get(reason, {})
        pulls = sum(arm.pulls for arm in arms.values())
        # crc32, not hash(): str hashes differ between processes.
        draws = random.Random(zlib.crc32(f"{self.seed}/{reason}/{pulls}".encode()))
        unseen = ArmStats()

        def sample(variant: str) -> float:
            arm = arms.get(variant, unseen)
            return draws.betavariate(1 + arm.rewarded, 1 + arm.learned - arm.rewarded)

        variant = max(variants, key=sample)
        self._arm(reason, variant).pulls += 1
        return variant

    def learn(self, reason: str, variant: str, reward: float) -> None:
        """Teach that ``variant`` of ``reason`` earned ``reward`` (1.0 or 0.0)."""
        if reward not in (0.0, 1.0):
            raise ValueError(f"reward must be 0.0 or 1.0 (Bernoulli), got {reward!r}")
        arm = self._arm(reason, variant)
        arm.learned += 1
        arm.rewarded += int(reward)

    def _arm(self, reason: str, variant: str) -> ArmStats:
        arms = self.arms.setdefault(reason, {})
        arm = arms.get(variant)
        if arm is None:
            arm = arms[variant] = ArmStats()
        return arm
