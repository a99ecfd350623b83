"""Abandonment risk: learns a clear pattern, learns delayed labels from scoring-time features
(every snapshot scored, each validated with the score it was given before it is learned),
and keeps a bounded memory of sessions waiting for their label."""

from __future__ import annotations

import math
import random

import pytest

from app.detect.models.abandonment import AbandonmentFeatures, AbandonmentModel
from app.detect.models.features import abandonment_features
from app.detect.models.validation import ProgressiveValidation
from app.ingest.events import ClickEvent
from tables.customer_state import SessionState
from tests.factories import T0_MS, click, fold


def synthetic_session(rng: random.Random) -> tuple[AbandonmentFeatures, bool]:
    """A checkout session, abandoned more often the more payments failed and the longer it
    dragged on: a clear pattern, with noise."""
    x = AbandonmentFeatures(
        cart_value=rng.expovariate(1 / 80),
        step_index=float(rng.randint(0, 4)),
        failed_payments=float(min(3, int(rng.expovariate(1.5)))),
        checkout_s=rng.expovariate(1 / 180),
        events=float(rng.randint(5, 60)),
        step_regressions=float(rng.randint(0, 2)),
        back_navigations=float(rng.randint(0, 3)),
        errors=float(rng.randint(0, 2)),
        cart_items=float(rng.randint(1, 4)),
        cart_changes=float(rng.randint(1, 6)),
        session_s=rng.expovariate(1 / 600),
    )
    logit = -2.0 + 1.5 * x.failed_payments + 0.01 * x.checkout_s + 0.6 * x.step_regressions
    return x, rng.random() < 1 / (1 + math.exp(-logit))


def sessions(n: int, seed: int) -> list[tuple[AbandonmentFeatures, bool]]:
    rng = random.Random(seed)
    return [synthetic_session(rng) for _ in range(n)]


def auc(scores: list[float], labels: list[bool]) -> float:
    """Exact ROC AUC: the chance a random abandoned session outscores a random purchase."""
    positives = [s for s, y in zip(scores, labels, strict=True) if y]
    negatives = [s for s, y in zip(scores, labels, strict=True) if not y]
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def taught(data: list[tuple[AbandonmentFeatures, bool]]) -> AbandonmentModel:
    """A model that scored each session on its way through the checkout, then got its label."""
    model = AbandonmentModel()
    for i, (x, abandoned) in enumerate(data):
        model.score_session(f"c{i}/s1", x)
        assert model.label_session(f"c{i}/s1", abandoned)
    return model


def test_a_clear_pattern_beats_chance_progressively_and_on_held_out_sessions() -> None:
    model = taught(sessions(3_000, seed=1))
    assert model.validation.labels == 3_000
    assert model.validation.auc > 0.7
    assert model.validation.log_loss < math.log(2)  # better than always saying 0.5
    held_out = sessions(1_000, seed=2)
    scores = [model.score_one(x) for x, _ in held_out]
    assert auc(scores, [y for _, y in held_out]) > 0.7


def test_cold_model_has_no_opinion() -> None:
    x, _ = sessions(1, seed=3)[0]
    assert AbandonmentModel().score_one(x) == 0.5


def checkout(i: int, ts_ms: int) -> list[ClickEvent]:
    """Session ``i`` reaches the payment step; carts and pace differ from one to the next."""
    session_id = f"s{i}"
    return [
        click(type="add_to_cart", session_id=session_id, product_id="p1",
              value=20.0 + 7 * i, ts_ms=ts_ms),
        click(type="checkout_step", session_id=session_id, step="cart", ts_ms=ts_ms + 5_000),
        click(type="checkout_step", session_id=session_id, step="payment",
              ts_ms=ts_ms + 20_000 + 1_000 * i),
    ]  # fmt: skip


def trouble_after(i: int, ts_ms: int) -> list[ClickEvent]:
    """What happens to session ``i`` after its score: declines, going back, an error."""
    session_id = f"s{i}"
    declines = [
        click(type="payment_failed", session_id=session_id, error="declined", ts_ms=ts_ms + k)
        for k in range(1, 2 + i % 3)
    ]
    return [
        *declines,
        click(type="back", session_id=session_id, ts_ms=ts_ms + 10),
        click(type="error", session_id=session_id, error="500", ts_ms=ts_ms + 11),
    ]


def live_session(events: list[ClickEvent]) -> SessionState:
    session = fold(events).session
    assert session is not None
    return session


