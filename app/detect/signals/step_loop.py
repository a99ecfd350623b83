"""Step loops: going back to an earlier checkout step again and again, cart unchanged."""

from __future__ import annotations

from bisect import bisect_right

from app.detect.signals.signal import DetectionContext, InterventionKind, Signal, times

__all__ = ["KIND", "REASON", "TRIGGERS", "count_loop_regressions", "detect_step_loop", "step_ranks"]

REASON = "step_loop"
KIND: InterventionKind = "assist"
#: Event types the rule looks at (None: every type).
TRIGGERS: frozenset[str] | None = frozenset({"checkout_step"})

# The usual order of checkout steps, by the names shops give them.
_CANONICAL_RANKS: dict[str, int] = {
    **dict.fromkeys(("cart", "bag", "basket"), 0),
    **dict.fromkeys(("login", "signin", "account", "contact", "information", "details"), 1),
    **dict.fromkeys(("shipping", "delivery", "address"), 2),
    **dict.fromkeys(("payment", "billing"), 3),
    **dict.fromkeys(("review", "confirm", "confirmation", "summary"), 4),
}


def step_ranks(steps: list[str]) -> dict[str, int]:
    """Each step's place in the checkout: the usual order when every name is known,
    else the order the session first reached them in.

    Examples
    --------
    >>> step_ranks(["shipping", "cart"])
    {'shipping': 2, 'cart': 0}
    >>> step_ranks(["step-1", "step-2", "step-1"])
    {'step-1': 0, 'step-2': 1}
    """
    if all(s in _CANONICAL_RANKS for s in steps):
        return {s: _CANONICAL_RANKS[s] for s in dict.fromkeys(steps)}
    return {s: i for i, s in enumerate(dict.fromkeys(steps))}


def count_loop_regressions(
    steps: tuple[tuple[int, str], ...], cart_changes: tuple[int, ...]
) -> int:
    """Moves back to an earlier step since the last cart change.

    A buyer who goes back to the cart to add or remove something is not looping,
    so a cart change starts the count again.

    Examples
    --------
    >>> path = ((1, "cart"), (2, "shipping"), (3, "cart"), (4, "shipping"), (5, "cart"))
    >>> count_loop_regressions(path, ())
    2
    >>> count_loop_regressions(path, (4,))
    1
    """
    ranks = step_ranks([s for _, s in steps])
    since = cart_changes[-1] if cart_changes else -1
    start = bisect_right([ts for ts, _ in steps], since)
    regressions = 0
    for i in range(max(1, start), len(steps)):
        if ranks[steps[i][1]] < ranks[steps[i - 1][1]]:
            regressions += 1
    return regressions


def detect_step_loop(ctx: DetectionContext) -> Signal | None:
    """Fire when the checkout regresses ``step_loop_min_regressions`` times, cart unchanged.

    Reads the session's checkout-step summary (every step move of the visit, in
    event time), so a long visit is judged on its whole path.

    Examples
    --------
    >>> from tests.factories import T0_MS, click, context
    >>> steps = ["cart", "shipping", "cart", "shipping", "cart"]
    >>> events = [click(type="checkout_step", step=s, ts_ms=T0_MS + 1000 * i)
    ...           for i, s in enumerate(steps)]
    >>> detect_step_loop(context(events)).evidence["regressions"]
    2.0
    """
    event, session = ctx.event, ctx.session
    if event is None or event.type != "checkout_step" or event.step is None:
        return None
    regressions = count_loop_regressions(session.steps, session.cart_changes)
    needed = ctx.thresholds.step_loop_min_regressions
    if regressions < needed:
        return None
    return Signal(
        reason=REASON,
        kind=KIND,
        score=min(1.0, 0.6 + 0.1 * (regressions - needed + 1)),
        evidence={"regressions": float(regressions), "steps": float(len(session.steps))},
        explanation=(
            f"The customer went back to an earlier checkout step {times(regressions)} without "
            f"changing the cart (now at {event.step}); something in the checkout may be unclear."
        ),
    )
