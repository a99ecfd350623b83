# cython: annotation_typing=True
"""Step loops: going back to an earlier checkout step again and again, cart unchanged."""

from __future__ import annotations

import re
from bisect import bisect_right

from app.detect.signals.signal import DetectionContext, InterventionKind, Signal, times

__all__ = [
    "KIND",
    "PAYMENT_RANK",
    "REASON",
    "TRIGGERS",
    "count_loop_regressions",
    "detect_step_loop",
    "step_rank",
    "step_ranks",
]

REASON = "step_loop"
KIND: InterventionKind = "assist"
#: Event types the rule looks at (None: every type).
TRIGGERS: frozenset[str] | None = frozenset({"checkout_step"})

#: The usual order of checkout steps, by words in the names shops give them. A later
#: step's word wins: "Billing address" is billing (3), "shipping_details" shipping (2).
_RANK_WORDS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (4, ("review", "confirm", "summary", "placeorder")),
    (3, ("pay", "billing")),
    (2, ("shipping", "delivery", "address")),
    (1, ("login", "signin", "account", "contact", "information", "details")),
    (0, ("cart", "bag", "basket")),
)
#: The rank of the payment step: it and the steps after it are the checkout's last ones.
PAYMENT_RANK = 3
# Names seen, with their rank: a shop uses a handful.
_RANK_OF: dict[str, int | None] = {}
_RANK_OF_MAX = 4_096
_LAST_NUMBER = re.compile(r"[0-9]{1,9}(?=[^0-9]*$)")


def step_rank(step: str) -> int | None:
    """The step's place in the usual checkout order (cart 0 … review 4), if its name says.

    Case, spaces and punctuation do not matter; a name with no known word (``"step-2"``)
    has no rank.

    Examples
    --------
    >>> [step_rank(s) for s in ("cart", "Shipping Address", "add_payment_info", "step-2")]
    [0, 2, 3, None]
    """
    rank = _RANK_OF.get(step, -1)
    if rank != -1:
        return rank
    letters = "".join(c for c in step.casefold() if c.isalnum())
    rank = next((r for r, words in _RANK_WORDS if any(w in letters for w in words)), None)
    if len(_RANK_OF) >= _RANK_OF_MAX:
        _RANK_OF.clear()
    _RANK_OF[step] = rank
    return rank


def step_ranks(steps: list[str]) -> dict[str, int]:
    """Each step's place in the checkout: the usual order when every name says its place,
    else the steps' numbers when each has its own (``"2"``, ``"checkout-step-3"``, as
    Google Analytics' enhanced e-commerce numbers them), else the order the session first
    reached them in.

    Examples
    --------
    >>> step_ranks(["shipping", "cart"])
    {'shipping': 2, 'cart': 0}
    >>> step_ranks(["step-3", "step-1", "step-3"])
    {'step-3': 3, 'step-1': 1}
    >>> step_ranks(["begin", "next", "begin"])
    {'begin': 0, 'next': 1}
    """
    names = list(dict.fromkeys(steps))
    ranks = {s: r for s in names if (r := step_rank(s)) is not None}
    if len(ranks) == len(names):
        return ranks
    numbers = {s: n for s in names if (n := _step_number(s)) is not None}
    if len(numbers) == len(names) and len(set(numbers.values())) == len(names):
        return numbers
    return {s: i for i, s in enumerate(names)}


def _step_number(step: str) -> int | None:
    """The last number in a step's name, or None."""
    digits = _LAST_NUMBER.search(step)
    return None if digits is None else int(digits.group())


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
