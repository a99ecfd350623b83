"""Abandonment risk: will a session with a cart end without a purchase?

An online logistic regression, scored on cart and checkout events and taught when the
session's outcome is known: a purchase (0), or an end with a cart and no purchase
(1). The label comes minutes after the scores, so the model keeps each session's
scored snapshots (the features it was shown and the score it gave) until then. At
the label, as River's delayed progressive validation does
(``evaluate.progressive_val_score`` with ``delay``), every score the session was
given is first met with the label in ``validation``, then every snapshot is learned
with it. Only features from scoring time are learned, never what the session became
(which would leak the outcome).

Why every snapshot, not only the last: the model is asked at every cart and checkout event,
so it must learn from every one. Learning only the last one taught early-checkout
snapshots only from abandoned sessions (a buyer's last score comes late, at the
payment), and the model then called every session at risk at its first checkout
step (issue 9, ``app/tools/abandonment_comparison.py``).

Why unweighted: each snapshot is learned with weight 1, so the model estimates the
chance of abandonment of a session *as it looks at a score*, which is the question
each score answers. Weighting a session's snapshots by 1 / (their count), so that
each session weighs one (River 0.26's ``learn_one(x, y, w)`` would allow it), would
use a count known only at the label and tied to it (buyers go through every step and
are scored 5-7 times, most abandoned sessions 1-3 times): it tilts the probabilities
towards abandonment. On the tuning streams it moved the best threshold from 0.35 to
0.54 for the same F1 (0.518), and the risk is shown as a probability on
interventions. No one session dominates anyway: at most ``snapshots_max`` of its
snapshots are kept (the newest; 94 % of the simulated cart sessions have at most 8
scores, and keeping 12, or the first and the newest 7, changed nothing measurable on
tuning).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

from river import linear_model, preprocessing

from app.detect.models.validation import ProgressiveValidation

__all__ = ["TRIGGERS", "AbandonmentFeatures", "AbandonmentModel"]

#: Event types worth a score, in a session with a cart: where the cart changes, and where
#: the checkout moves or fails (a shop that sends no checkout steps still has carts to
#: learn from). Anything else leaves the risk where it was, and a score costs ~15 µs.
TRIGGERS: frozenset[str] = frozenset(
    {"add_to_cart", "remove_from_cart", "checkout_step", "payment_attempt", "payment_failed"}
)


class AbandonmentFeatures(NamedTuple):
    """What the abandonment model sees of a session with a cart, at the moment it scores.

    A tuple, not a dict: it is kept per pending session (compact) and cannot be
    changed after it was scored.
    """

    cart_value: float
    # Rank of the current checkout step (0 = cart, up to 4 = review); -1 outside the checkout.
    step_index: float
    failed_payments: float
    checkout_s: float
    events: float
    step_regressions: float
    back_navigations: float
    errors: float
    # Items in the cart, changes to it, and seconds since the session began: what a
    # session shows before any checkout step (or in a shop that sends none).
    cart_items: float
    cart_changes: float
    session_s: float


# What the model was shown of a session at one score (the features' values, as a plain
# tuple: a checkpoint pickles it in a quarter of a NamedTuple's time, and the pending
# sessions are most of a checkpoint), and the score it gave.
_Snapshot = tuple[tuple[float, ...], float]


class AbandonmentModel:
    """``StandardScaler | LogisticRegression`` with delayed labels and progressive validation.

    Parameters
    ----------
    pending_max
        Sessions scored and not yet labelled that are remembered; beyond it the
        session scored least recently is forgotten (and never learned).
    snapshots_max
        Scored snapshots kept per session; beyond it the oldest one is dropped.

    Examples
    --------
    >>> m = AbandonmentModel()
    >>> early = AbandonmentFeatures(80.0, 0, 0, 0.0, 12, 0, 0, 0, 2, 2, 120.0)
    >>> late = AbandonmentFeatures(80.0, 3, 2, 240.0, 30, 1, 0, 1, 2, 2, 600.0)
    >>> m.score_session("c1/s1", early), m.score_session("c1/s1", late)  # cold: no opinion
    (0.5, 0.5)
    >>> m.label_session("c1/s1", abandoned=True), m.pending, m.validation.labels
    (2, 0, 2)
    >>> m.score_one(late) > 0.5
    True
    """

    def __init__(self, pending_max: int = 20_000, snapshots_max: int = 8) -> None:
        if pending_max < 1:
            raise ValueError(f"pending_max must be at least 1, not {pending_max}")
        if snapshots_max < 1:
            raise ValueError(f"snapshots_max must be at least 1, not {snapshots_max}")
        self.pending_max = pending_max
        self.snapshots_max = snapshots_max
        self.evicted = 0
        self.validation = ProgressiveValidation()
        self._model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
        self._pending: OrderedDict[str, list[_Snapshot]] = OrderedDict()

    def score_one(self, x: AbandonmentFeatures) -> float:
        """The probability that the session is abandoned (0.5 before any learning)."""
        return float(self._model.predict_proba_one(x._asdict()).get(True, 0.0))

    def learn_one(self, x: AbandonmentFeatures, abandoned: bool) -> None:
        """Learn one outcome of a session that looked like ``x``."""
        self._model.learn_one(x._asdict(), abandoned)

    def score_session(self, session_key: str, x: AbandonmentFeatures) -> float:
        """Score ``x`` and keep it, with the score, as a snapshot of the session for its label."""
        score = self.score_one(x)
        pending = self._pending
        snapshots = pending.get(session_key)
        if snapshots is None:
            snapshots = pending[session_key] = []
            if len(pending) > self.pending_max:
                pending.popitem(last=False)
                self.evicted += 1
        else:
            pending.move_to_end(session_key)
            if len(snapshots) >= self.snapshots_max:
                del snapshots[0]
        snapshots.append((tuple(x), score))
        return score

    def label_session(self, session_key: str, abandoned: bool) -> int:
        """Meet each of the session's scores with its outcome, then learn each snapshot.

        Returns the snapshots learned: 0 when the session was never scored, or was
        forgotten.
        """
        snapshots = self._pending.pop(session_key, None)
        if snapshots is None:
            return 0
        for _x, score in snapshots:
            self.validation.update(abandoned, score)
        for values, _score in snapshots:
            self.learn_one(AbandonmentFeatures._make(values), abandoned)
        return len(snapshots)

    def forget(self, session_key: str) -> None:
        """Drop a scored session that will get no label (it ended without a cart)."""
        self._pending.pop(session_key, None)

    @property
    def pending(self) -> int:
        """Sessions scored and waiting for their label."""
        return len(self._pending)
