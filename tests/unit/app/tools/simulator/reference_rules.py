"""The friction rules the simulator is written against, as plain reference code for its tests.

Each rule takes one session's events in event-time order (no retries) and says
where it would fire (the event, or for silences the last event before them), or
None. They follow the rules as the detectors are specified, with the published
look-alike exclusions (``FRICTION-RULES.md``); they are not the detectors, which
the simulator must not be written around.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from itertools import pairwise
from typing import Any

Event = dict[str, Any]
Rule = Callable[[list[Event]], Event | None]

REPEAT_OK = (
    "qty", "quantity", "stepper", "increment", "decrement", "plus", "minus", "carousel",
    "slider", "next", "prev", "pagination", "toggle", "datepicker", "calendar",
)  # fmt: skip
NO_RESPONSE_OK = ("download", "print", "copy", "share", "export")
FORM_TAGS = ("input", "textarea", "select")
STEP_ORDER = {"cart": 0, "shipping": 1, "payment": 2, "review": 3}
PAID_STEPS = ("/checkout/payment", "/checkout/review")


def props(event: Event) -> dict[str, Any]:
    return event.get("props") or {}


def is_click(event: Event) -> bool:
    return bool(event["type"] == "click")


def rage_excluded(click: Event) -> bool:
    element = click.get("element", "").lower()
    return (
        props(click).get("selection") is True
        or props(click).get("repeat_click") is True
        or props(click).get("tag") in FORM_TAGS
        or any(s in element for s in REPEAT_OK)
    )


def dead_excluded(click: Event) -> bool:
    element = click.get("element", "").lower()
    return (
        props(click).get("tag") in FORM_TAGS
        or any(s in element for s in NO_RESPONSE_OK)
        or bool(props(click).get("download"))
        or props(click).get("target") == "_blank"
    )


def near(a: Event, b: Event, px: float = 30.0) -> bool:
    return bool((a["x"] - b["x"]) ** 2 + (a["y"] - b["y"]) ** 2 <= px**2)


def rage_click(events: list[Event]) -> Event | None:
    """3 clicks on one element within 1 s and 30 px, no other event between."""
    chain: list[Event] = []
    for event in events:
        if not is_click(event) or rage_excluded(event):
            chain = []
            continue
        if chain and chain[-1]["element"] != event["element"]:
            chain = []
        chain.append(event)
        last3 = chain[-3:]
        if (
            len(last3) == 3
            and last3[-1]["ts"] - last3[0]["ts"] <= 1_000
            and all(near(a, b) for a in last3 for b in last3)
        ):
            return event
    return None


def unanswered_clicks(events: list[Event]) -> list[Event]:
    """Clicks with no other kind of event within 2.5 s after them; a burst on one element
    (each click within 1 s of the last) counts once, at its first click."""
    found: list[Event] = []
    last: Event | None = None
    for i, event in enumerate(events):
        if not is_click(event) or dead_excluded(event):
            continue
        answered = any(
            not is_click(later) and later["ts"] - event["ts"] <= 2_500
            for later in events[i + 1 :]
            if later["ts"] - event["ts"] <= 2_500
        )
        burst = (
            last is not None
            and last["element"] == event["element"]
            and event["ts"] - last["ts"] <= 1_000
        )
        last = event
        if not answered and not burst:
            found.append(event)
    return found


def dead_click(events: list[Event]) -> Event | None:
    """Two unanswered clicks (or bursts) within 60 s."""
    dead = unanswered_clicks(events)
    for a, b in pairwise(dead):
        if b["ts"] - a["ts"] <= 60_000:
            return b
    return None


def step_loop(events: list[Event]) -> Event | None:
    """Two returns to an earlier checkout step with no cart change between."""
    regressions = 0
    last: str | None = None
    for event in events:
        if event["type"] in ("add_to_cart", "remove_from_cart"):
            regressions = 0
        elif event["type"] == "checkout_step" and event["step"] in STEP_ORDER:
            step = event["step"]
            if last is not None and STEP_ORDER[step] < STEP_ORDER[last]:
                regressions += 1
                if regressions >= 2:
                    return event
            last = step
    return None


def form_struggle(events: list[Event]) -> Event | None:
    """One field focused 3 times, 2 form errors on one form, or 180 s on one form."""
    focused: Counter[tuple[str, str]] = Counter()
    errors: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    for event in events:
        page = event.get("page", "")
        if event["type"] == "form_focus":
            focused[page, event["field"]] += 1
            if focused[page, event["field"]] >= 3:
                return event
        if event["type"] == "form_error":
            errors[page] += 1
            if errors[page] >= 2:
                return event
        if event["type"].startswith("form_"):
            first_seen.setdefault(page, event["ts"])
            if event["ts"] - first_seen[page] > 180_000:
                return event
    return None


def payment_failure(events: list[Event]) -> Event | None:
    for event in events:
        if event["type"] == "payment_failed" or (
            event["type"] == "payment_attempt" and "error" in event
        ):
            return event
    return None


def product_hesitation(events: list[Event]) -> Event | None:
    """One product viewed 3 times, added, removed and added, or read for over 120 s.

    Dwell is measured at the next event; closing the tab (``session_end``) is not reading.
    """
    views: Counter[str] = Counter()
    cart_moves: dict[str, list[str]] = defaultdict(list)
    reading: Event | None = None
    for event in events:
        if event["type"] == "session_end":
            break
        if reading is not None and event["ts"] - reading["ts"] > 120_000:
            return event
        if event["type"] == "page_view":
            reading = None
        if event["type"] == "product_view":
            reading = event
            views[event["product_id"]] += 1
            if views[event["product_id"]] >= 3:
                return event
        if event["type"] in ("add_to_cart", "remove_from_cart"):
            moves = cart_moves[event["product_id"]]
            moves.append(event["type"])
            if moves[-3:] == ["add_to_cart", "remove_from_cart", "add_to_cart"]:
                return event
    return None


def search_frustration(events: list[Event]) -> Event | None:
    """Two searches without results, or three searches within 60 s with no result opened."""
    zero = 0
    run: list[Event] = []
    for event in events:
        if event["type"] == "product_view":
            run = []
        if event["type"] != "search":
            continue
        zero += event["results"] == 0
        if zero >= 2:
            return event
        run = [e for e in run if event["ts"] - e["ts"] <= 60_000] + [event]
        if len(run) >= 3:
            return event
    return None


def error_burst(events: list[Event]) -> Event | None:
    errors = [e for e in events if e["type"] in ("error", "form_error")]
    for a, c in zip(errors, errors[2:], strict=False):
        if c["ts"] - a["ts"] <= 30_000:
            return c
    return None


def _silence(events: list[Event], min_ms: int, in_checkout: bool) -> Event | None:
    """The last event before a silence of ``min_ms`` with a full cart, inside payment or
    review (``in_checkout``) or outside them; the session's end counts as silence."""
    cart = 0.0
    purchased = False
    for event, after in zip(events, [*events[1:], None], strict=True):
        if event["type"] == "checkout_step":
            cart = event.get("value", cart)
        elif event["type"] == "add_to_cart":
            cart += event["value"]
        elif event["type"] == "remove_from_cart":
            cart -= event["value"]
        elif event["type"] == "purchase":
            cart, purchased = 0.0, True
        if event["type"] == "session_end":
            return None
        where = event.get("page", "").startswith(PAID_STEPS)
        if cart > 0.005 and where == in_checkout and not (purchased and not in_checkout):
            gap = None if after is None else after["ts"] - event["ts"]
            if gap is None or gap >= min_ms:
                return event
    return None


def checkout_stall(events: list[Event]) -> Event | None:
    return _silence(events, 60_000, in_checkout=True)


def cart_abandonment(events: list[Event]) -> Event | None:
    return _silence(events, 600_000, in_checkout=False)


def micro_action(events: list[Event]) -> Event | None:
    for event in events:
        if (
            event["type"] == "form_submit" and props(event).get("form") in ("review", "profile")
        ) or (is_click(event) and props(event).get("action") == "wishlist"):
            return event
    return None


#: Each rule by the reason it stands for (``rhythm_change`` needs a customer's history).
RULES: dict[str, Rule] = {
    "rage_click": rage_click,
    "dead_click": dead_click,
    "step_loop": step_loop,
    "form_struggle": form_struggle,
    "payment_failure": payment_failure,
    "checkout_stall": checkout_stall,
    "product_hesitation": product_hesitation,
    "search_frustration": search_frustration,
    "error_burst": error_burst,
    "cart_abandonment_risk": cart_abandonment,
    "micro_action": micro_action,
}


def fired(events: list[Event]) -> dict[str, Event]:
    """Every rule that fires on the session, with where."""
    found = {reason: rule(events) for reason, rule in RULES.items()}
    return {reason: event for reason, event in found.items() if event is not None}
