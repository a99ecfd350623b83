"""Abandonment risk: will a session with a cart end without a purchase?

An online logistic regression, scored on checkout events and taught when the
session's outcome is known: a purchase (0), or an end with a cart and no purchase
(1). The label comes minutes after the scores, so the model keeps, per session,
the features it last scored, and learns those: what the session looked like when
the model had to answer, not what it became (which would leak the outcome).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

from river import linear_model, preprocessing

from app.detect.models.validation import ProgressiveValidation

__all__ = ["TRIGGERS", "AbandonmentFeatures", "AbandonmentModel"]

#: Event types worth a score, in a session with a cart: where the checkout moves or fails.
#: Anything else leaves the risk where it was, and a score costs ~15 µs.
TRIGGERS: frozenset[str] = frozenset({"checkout_step", "payment_attempt", "payment_failed"})


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


class AbandonmentModel:
    """``StandardScaler | LogisticRegression`` with delayed labels and progressive validation.

    Parameters
    ----------
    pending_max
        Sessions scored and not yet labelled that are remembered; beyond it the
        session scored least recently is forgotten (and never learned).

    Examples
    --------
    >>> m = AbandonmentModel()
    >>> x = AbandonmentFeatures(80.0, 3, 2, 240.0, 30, 1, 0, 1)
    >>> m.score_session("c1/s1", x)  # cold: no opinion
    0.5
    >>> m.label_session("c1/s1", abandoned=True), m.pending, m.validation.labels
    (True, 0, 1)
    >>> m.score_one(x) > 0.5
    True
    """

    def __init__(self, pending_max: int = 20_000) -> None:
        if pending_max < 1:
            raise ValueError(f"pending_max must be at least 1, not {pending_max}")
        self.pending_max = pending_max
        self.evicted = 0
        self.validation = ProgressiveValidation()
        self._model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
        self._pending: OrderedDict[str, AbandonmentFeatures] = OrderedDict()

    def score_one(self, x: AbandonmentFeatures) -> float:
        """The probability that the session is abandoned (0.5 before any learning)."""
        return float(self._model.predict_proba_one(x._asdict()).get(True, 0.0))

    def learn_one(self, x: AbandonmentFeatures, abandoned: bool) -> None:
        """Learn one outcome of a session that looked like ``x``."""
        self._model.learn_one(x._asdict(), abandoned)

    def score_session(self, session_key: str, x: AbandonmentFeatures) -> float:
        """Score ``x`` and remember it as the session's features for its label."""
        pending = self._pending
        pending[session_key] = x
        pending.move_to_end(session_key)
        if len(pending) > self.pending_max:
            pending.popitem(last=False)
            self.evicted += 1
        return self.score_one(x)

    def label_session(self, session_key: str, abandoned: bool) -> bool:
        """Learn the session's outcome from the features it was last scored with.

        The stored features are scored first and the prediction is met with the label
        in ``validation``. Returns False (and learns nothing) when the session was
        never scored, or was forgotten.
        """
        x = self._pending.pop(session_key, None)
        if x is None:
            return False
        self.validation.update(abandoned, self.score_one(x))
        self.learn_one(x, abandoned)
        return True

    def forget(self, session_key: str) -> None:
        """Drop a scored session that will get no label (it ended without a cart)."""
        self._pending.pop(session_key, None)

    @property
    def pending(self) -> int:
        """Sessions scored and waiting for their label."""
        return len(self._pending)
