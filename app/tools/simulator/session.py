"""One simulated visit: its own event-time clock, the events it writes, and where friction began."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from math import exp
from typing import Any, TypeVar

import numpy as np

from app.tools.simulator.catalogue import Catalogue, Element, Product
from app.tools.simulator.variants import Behaviour

__all__ = ["Event", "SessionWriter", "Visit"]

#: One contract §1 event as written to JSONL (``ts`` in integer ms).
Event = dict[str, Any]

_T = TypeVar("_T")
# A think time never runs past this many times its median: the lognormal's far
# tail would otherwise turn a glance into an hour now and then.
_MAX_THINK_FACTOR = 6.0


@dataclass(slots=True, frozen=True)
class Visit:
    """Who visits, when, and which of their visits this is (``index`` 0 is the first).

    ``fading`` marks a churning customer's visit after their habit broke.
    """

    customer_id: str
    session_id: str
    start_ms: int
    index: int
    favourite_category: str
    fading: bool = False


class SessionWriter:
    """Writes one session's events on an event-time clock that only moves forward.

    Stories move the clock with ``pause`` (lognormal think times) and ``wait``,
    write events with ``emit`` and its helpers, and call ``mark_friction`` on the
    event where the friction begins (only the first call counts). ``now_ms`` is
    true time; an event's ``ts`` is what the device's clock says, ``skew_ms`` off.
    ``done`` is shared by all the visits of one customer (first review, ...), and
    ``turn``, when set, lets the customer's other device have a turn
    (``take_turn``).

    Examples
    --------
    >>> from itertools import count
    >>> from app.tools.simulator.catalogue import ELEMENTS, build_catalogue
    >>> from app.tools.simulator.variants import TUNING
    >>> rng = np.random.default_rng(0)
    >>> visit = Visit("c-1", "s-1", start_ms=1_000, index=0, favourite_category="shoes")
    >>> w = SessionWriter(rng, visit, build_catalogue(rng), (f"e-{n}" for n in count()),
    ...                   TUNING.behaviour)
    >>> first = w.goto("/")
    >>> w.pause(2_000)
    >>> click = w.click(ELEMENTS["#cart-icon"])
    >>> (first["event_id"], first["ts"], first["type"], click["page"], click["ts"] > first["ts"])
    ('e-0', 1000, 'page_view', '/', True)
    """

    __slots__ = (
        "_event_ids",
        "behaviour",
        "cart",
        "done",
        "events",
        "friction",
        "history",
        "lookalikes",
        "now_ms",
        "page",
        "rng",
        "shop",
        "skew_ms",
        "slow_load_in",
        "turn",
        "unanswered_clicks",
        "visit",
    )

    def __init__(
        self,
        rng: np.random.Generator,
        visit: Visit,
        shop: Catalogue,
        event_ids: Iterator[str],
        behaviour: Behaviour,
        *,
        skew_ms: int = 0,
        done: set[str] | None = None,
    ) -> None:
        self.rng = rng
        self.visit = visit
        self.shop = shop
        self._event_ids = event_ids
        self.behaviour = behaviour
        self.skew_ms = skew_ms
        self.done: set[str] = set() if done is None else done
        self.now_ms = visit.start_ms
        self.page: str | None = None
        self.history: list[str] = []
        self.cart: list[Product] = []
        self.events: list[Event] = []
        self.friction: Event | None = None
        #: Look-alikes this session shows, in the order they happened.
        self.lookalikes: list[str] = []
        #: Page loads until the slow one (the ``slow_load`` look-alike), or None.
        self.slow_load_in: int | None = None
        #: Clicks left without any answer on purpose; a clean session has at most one.
        self.unanswered_clicks = 0
        self.turn: Callable[[int], int] | None = None

    @property
    def cart_value(self) -> float:
        """What the cart is worth now."""
        return round(sum(p.price for p in self.cart), 2)

    # Time and chance.

    def pause(
        self,
        median_ms: float,
        sigma: float | None = None,
        min_ms: int = 40,
        max_ms: float | None = None,
    ) -> None:
        """Let a lognormal think time pass (median ``median_ms``, log-spread ``sigma``,
        by default the behaviour's), at most ``max_ms`` (default a few times the median)."""
        spread = self.behaviour.think_sigma if sigma is None else sigma
        drawn = median_ms * exp(spread * float(self.rng.standard_normal()))
        cap = _MAX_THINK_FACTOR * median_ms if max_ms is None else max_ms
        self.now_ms += max(min_ms, int(min(drawn, cap)))

    def wait(self, ms: int) -> None:
        """Let exactly ``ms`` pass."""
        self.now_ms += ms

    def wait_between(self, low_ms: int, high_ms: int) -> None:
        """Let a uniform time from ``low_ms`` to ``high_ms`` pass."""
        self.now_ms += self.between(low_ms, high_ms)

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

    def lookalike(self, name: str) -> bool:
        """Whether this session shows the look-alike ``name`` here (and remember it if so)."""
        if self.chance(self.behaviour.lookalike_p[name]):
            self.lookalikes.append(name)
            return True
        return False

    def take_turn(self) -> None:
        """Let the customer's other device have a turn, if there is one; time passes meanwhile."""
        if self.turn is not None:
            self.now_ms = self.turn(self.now_ms)

    # Events.

    def emit(self, type_: str, **fields: Any) -> Event:
        """Write one event at the current time (on the device's clock), on the current page."""
        event: Event = {
            "event_id": next(self._event_ids),
            "customer_id": self.visit.customer_id,
            "session_id": self.visit.session_id,
            "type": type_,
            "ts": self.now_ms + self.skew_ms,
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

    def click(self, element: Element, spread: float = 0.25, **props: Any) -> Event:
        """Click somewhere on ``element``, near its centre (normal, ``spread`` of its size)."""
        dx = float(self.rng.normal(0.0, spread)) * element.width
        dy = float(self.rng.normal(0.0, spread)) * element.height
        # Clipped to the box: a click outside would be on another element.
        x = element.x + max(-element.width / 2, min(element.width / 2, dx))
        y = element.y + max(-element.height / 2, min(element.height / 2, dy))
        return self.click_at(element, x, y, **props)

    def click_at(self, element: Element, x: float, y: float, **props: Any) -> Event:
        """Click ``element`` at exactly ``(x, y)``; ``props`` join the element's tag."""
        return self.emit(
            "click",
            element=element.selector,
            x=round(x, 1),
            y=round(y, 1),
            props={"tag": element.tag, **props},
        )

    def mark_friction(self, event: Event) -> None:
        """Record ``event`` as where the session's friction begins, unless one is recorded."""
        if self.friction is None:
            self.friction = event
