# cython: annotation_typing=True
"""What a detector reports, and what it is given."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from app.detect.signals.thresholds import SignalThresholds
    from app.ingest.events import ClickEvent
    from tables.customer_state import CustomerState, SessionState

__all__ = ["DetectionContext", "InterventionKind", "Signal", "amount", "in_cart", "times"]

InterventionKind = Literal["assist", "offer", "reminder", "reward"]


@dataclass(slots=True, frozen=True)
class Signal:
    """A friction a detector recognised, with its evidence and the help it calls for."""

    reason: str
    kind: InterventionKind
    score: float
    evidence: dict[str, float] = field(default_factory=dict)
    explanation: str = ""
    # What the signal is about when that is not the page in view: a product, a form
    # field, a micro-action.
    subject: str | None = None


@dataclass(slots=True)
class DetectionContext:
    """Everything a detector may look at: one value, so detectors can grow without new arguments.

    ``event`` is the event being folded in, or None when a timer asks whether a
    silence rule holds; ``now_ms`` is the event time of the question (the event's
    ``ts``, or the partition's watermark). ``visit_gap_ms`` is the time since the
    customer's previous visit began when this event opened a new visit, else 0.
    """

    state: CustomerState
    session: SessionState
    event: ClickEvent | None
    now_ms: int
    thresholds: SignalThresholds
    visit_gap_ms: int = 0


def times(n: int) -> str:
    """A count of repeats as an explanation says it.

    Examples
    --------
    >>> times(1), times(3)
    ('once', '3 times')
    """
    return "once" if n == 1 else f"{n} times"


def amount(value: float) -> str:
    """A cart value as an explanation shows it: to the cent, without trailing zeros.

    ``:g`` would round to six digits and switch to an exponent from a million (a
    common cart in yen or won).

    Examples
    --------
    >>> amount(25.0), amount(59.5), amount(12_345.67), amount(1_500_000.0)
    ('25', '59.5', '12345.67', '1500000')
    """
    return f"{value:.2f}".rstrip("0").rstrip(".")


def in_cart(session: SessionState) -> str:
    """What the session's cart holds, as an explanation says it: its value, or, from a
    shop whose cart events carry none, its items.

    Examples
    --------
    >>> from tables.customer_state import SessionState
    >>> in_cart(SessionState("s", 0, 0, cart_value=59.5, cart_items=2))
    '59.5 in the cart'
    >>> [in_cart(SessionState("s", 0, 0, cart_items=n)) for n in (1, 3)]
    ['1 item in the cart', '3 items in the cart']
    """
    if session.cart_value > 0:
        return f"{amount(session.cart_value)} in the cart"
    return f"{session.cart_items} item{'' if session.cart_items == 1 else 's'} in the cart"
