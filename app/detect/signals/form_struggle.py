# cython: annotation_typing=True
"""Form struggles: a field fought with, a form refused again and again, or far too long on it."""

from __future__ import annotations

from app.detect.signals.signal import DetectionContext, InterventionKind, Signal, times

__all__ = ["KIND", "REASON", "TRIGGERS", "detect_form_struggle"]

REASON = "form_struggle"
KIND: InterventionKind = "assist"
#: Event types the rule looks at (None: every type).
TRIGGERS: frozenset[str] | None = frozenset(
    {"form_focus", "form_input", "form_blur", "form_submit", "form_error"}
)


def detect_form_struggle(ctx: DetectionContext) -> Signal | None:
    """Fire on a field focused ``form_field_min_focus`` times, ``form_min_errors`` errors on
    one form, or ``form_slow_ms`` spent on one form.

    Examples
    --------
    >>> from tests.factories import T0_MS, click, context
    >>> errors = [click(type="form_error", field="postcode", page="/shipping", ts_ms=T0_MS + i)
    ...           for i in range(2)]
    >>> detect_form_struggle(context(errors)).evidence["form_errors"]
    2.0
    """
    event, session, t = ctx.event, ctx.session, ctx.thresholds
    if event is None or not event.type.startswith("form_"):
        return None
    field, focus = max(session.field_focus, key=_count, default=("", 0))
    form, errors = max(session.form_errors, key=_count, default=("", 0))
    slow_form, slow_ms = max(
        ((name, end - start) for name, start, end in session.form_spans),
        key=_count,
        default=("", 0),
    )
    if errors >= t.form_min_errors:
        what = f"the form on {form} was refused {times(errors)}"
        score, subject = min(1.0, 0.65 + 0.1 * (errors - t.form_min_errors)), form
    elif focus >= t.form_field_min_focus:
        what = f"they went back to the field '{field}' {times(focus)}"
        score, subject = min(1.0, 0.6 + 0.05 * (focus - t.form_field_min_focus)), field
    elif slow_ms >= t.form_slow_ms:
        what = f"they have spent {slow_ms / 60_000:.0f} minutes on the form on {slow_form}"
        score, subject = 0.6, slow_form
    else:
        return None
    return Signal(
        reason=REASON,
        kind=KIND,
        score=score,
        evidence={
            "form_errors": float(errors),
            "field_focus": float(focus),
            "form_ms": float(slow_ms),
        },
        explanation=f"The customer seems stuck on a form: {what}.",
        subject=subject,
    )


def _count(item: tuple[str, int]) -> int:
    return item[1]
