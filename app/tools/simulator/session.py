"""One simulated visit: its own event-time clock, the events it writes, and where friction began."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from math import exp
from typing import Any, TypeVar

import numpy as np

from app.tools.simulator.catalogue import Catalogue, Element, Product

__all__ = ["Event", "SessionWriter", "Visit"]

#: One contract §1 event as written to JSONL (``ts`` in integer ms).
Event = dict[str, Any]

_T = TypeVar("_T")


@dataclass(slots=True, frozen=True)
class Visit:
    """Who visits, when, and which of their visits this is (``index`` 0 is the first)."""

    customer_id: str
    session_id: str
    start_ms: int
    index: int
    favourite_category: str


class SessionWriter:
    """Writes one session's events on an event-time clock that only moves forward.

    Stories move the clock with ``pause`` (lognormal think times) and ``wait``,
    write events with ``emit`` and its helpers, and call ``mark_friction`` on the
    event where the friction begins (only the first call counts).

    Examples
    --------
    >>> from itertools import count
    >>> from app.tools.simulator.catalogue import ELEMENTS, build_catalogue
    >>> rng = np.random.default_rng(0)
    >>> visit = Visit("c-1", "s-1", start_ms=1_000, index=0, favourite_category="shoes")
    >>> w = SessionWriter(rng, visit, build_catalogue(rng), (f"e-{n}" for n in count()))
    >>> first = w.goto("/")
    >>> w.pause(2_000)
    >>> click = w.click(ELEMENTS["#cart-icon"])
    >>> (first["event_id"], first["ts"], first["type"], click["page"], click["ts"] > first["ts"])
    ('e-0', 1000, 'page_view', '/', True)
    """

    __slots__ = (
        "_event_ids",
        "cart",
        "events",
        "friction",
        "history",
        "now_ms",
        "page",
        "rng",
        "shop",
        "visit",
    )

    def __init__(
        self,
        rng: np.random.Generator,
        visit: Visit,
        shop: Catalogue,
        event_ids: Iterator[str],
    ) -> None:
        self.rng = rng
        self.visit = visit
        self.shop = shop
        self._event_ids = event_ids
        self.now_ms = visit.start_ms
        self.page: str | None = None
        self.history: list[str] = []
        self.cart: list[Product] = []
        self.events: list[Event] = []
        self.friction: Event | None = None

    @property
    def cart_value(self) -> float:
        """What the cart is worth now."""
        return round(sum(p.price for p in self.cart), 2)

    # Time and chance.

    def pause(self, median_ms: float, sigma: float = 0.6, min_ms: int = 40) -> None:
        """Let a lognormal think time pass (median ``median_ms``, log-spread ``sigma``)."""
        self.now_ms += max(min_ms, int(median_ms * exp(sigma * float(self.rng.standard_normal()))))

    def wait(self, ms: int) -> None:
        """Let exactly ``ms`` pass."""
        self.now_ms += ms

    def chance(self, p: float) -> bool:
        """True with probability ``p``."""
        return float(self.rng.random()) < p

    def between(self, low: int, high: int) -> int:
        """A whole number from ``low`` to ``high``, both included."""
        return int(self.rng.integers(low, high + 1))

    def pick(self, options: Sequence[_T]) -> _T:
        """One of ``options``, uniformly."""
        return options[int(self.rng.integers(len(options)))]

    def sample(self, options: Sequence[_T], k: int) -> list[_T]:
        """``k`` distinct ones of ``options`` (fewer if there are fewer), in random order."""
        chosen = self.rng.permutation(len(options))[:k]
        return [options[int(i)] for i in chosen]

    # Events.

    def emit(self, type_: str, **fields: Any) -> Event:
        """Write one event at the current time, on the current page."""
        event: Event = {
            "event_id": next(self._event_ids),
            "customer_id": self.visit.customer_id,
            "session_id": self.visit.session_id,
            "type": type_,
            "ts": self.now_ms,
        }
        if self.page is not None:
            event["page"] = self.page
        event.update(fields)
        self.events.append(event)
        return event

    def goto(self, page: str, **fields: Any) -> Event:
        """Load ``page``: a ``page_view``, and the page becomes the current one."""
        if self.page is not None:
            self.history.append(self.page)
        self.page = page
        return self.emit("page_view", **fields)

    def click(self, element: Element, spread: float = 0.25) -> Event:
        """Click somewhere on ``element``, near its centre (normal, ``spread`` of its size)."""
        dx = float(self.rng.normal(0.0, spread)) * element.width
        dy = float(self.rng.normal(0.0, spread)) * element.height
        # Clipped to the box: a click outside would be on another element.
        x = element.x + max(-element.width / 2, min(element.width / 2, dx))
        y = element.y + max(-element.height / 2, min(element.height / 2, dy))
        return self.click_at(element, x, y)

    def click_at(self, element: Element, x: float, y: float) -> Event:
        """Click ``element`` at exactly ``(x, y)``."""
        return self.emit(
            "click",
            element=element.selector,
            x=round(x, 1),
            y=round(y, 1),
            props={"tag": element.tag},
        )

    def mark_friction(self, event: Event) -> None:
        """Record ``event`` as where the session's friction begins, unless one is recorded."""
        if self.friction is None:
            self.friction = event
