"""The JSON document of ``GET /v1/customers/{id}`` (contract §4)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from tables.customer_state import CustomerState

__all__ = ["customer_document"]


def customer_document(state: CustomerState) -> dict[str, Any]:
    """A customer's live state as the API shows it.

    Examples
    --------
    >>> from tables.customer_state import CustomerProfile
    >>> doc = customer_document(CustomerState("c1", CustomerProfile(1, 2)))
    >>> sorted(doc)
    ['customer_id', 'interventions', 'profile', 'scores', 'segment', 'session', 'signals']
    """
    session = None
    if state.session is not None:
        session = asdict(state.session)
        session["recent"] = [event._asdict() for event in state.session.recent]
        session["fired_reasons"] = list(state.session.fired_reasons)
    return {
        "customer_id": state.customer_id,
        "session": session,
        "profile": asdict(state.profile),
        "segment": state.segment,
        "scores": state.scores,
        "signals": [asdict(s) for s in state.signals],
        "interventions": list(state.interventions),
    }
