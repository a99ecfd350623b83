"""Checks every model must pass, River-style (``checks/common.py``): it scores before any
learning, scoring changes nothing, the input is not changed, scores stay in range, and a
pickle round trip goes on exactly like the original."""

from __future__ import annotations

import copy
import pickle
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from app.detect.models.abandonment import AbandonmentFeatures, AbandonmentModel
from app.detect.models.anomaly import SessionAnomaly, SessionFeatures
from app.detect.models.baselines import ShopBaselines


@dataclass(frozen=True)
class Contract:
    """How to make a model, an input for it, and how to score and teach it."""

    make: Callable[[], Any]
    sample: Callable[[random.Random], Any]
    score: Callable[[Any, Any], float]
    learn: Callable[[Any, Any], None]
    low: float = 0.0
    high: float = 1.0


def abandonment_x(rng: random.Random) -> AbandonmentFeatures:
    return AbandonmentFeatures(*(rng.uniform(0.0, 100.0) for _ in AbandonmentFeatures._fields))


def session_x(rng: random.Random) -> SessionFeatures:
    return SessionFeatures(*(rng.uniform(0.0, 50.0) for _ in SessionFeatures._fields))


def teach_abandonment(model: AbandonmentModel, x: AbandonmentFeatures) -> None:
    model.learn_one(x, x.failed_payments > 50)


CONTRACTS = {
    "baselines": Contract(
        make=lambda: ShopBaselines(min_count=10),
        sample=lambda rng: rng.uniform(0.0, 200_000.0),
        score=lambda m, value: m.threshold("dwell_product_ms", 120_000.0),
        learn=lambda m, value: m.observe("dwell_product_ms", value),
        low=60_000.0,
        high=480_000.0,
    ),
    "abandonment": Contract(
        make=AbandonmentModel, sample=abandonment_x, score=AbandonmentModel.score_one,
        learn=teach_abandonment,
    ),
    "anomaly": Contract(
        make=lambda: SessionAnomaly(window_size=20), sample=session_x,
        score=SessionAnomaly.score_one, learn=SessionAnomaly.learn_one,
    ),
}  # fmt: skip

contracts = pytest.mark.parametrize("contract", CONTRACTS.values(), ids=CONTRACTS.keys())


def taught(contract: Contract, n: int, seed: int = 0) -> Any:
    model = contract.make()
    rng = random.Random(seed)
    for _ in range(n):
        contract.learn(model, contract.sample(rng))
    return model


@contracts
def test_it_scores_before_any_learning(contract: Contract) -> None:
    score = contract.score(contract.make(), contract.sample(random.Random(1)))
    assert contract.low <= score <= contract.high


@contracts
def test_scores_stay_in_range(contract: Contract) -> None:
    model = taught(contract, 100)
    rng = random.Random(2)
    for _ in range(50):
        assert contract.low <= contract.score(model, contract.sample(rng)) <= contract.high


@contracts
def test_scoring_changes_neither_the_model_nor_the_input(contract: Contract) -> None:
    model = taught(contract, 100)
    x = contract.sample(random.Random(3))
    before, x_before = pickle.dumps(model), copy.deepcopy(x)
    first = contract.score(model, x)
    assert contract.score(model, x) == first
    assert pickle.dumps(model) == before
    assert x == x_before


@contracts
def test_learning_does_not_change_the_input(contract: Contract) -> None:
    model = taught(contract, 10)
    x = contract.sample(random.Random(4))
    x_before = copy.deepcopy(x)
    contract.learn(model, x)
    assert x == x_before


@contracts
def test_a_pickle_round_trip_goes_on_like_the_original(contract: Contract) -> None:
    original = taught(contract, 60)
    restored = pickle.loads(pickle.dumps(original))
    rng = random.Random(5)
    for _ in range(60):
        x = contract.sample(rng)
        assert contract.score(restored, x) == contract.score(original, x)
        contract.learn(original, x)
        contract.learn(restored, x)