def test_delayed_labels_teach_the_features_seen_when_scoring() -> None:
    """The session goes on after its scores; its label must not teach what it became."""
    delayed, at_scoring, at_label = AbandonmentModel(), AbandonmentModel(), AbandonmentModel()
    for i in range(40):
        key, ts = f"c{i}/s{i}", T0_MS + 1_000_000 * i
        events = checkout(i, ts)
        scored = [
            abandonment_features(live_session(events[: n + 1]), event.ts_ms)
            for n, event in enumerate(events)
            if event.type == "checkout_step"
        ]
        for x in scored:  # at the cart step, then at the payment step
            delayed.score_session(key, x)
        scored_at = events[-1].ts_ms
        events += trouble_after(i, scored_at)
        later = abandonment_features(live_session(events), scored_at + 11)
        assert later not in scored  # the session did change after its scores
        abandoned = i % 3 != 0
        assert delayed.label_session(key, abandoned) == len(scored) == 2
        for x in scored:
            at_scoring.learn_one(x, abandoned)
            at_label.learn_one(later, abandoned)
    probes = [x for x, _ in sessions(50, seed=4)]
    assert [delayed.score_one(x) for x in probes] == [at_scoring.score_one(x) for x in probes]
    assert [delayed.score_one(x) for x in probes] != [at_label.score_one(x) for x in probes]


def test_every_snapshot_is_learned_with_the_sessions_label_in_scoring_order() -> None:
    xs = [x for x, _ in sessions(3, seed=5)]
    model, reference = AbandonmentModel(), AbandonmentModel()
    for x in xs:
        model.score_session("c1/s1", x)
    assert model.label_session("c1/s1", abandoned=True) == 3
    for x in xs:
        reference.learn_one(x, True)
    probes = [x for x, _ in sessions(20, seed=50)]
    assert [model.score_one(x) for x in probes] == [reference.score_one(x) for x in probes]


def test_validation_meets_each_score_as_it_was_given_before_any_of_it_is_learned() -> None:
    """Prequential with a delay: a session's scores are validated as they were given, not
    as the model answers once it learned other sessions or the session's earlier snapshots."""
    data = sessions(200, seed=51)
    model, reference = AbandonmentModel(), ProgressiveValidation()
    given: dict[str, list[float]] = {}
    for i, (x, _) in enumerate(data):  # every session scored twice, labelled two sessions on
        key = f"c{i}/s1"
        later = x._replace(events=x.events + 3)
        given[key] = [model.score_session(key, x), model.score_session(key, later)]
        if i >= 2:
            done, (_, abandoned) = f"c{i - 2}/s1", data[i - 2]
            assert model.label_session(done, abandoned) == 2
            for score in given[done]:
                reference.update(abandoned, score)
    assert given["c0/s1"] == [0.5, 0.5]  # cold: no opinion, and validated as such
    assert model.validation.labels == reference.labels == 2 * 198
    assert (model.validation.auc, model.validation.log_loss) == (reference.auc, reference.log_loss)
    assert model.validation.drifts == reference.drifts


def test_a_session_keeps_its_newest_snapshots_up_to_snapshots_max() -> None:
    xs = [x for x, _ in sessions(5, seed=52)]
    model, reference = AbandonmentModel(snapshots_max=3), AbandonmentModel()
    for x in xs:
        model.score_session("c1/s1", x)
    assert (model.pending, model.evicted) == (1, 0)
    assert model.label_session("c1/s1", abandoned=False) == 3
    assert model.validation.labels == 3
    for x in xs[2:]:
        reference.learn_one(x, False)
    probes = [x for x, _ in sessions(20, seed=53)]
    assert [model.score_one(x) for x in probes] == [reference.score_one(x) for x in probes]


def test_a_label_is_learned_once_and_only_for_a_scored_session() -> None:
    x, _ = sessions(1, seed=6)[0]
    model = AbandonmentModel()
    assert not model.label_session("c9/s9", abandoned=True)  # never scored
    model.score_session("c1/s1", x)
    assert model.label_session("c1/s1", abandoned=False)
    assert not model.label_session("c1/s1", abandoned=False)
    assert model.validation.labels == 1
    assert model.pending == 0


def test_pending_sessions_are_bounded_and_the_least_recently_scored_goes() -> None:
    model = AbandonmentModel(pending_max=3)
    data = [x for x, _ in sessions(5, seed=7)]
    for key, x in zip(["a", "b", "c"], data, strict=False):
        model.score_session(key, x)
    model.score_session("a", data[0])  # scored again: now the most recent
    model.score_session("d", data[3])
    model.score_session("e", data[4])
    assert model.pending == 3
    assert model.evicted == 2
    assert not model.label_session("b", abandoned=True)
    assert not model.label_session("c", abandoned=True)
    assert all(model.label_session(key, abandoned=True) for key in ("a", "d", "e"))


def test_a_reversed_pattern_is_seen_as_drift() -> None:
    data = sessions(3_000, seed=8)
    flipped = [(x, not y) for x, y in sessions(3_000, seed=9)]
    model = taught(data)
    before = model.validation.drifts
    for i, (x, abandoned) in enumerate(flipped):
        model.score_session(f"f{i}", x)
        model.label_session(f"f{i}", abandoned)
    assert model.validation.drifts > before


@pytest.mark.parametrize("bound", ["pending_max", "snapshots_max"])
def test_bounds_are_checked_at_construction(bound: str) -> None:
    with pytest.raises(ValueError, match=bound):
        AbandonmentModel(**{bound: 0})
