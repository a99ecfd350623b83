"""The JSON document of ``GET /v1/customers/{id}`` (contract §4)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from app.feedback import LatestOutcome
from tables.customer_state import CustomerState, SessionState

__all__ = ["customer_document"]


def customer_document(
    state: CustomerState,
    model_scores: dict[str, float] | None = None,
    outcomes: Mapping[str, LatestOutcome] | None = None,
) -> dict[str, Any]:
    """A customer's live state as the API shows it.

    ``session`` is the most recently active live session (contract §4);
    ``sessions`` lists every live one (tabs, devices), most recent last.
    ``scores`` holds the latest score of each signal, and the ``model_scores``
    given (churn risk, session anomaly, abandonment risk). An intervention found
    in ``outcomes`` (intervention id → latest feedback) carries its ``outcome``
    and ``outcome_ts``.

    Examples
    --------
    >>> from tables.customer_state import CustomerProfile
    >>> doc = customer_document(CustomerState("c1", CustomerProfile(1, 2)))
    >>> sorted(doc)  # doctest: +NORMALIZE_WHITESPACE
    ['customer_id', 'interventions', 'profile', 'scores', 'segment', 'session', 'sessions',
     'signals']
    """
    sessions = [_session_document(session) for session in state.sessions]
    return {
        "customer_id": state.customer_id,
        "session": sessions[-1] if sessions else None,
        "sessions": sessions,
        "profile": _profile_document(state),
        "segment": state.segment,
        "scores": {**state.scores, **(model_scores or {})},
        "signals": [asdict(s) for s in state.signals],
        "interventions": [_with_outcome(i, outcomes) for i in state.interventions],
    }


def _with_outcome(
    intervention: dict[str, Any], outcomes: Mapping[str, LatestOutcome] | None
) -> dict[str, Any]:
    latest = outcomes.get(intervention.get("intervention_id", "")) if outcomes else None
    if latest is None:
        return intervention
    # A new dict: the state's own intervention stays as it was sent.
    return {**intervention, "outcome": latest["outcome"], "outcome_ts": latest["ts"]}


def _profile_document(state: CustomerState) -> dict[str, Any]:
    profile = state.profile
    document = asdict(profile)
    document["average_order_value"] = (
        round(profile.revenue / profile.purchases, 2) if profile.purchases else None
    )
    return document


def _session_document(session: SessionState) -> dict[str, Any]:
    document = asdict(session)
    document["recent"] = [event._asdict() for event in session.recent]
    return document
