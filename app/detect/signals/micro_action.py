# cython: annotation_typing=True
"""Micro-actions worth recognising: a first review, a completed profile, a wishlist after doubt."""

from __future__ import annotations

from app.detect.signals.signal import DetectionContext, InterventionKind, Signal

__all__ = ["KIND", "REASON", "TRIGGERS", "detect_micro_action", "micro_action_of"]

REASON = "micro_action"
KIND: InterventionKind = "reward"
#: Event types the rule looks at (None: every type).
TRIGGERS: frozenset[str] | None = None  # a props flag may mark any event

_FORMS = {"review": "wrote a first review", "profile": "completed their profile"}


def micro_action_of(ctx: DetectionContext) -> str | None:
    """The micro-action the event is, if any: ``review``, ``profile`` or ``wishlist``."""
    event = ctx.event
    if event is None or not event.props:
        return None
    if event.type == "form_submit":
        form = event.props.get("form")
        return form if form in _FORMS else None
    if event.props.get("action") == "wishlist":
        # Saving a product the customer kept coming back to: doubt turned into intent.
        product_id = event.product_id or ctx.session.product_id
        views = max((v for p, v, _, _ in ctx.session.products if p == product_id), default=0)
        hesitated = views >= 2 or "product_hesitation" in ctx.session.fired_reasons
        return "wishlist" if hesitated else None
    return None


def detect_micro_action(ctx: DetectionContext) -> Signal | None:
    """Fire once per customer and action on a review, a profile completion or a wishlist save.

    Examples
    --------
    >>> from tests.factories import click, context
    >>> review = [click(type="form_submit", props={"form": "review"})]
    >>> detect_micro_action(context(review)).subject
    'review'
    """
    action = micro_action_of(ctx)
    if action is None or action in ctx.state.rewarded:
        return None
    what = _FORMS.get(action, "saved a product they had hesitated over to their wishlist")
    return Signal(
        reason=REASON,
        kind=KIND,
        score=0.5,
        evidence={},
        explanation=f"The customer {what}; a thank-you would recognise it.",
        subject=action,
    )
