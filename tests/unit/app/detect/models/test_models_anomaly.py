"""Session anomaly: an outlier session scores above usual ones once the model is warm."""

from __future__ import annotations

import math
import pickle
import random
from array import array

import pytest
from river import anomaly, preprocessing

from app.detect.models.anomaly import SessionAnomaly, SessionFeatures


def usual_session(rng: random.Random) -> SessionFeatures:
    """A session as most are: a few events a minute, counts that are mostly 0 or 1 with a
    long tail, and a form in some visits."""
    return SessionFeatures(
        events_per_min=rng.lognormvariate(math.log(4.0), 0.5),
        back_navigations=float(min(6, int(rng.expovariate(1.2)))),
        errors=float(min(5, int(rng.expovariate(2.5)))),
        form_s=rng.lognormvariate(math.log(30.0), 0.8) if rng.random() < 0.4 else 0.0,
        step_regressions=float(min(3, int(rng.expovariate(3.0)))),
        search_reformulations=float(min(6, int(rng.expovariate(1.5)))),
    )


OUTLIERS = [
    pytest.param(SessionFeatures(60.0, 1.0, 0.0, 40.0, 0.0, 1.0), id="frantic-clicking"),
    pytest.param(SessionFeatures(5.0, 14.0, 9.0, 40.0, 0.0, 1.0), id="lost-and-erroring"),
    pytest.param(SessionFeatures(5.0, 1.0, 0.0, 1_200.0, 5.0, 1.0), id="stuck-in-checkout"),
    pytest.param(SessionFeatures(5.0, 1.0, 0.0, 40.0, 0.0, 12.0), id="searching-in-circles"),
]


def warm(seed: int = 42, sessions: int = 600) -> SessionAnomaly:
    """A model (with trees of ``seed``) that learned ``sessions`` usual sessions."""
    model = SessionAnomaly(seed=seed)
    rng = random.Random(11)
    for _ in range(sessions):
        model.learn_one(usual_session(rng))
    return model


def test_scores_are_zero_until_the_first_window_is_learned() -> None:
    rng = random.Random(1)
    model = SessionAnomaly(window_size=50)
    for _ in range(49):
        model.learn_one(usual_session(rng))
        assert model.score_one(usual_session(rng)) == 0.0
    model.learn_one(usual_session(rng))
    assert model.score_one(usual_session(rng)) > 0.0


@pytest.mark.parametrize("outlier", OUTLIERS)
def test_an_outlier_scores_above_usual_sessions(outlier: SessionFeatures) -> None:
    model = warm()
    rng = random.Random(12)
    usual = sorted(model.score_one(usual_session(rng)) for _ in range(200))
    assert model.score_one(outlier) > usual[int(0.9 * len(usual))]


def test_the_seed_fixes_the_scores() -> None:
    rng = random.Random(13)
    probes = [usual_session(rng) for _ in range(50)]
    first, again, other = warm(), warm(), warm(seed=7)
    assert [first.score_one(x) for x in probes] == [again.score_one(x) for x in probes]
    assert [first.score_one(x) for x in probes] != [other.score_one(x) for x in probes]


@pytest.mark.parametrize("kwargs", [{"n_trees": 0}, {"height": 0}, {"window_size": 0}])
def test_bad_arguments_fail_at_construction(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        SessionAnomaly(**kwargs)


def test_trees_planted_up_front_are_the_trees_river_would_grow_on_first_learn() -> None:
    planted = SessionAnomaly(seed=7)
    lazy = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(
        n_trees=10, height=8, window_size=250, seed=7
    )
    sessions = [SessionFeatures(float(i % 7), float(i % 3), 0.0, float(i), 0.0, 1.0)
                for i in range(600)]  # fmt: skip
    for x in sessions:
        planted.learn_one(x)
        lazy.learn_one(x._asdict())
    probe = SessionFeatures(40.0, 9.0, 5.0, 900.0, 4.0, 6.0)
    assert planted.score_one(probe) == float(lazy.score_one(probe._asdict())) > 0


@pytest.mark.parametrize("window_size", [1, 7, 250])
def test_every_score_and_mass_is_river_s_own_step_by_step(window_size: int) -> None:
    """The flat walk against River's pipeline on its node objects: after every session
    learned (across window pivots), the same score for a probe and the same masses."""
    ours = SessionAnomaly(n_trees=5, height=6, window_size=window_size, seed=3)
    river_trees = anomaly.HalfSpaceTrees(n_trees=5, height=6, window_size=window_size, seed=3)
    river = preprocessing.MinMaxScaler() | river_trees
    rng = random.Random(5)
    outlier = OUTLIERS[1].values[0]
    for step in range(600):
        x = usual_session(rng)
        ours.learn_one(x)
        river.learn_one(x._asdict())
        for probe in (x, usual_session(rng), outlier):
            assert ours.score_one(probe) == float(river.score_one(probe._asdict())), step
    river_masses = [(n.l_mass, n.r_mass) for nodes in river_trees._tree_nodes for n in nodes]
    assert masses(ours) == river_masses


def test_a_pickled_model_keeps_only_masses_and_continues_exactly() -> None:
    rng = random.Random(3)

    def session() -> SessionFeatures:
        return SessionFeatures(rng.random() * 10, rng.randint(0, 3), rng.randint(0, 2),
                               rng.random() * 100, 0.0, rng.randint(0, 2))  # fmt: skip

    model = SessionAnomaly()
    for _ in range(400):
        model.learn_one(session())
    data = pickle.dumps(model, protocol=5)
    restored = pickle.loads(data)
    assert masses(restored) == masses(model)
    # Only the nodes with a mass: every node's would be ~40 KB, the node objects ~170 KB.
    nonzero = sum(1 for l_mass, r_mass in masses(model) if l_mass or r_mass)
    assert nonzero < len(masses(model)) / 2
    assert len(data) < 2_000 + 12 * nonzero
    for _ in range(300):  # across a window pivot
        x = session()
        model.learn_one(x)
        restored.learn_one(x)
        assert restored.score_one(x) == model.score_one(x)
    assert masses(restored) == masses(model)
    # Pickled again after learning: what was kept of the trees before is not reused.
    assert masses(pickle.loads(pickle.dumps(model, protocol=5))) == masses(model)


def test_a_cold_model_pickles_to_its_shape_and_scaler() -> None:
    assert len(pickle.dumps(SessionAnomaly(), protocol=5)) < 1_000


def test_a_checkpoint_that_does_not_fit_the_trees_is_refused() -> None:
    state = warm(sessions=50).__getstate__()
    places, l_masses, r_masses = state["masses"]
    state["masses"] = (places, l_masses[:-4], r_masses)
    with pytest.raises(ValueError, match="does not fit"):
        SessionAnomaly().__setstate__(state)
    state["masses"] = (array("I", [5_110]).tobytes(), array("I", [1]).tobytes(),
                       array("I", [0]).tobytes())  # fmt: skip
    with pytest.raises(ValueError, match="does not fit"):
        SessionAnomaly().__setstate__(state)


def masses(model: SessionAnomaly) -> list[tuple[int, int]]:
    """Every node's masses, tree by tree in depth-first order."""
    return model.masses()
