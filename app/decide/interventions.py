# cython: annotation_typing=True
"""Turning a decision into the intervention object of contract §2."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from app.detect.signals import Signal
from tables.customer_state import CustomerState, SessionState

__all__ = ["Trigger", "build_intervention", "intervention_id"]


def intervention_id(customer_id: str, reason: str, event_id: str) -> str:
    """A deterministic id for the intervention a trigger causes.

    A redelivered event (at-least-once processing) yields the same id, so
    consumers can drop the repeat.

    Examples
    --------
    >>> intervention_id("c1", "rage_click", "e7") == intervention_id("c1", "rage_click", "e7")
    True
    >>> len(intervention_id("c1", "rage_click", "e7"))
    32
    """
    key = orjson.dumps([customer_id, reason, event_id])  # unambiguous, unlike a separator
    return hashlib.blake2b(key, digest_size=16).hexdigest()


@dataclass(slots=True, frozen=True)
class Trigger:
    """What set an intervention off: an event, or a silence after one (a timer).

    For a silence rule the event is the last one before the silence, and
    ``fired_ts_ms`` the event time at which the rule held.
    """

    event_id: str
    event_ts_ms: int
    event_type: str
    fired_ts_ms: int | None = None


def build_intervention(
    state: CustomerState,
    session: SessionState,
    main: Signal,
    others: list[Signal],
    trigger: Trigger,
    emitted_ts_ms: int,
) -> dict[str, Any]:
    """The intervention for ``main`` (with ``others`` as further evidence).

    Examples
    --------
    >>> from tables.customer_state import CustomerProfile
    >>> state = CustomerState("c1", CustomerProfile(0, 0))
    >>> session = SessionState("s1", 0, 1000, step="payment", cart_value=20.0)
    >>> i = build_intervention(state, session, Signal("payment_failure", "assist", 0.9), [],
    ...                        Trigger("e1", 1000, "payment_failed"), 1005)
    >>> (i["kind"], i["context"]["step"], i["emitted_ts"] - i["event_ts"])
    ('assist', 'payment', 5)
    """
    signals: dict[str, float] = {main.reason: round(main.score, 4), **main.evidence}
    for other in others:
        signals[other.reason] = round(other.score, 4)
    context: dict[str, Any] = {
        "page": session.page,
        "product_id": session.product_id,
        "step": session.step,
        "event_type": trigger.event_type,
        "segment": state.segment,
        "cart_value": session.cart_value,
        "cart_items": session.cart_items,
        "session_events": session.event_count,
        "subject": main.subject,
    }
    intervention: dict[str, Any] = {
        "intervention_id": intervention_id(state.customer_id, main.reason, trigger.event_id),
        "customer_id": state.customer_id,
        "session_id": session.session_id,
        "kind": main.kind,
        "reason": main.reason,
        "score": round(main.score, 4),
        "signals": signals,
        "explanation": main.explanation,
        "context": {k: v for k, v in context.items() if v is not None},
        "event_id": trigger.event_id,
        "event_ts": trigger.event_ts_ms,
        "emitted_ts": emitted_ts_ms,
    }
    if trigger.fired_ts_ms is not None:
        intervention["fired_ts"] = trigger.fired_ts_ms
    return intervention
