# cython: annotation_typing=True
"""A partition's models at work: what they learn from each event and timer, the thresholds
they adapt, and the evidence they add to an intervention.

The runtime keeps one ``PartitionLearner`` per ``clicks`` partition and calls it in
offset order, after the pipeline has folded an event (or fired a timer) into a
customer's state. Everything the models learn is read from the state before and
after: the pipeline itself stays free of models. Pure apart from the models it
changes, so a replay at any speed learns, and decides, the same.

- **Shop baselines** learn a duration from each event that ends one: the gap since
  the session's previous event, the dwell on a product page when it is left, the
  time between two checkout steps, the time spent on a form when it is submitted.
- **Adapted thresholds:** a long dwell, a slow form and a checkout stall are
  "longer than the shop's p90", with the published rule as the floor (a shop whose
  customers take longer is not nudged for it; one whose customers are quicker is
  not nudged more than the rule would). Refreshed every ``REFRESH_EVERY`` baseline
  values, a count of events, never a time, so a replay sees the same thresholds.
- **Abandonment risk** is scored on cart and checkout events of a session with a cart, and
  learned when the outcome is known: a purchase (0), or the session ending with a
  cart and no purchase (1), from the features it had at each of its scores (every
  score is validated against the outcome first).
- **Session anomaly** learns each session that ends, and scores the session of each
  intervention as evidence.
- **Variants:** an intervention whose reason can be answered several ways
  (``app.decide.variants``) gets the one the partition's bandit picks, as
  ``context.variant``. The bandit learns from feedback (agents/process_feedback.py),
  not here; since feedback comes outside the partition's offset order, a replay may
  pick other variants (with the same intervention ids: a variant is not part of one).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from app.decide.variants import variants_for
from app.detect.models import (
    ABANDONMENT_TRIGGERS,
    EwStats,
    abandonment_features,
    churn_risk,
    session_features,
)
from app.detect.models.partition import PartitionModels
from app.detect.pipeline import Rules
from app.ingest.events import ClickEvent
from tables.customer_state import CustomerProfile, CustomerState, SessionState

__all__ = [
    "ADAPTED_THRESHOLDS",
    "REFRESH_EVERY",
    "PartitionLearner",
    "adapted_rules",
    "customer_scores",
]

#: Threshold of ``SignalThresholds`` → the baseline metric whose p90 can raise it.
ADAPTED_THRESHOLDS: dict[str, str] = {
    "checkout_stall_ms": "checkout_step_ms",
    "product_dwell_ms": "dwell_product_ms",
    "form_slow_ms": "form_ms",
}
#: Baseline values learned between two refreshes of the adapted thresholds.
REFRESH_EVERY = 256
_DAY_MS = 86_400_000


def adapted_rules(models: PartitionModels, base: Rules) -> Rules:
    """``base`` with the thresholds the shop's baselines raise (never lower).

    Examples
    --------
    >>> rules = adapted_rules(PartitionModels(baseline_min_count=3), Rules())
    >>> rules.thresholds.checkout_stall_ms  # cold: the published rule
    60000
    """
    return _with_thresholds(base, _raised_thresholds(models, base))


def _raised_thresholds(models: PartitionModels, base: Rules) -> dict[str, int]:
    t = base.thresholds
    raised: dict[str, int] = {}
    for name, metric in ADAPTED_THRESHOLDS.items():
        default = getattr(t, name)
        threshold = round(models.baseline_threshold(metric, float(default)))
        if threshold > default:
            raised[name] = threshold
    return raised


def _with_thresholds(base: Rules, thresholds: dict[str, int]) -> Rules:
    if not thresholds:
        return base
    changes: dict[str, Any] = dict(thresholds)
    return replace(base, thresholds=replace(base.thresholds, **changes))


class PartitionLearner:
    """The models of one ``clicks`` partition, and the rules they adapt.

    ``scores`` collects (model, score) pairs as they are given, for the runtime's
    metrics to drain; ``learned_before`` and ``drifts_before`` are the counts the
    models came with (restored from a checkpoint), which this process did not learn.
    """

    def __init__(self, models: PartitionModels, base: Rules) -> None:
        self.models = models
        self.base = base
        # As the models were last refreshed (restored with them after a restart).
        self.rules = _with_thresholds(base, models.adapted_thresholds)
        if not models.refresh_at:
            models.refresh_at = REFRESH_EVERY
        self.scores: list[tuple[str, float]] = []
        self.learned_before = dict(models.learned)
        self.drifts_before = models.drifts("abandonment")

    def learn_event(
        self,
        customer_id: str,
        before: CustomerState | None,
        after: CustomerState | None,
        event: ClickEvent,
        late: bool,
    ) -> None:
        """Learn from one folded event: its durations, its checkout risk, its outcomes."""
        models = self.models
        current = _session(after, event.session_id)
        if not late and current is not None:
            self._observe(_session(before, event.session_id), current, event)
            if event.type in ABANDONMENT_TRIGGERS and current.has_cart:
                features = abandonment_features(current, event.ts_ms)
                key = _key(customer_id, event.session_id)
                self.scores.append(("abandonment", models.score_abandonment(key, features)))
            elif event.type == "purchase":
                models.label_session(_key(customer_id, event.session_id), abandoned=False)
        self.learn_ended(customer_id, before, after)

    def learn_ended(
        self, customer_id: str, before: CustomerState | None, after: CustomerState | None
    ) -> None:
        """Learn from the sessions that ended between ``before`` and ``after`` (a
        ``session_end``, a timeout, a new session past the live bound, an expiry); each
        as it last was before it ended."""
        if before is None:
            return
        if after is not None:
            self._rhythm(before.profile, after.profile)
        for session in before.sessions:  # one to a few: no dict of them for every event
            still = _session(after, session.session_id)
            if still is not None and still.started_ts_ms <= session.last_ts_ms:
                continue  # the same visit, still going
            self._session_ended(customer_id, session)

    def annotate(
        self,
        interventions: list[dict[str, Any]],
        state: CustomerState | None,
        before: CustomerState | None = None,
    ) -> None:
        """Add the models' evidence to interventions just built: how unusual the session
        is, and its abandonment risk while it has a cart; and to one whose reason has
        variants, the variant to answer with. A session the same event or timer ended
        is read as it was ``before``."""
        if not interventions:
            return
        models = self.models
        for intervention in interventions:
            reason = intervention["reason"]
            variants = variants_for(intervention["kind"], reason)
            if variants:
                intervention["context"]["variant"] = models.pick_variant(reason, variants)
            session_id = intervention["session_id"]
            session = _session(state, session_id) or _session(before, session_id)
            if session is None:
                continue
            signals = intervention["signals"]
            anomaly = models.score_anomaly(session_features(session))
            self.scores.append(("anomaly", anomaly))
            signals["session_anomaly"] = round(anomaly, 3)
            if session.has_cart and not session.purchased:
                features = abandonment_features(session, intervention["event_ts"])
                signals["abandonment_risk"] = round(models.abandonment.score_one(features), 3)

    def _observe(
        self, previous: SessionState | None, current: SessionState, event: ClickEvent
    ) -> None:
        ts = event.ts_ms
        if previous is None or ts <= previous.last_ts_ms:
            return  # a session's first event, or one out of order: nothing ended with it
        if current.started_ts_ms > previous.last_ts_ms:
            return  # the same id back after its visit timed out: a new visit
        models = self.models
        models.observe_baseline("event_gap_ms", float(ts - previous.last_ts_ms))
        opened = previous.product_view_ts_ms
        if opened and ts > opened and current.product_view_ts_ms != opened:
            models.observe_baseline("dwell_product_ms", float(ts - opened))
        if event.type == "checkout_step" and previous.steps:
            models.observe_baseline("checkout_step_ms", float(ts - previous.steps[-1][0]))
        if event.type == "form_submit":
            spans = current.form_spans
            if spans:
                _form, first, last = spans[-1]
                models.observe_baseline("form_ms", float(last - first))
        if models.learned["baselines"] >= models.refresh_at:
            # Every REFRESH_EVERY baseline values: a count in the partition's stream.
            models.refresh_at += REFRESH_EVERY
            models.adapted_thresholds = _raised_thresholds(models, self.base)
            self.rules = _with_thresholds(self.base, models.adapted_thresholds)

    def _rhythm(self, before: CustomerProfile, after: CustomerProfile) -> None:
        """Score a returning visit's gap against the customer's usual one (``churn_risk``),
        and count what the customer's rhythm (kept in their state) learned: the gap since
        the last visit began, and the pace of a visit that ended. A pace that leaves the
        statistics exactly as they were taught nothing and is not counted."""
        if after.visits < before.visits:
            return  # started afresh past the TTL: nothing learned
        models = self.models
        if before.last_visit_ts_ms and after.last_visit_ts_ms > before.last_visit_ts_ms:
            gap = _visit_gap(before, after.last_visit_ts_ms)
            if gap is not None:
                self.scores.append(("rhythm", models.churn_risk(*gap)))
            models.learn_rhythm()
        if (
            after.pace_mean_ms != before.pace_mean_ms
            or after.pace_var_ms2 != before.pace_var_ms2
            or after.last_pace_ratio != before.last_pace_ratio
        ):
            models.learn_rhythm()  # a visit's pace was folded in

    def _session_ended(self, customer_id: str, session: SessionState) -> None:
        models = self.models
        key = _key(customer_id, session.session_id)
        if session.purchased:
            models.forget_session(key)  # learned at the purchase
        elif session.has_cart:
            models.label_session(key, abandoned=True)
        else:
            models.forget_session(key)
        models.learn_anomaly(session_features(session))


def customer_scores(models: PartitionModels, state: CustomerState, now_ms: int) -> dict[str, float]:
    """What the models say of a customer now, for the customer view (nothing is learned).

    ``churn_risk`` from the customer's own rhythm (the gap since the last visit
    began, against the weighted mean and variance of the gaps before); for the most
    recent live session, ``session_anomaly`` and, while it holds a cart,
    ``abandonment_risk``.

    Examples
    --------
    >>> from tables.customer_state import CustomerProfile
    >>> day = 86_400_000
    >>> profile = CustomerProfile(0, 0, visits=5, last_visit_ts_ms=10 * day,
    ...                           gap_mean_ms=2.0 * day, gap_var_ms2=(0.5 * day) ** 2)
    >>> customer_scores(PartitionModels(), CustomerState("c1", profile), 20 * day)
    {'churn_risk': 0.889}
    """
    profile = state.profile
    scores: dict[str, float] = {}
    gap = _visit_gap(profile, now_ms)
    if gap is not None:
        scores["churn_risk"] = round(churn_risk(*gap), 3)
    if state.sessions:
        session = state.sessions[-1]
        scores["session_anomaly"] = round(models.anomaly.score_one(session_features(session)), 3)
        if session.has_cart and not session.purchased:
            features = abandonment_features(session, max(now_ms, session.last_ts_ms))
            scores["abandonment_risk"] = round(models.abandonment.score_one(features), 3)
    return scores


def _key(customer_id: str, session_id: str) -> str:
    return f"{customer_id}/{session_id}"


def _session(state: CustomerState | None, session_id: str) -> SessionState | None:
    if state is None:
        return None
    for session in state.sessions:
        if session.session_id == session_id:
            return session
    return None


def _visit_gap(profile: CustomerProfile, at_ms: int) -> tuple[EwStats, float] | None:
    """The customer's usual gap between visits (in days) and the gap from the last visit's
    start to ``at_ms``, for ``churn_risk``; None before two visits, or at the last one."""
    if profile.visits < 2 or profile.gap_mean_ms <= 0 or at_ms <= profile.last_visit_ts_ms:
        return None
    usual = EwStats(profile.gap_mean_ms / _DAY_MS, profile.gap_var_ms2 / _DAY_MS**2,
                    profile.visits - 1)  # fmt: skip
    return usual, (at_ms - profile.last_visit_ts_ms) / _DAY_MS
