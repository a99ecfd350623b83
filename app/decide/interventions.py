"""Turning a signal into the intervention object of contract §2."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from app.detect.signals.signal import Signal
from app.ingest.events import ClickEvent
from tables.customer_state import CustomerState

__all__ = ["build_intervention", "intervention_id"]


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


def build_intervention(
    state: CustomerState, event: ClickEvent, signal: Signal, emitted_ts_ms: int
) -> dict[str, Any]:
    """The intervention for ``signal``, fired by ``event`` of the customer in ``state``.

    Examples
    --------
    >>> from app.detect.signals import Signal
    >>> from app.detect.state import StateLimits, advance
    >>> e = ClickEvent("e1", "c1", "s1", "payment_failed", 1000, page="/pay", step="payment")
    >>> s = advance(None, e, StateLimits())
    >>> i = build_intervention(s, e, Signal("payment_failure", "assist", 0.9), 1005)
    >>> (i["kind"], i["context"]["step"], i["emitted_ts"] - i["event_ts"])
    ('assist', 'payment', 5)
    """
    session = state.session
    context: dict[str, Any] = {
        "page": event.page,
        "product_id": event.product_id,
        "step": event.step,
        "event_type": event.type,
        "segment": state.segment,
    }
    if session is not None:
        context["page"] = event.page or session.page
        context["product_id"] = event.product_id or session.product_id
        context["step"] = event.step or session.step
        context["cart_value"] = session.cart_value
        context["session_events"] = session.event_count
    return {
        "intervention_id": intervention_id(event.customer_id, signal.reason, event.event_id),
        "customer_id": event.customer_id,
        "session_id": event.session_id,
        "kind": signal.kind,
        "reason": signal.reason,
        "score": round(signal.score, 4),
        "signals": {signal.reason: round(signal.score, 4), **signal.evidence},
        "explanation": signal.explanation,
        "context": {k: v for k, v in context.items() if v is not None},
        "event_id": event.event_id,
        "event_ts": event.ts_ms,
        "emitted_ts": emitted_ts_ms,
    }
