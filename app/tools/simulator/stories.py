"""Shopper stories: one function per kind of visit, writing its events through a ``SessionWriter``.

Each story writes one whole session and, when the story has friction, marks the
event where it begins. ``EXPECTED`` says which intervention (kind, reason) a
friction story calls for. Think times are lognormal around the medians below.
"""

from __future__ import annotations

from collections.abc import Callable

from app.detect.signals.signal import InterventionKind
from app.tools.simulator.catalogue import (
    DEAD_ELEMENTS,
    ELEMENTS,
    FORM_ERRORS,
    PAYMENT_FIELDS,
    SHIPPING_FIELDS,
    STEP_PAGES,
    Element,
    Product,
    category_page,
    search_page,
)
from app.tools.simulator.session import Event, SessionWriter

__all__ = ["EXPECTED", "STORIES", "Story"]

Story = Callable[[SessionWriter], None]

# Median think times (ms). Page loads are a few hundred ms; reading a product page
# takes tens of seconds; typing one form field a few seconds.
_LOAD_MS = 450
_GLANCE_MS = 6_000
_READ_MS = 18_000
_FIELD_MS = 3_500
_STEP_MS = 1_200
_LEAVE_MS = 20_000
# A dead click is never followed by a page change within this long.
_DEAD_QUIET_MS = 2_500
# Clean sessions get one harmless slip now and then, so false alarms are measurable.
_NOISE_P = 0.2

_REFERRERS = ("direct", "search", "email", "ads", "social")
_DECLINES = ("card_declined", "insufficient_funds", "do_not_honor", "3ds_failed")
_ERRORS: dict[str, tuple[str, ...]] = {
    "cart-widget": (
        "TypeError: Cannot read properties of undefined (reading 'price')",
        "Failed to fetch /api/cart",
    ),
    "price-api": ("HTTP 503 from /api/prices", "HTTP 504 from /api/prices"),
    "recommendations": ("ChunkLoadError: Loading chunk 417 failed", "HTTP 500 from /api/recs"),
}

# Friction stories, with the intervention (kind, reason) each one calls for.
EXPECTED: dict[str, tuple[InterventionKind, str] | None] = {
    "clean_buyer": None,
    "browser_leaves": None,
    "price_hesitant": ("offer", "product_hesitation"),
    "rage_clicker": ("assist", "rage_click"),
    "dead_clicks": ("assist", "dead_click"),
    "form_struggler": ("assist", "form_struggle"),
    "payment_failure": ("assist", "payment_failure"),
    "checkout_staller": ("reminder", "checkout_stall"),
    "search_frustrated": ("assist", "search_frustration"),
    "step_looper": ("assist", "step_loop"),
    "churn_risk": ("reminder", "abandonment_risk"),
    "error_burst": ("assist", "error_burst"),
}


# Building blocks.


def _land(w: SessionWriter) -> Event:
    """The first page of the visit, with where the customer came from."""
    props = {"referrer": w.pick(_REFERRERS)}
    roll = float(w.rng.random())
    if roll < 0.5:
        event = w.goto("/", props=props)
    elif roll < 0.8:
        event = w.goto(category_page(w.visit.favourite_category), props=props)
    else:
        product = w.pick(w.shop.in_category(w.visit.favourite_category))
        event = w.goto(product.page, props=props)
        w.wait(5)
        w.emit("product_view", product_id=product.product_id, value=product.price)
    w.pause(_GLANCE_MS)
    return event


def _scroll(w: SessionWriter, depth: int, median_ms: float = _GLANCE_MS / 2) -> None:
    """Scroll down through ``depth`` quarters of the page."""
    for quarter in range(1, depth + 1):
        w.emit("scroll", scroll_pct=25 * quarter)
        w.pause(median_ms)


def _open(w: SessionWriter, element: Element, page: str) -> Event:
    """Click a link or button that loads ``page``."""
    w.click(element)
    w.pause(_LOAD_MS, 0.5)
    return w.goto(page)


def _view_product(w: SessionWriter, product: Product, read_ms: float = _READ_MS) -> Event:
    """Open a product from its category listing, then read the page."""
    listing = category_page(product.category)
    if w.page != listing:
        _open(w, w.shop.nav_link(product.category), listing)
        w.pause(_GLANCE_MS / 2)
    _open(w, w.shop.product_card(product), product.page)
    w.wait(5)
    event = w.emit("product_view", product_id=product.product_id, value=product.price)
    w.pause(read_ms / 3)
    _scroll(w, w.between(0, 3), read_ms / 4)
    return event


def _browse(w: SessionWriter, n: int, read_ms: float = _READ_MS) -> list[Product]:
    """View ``n`` products not seen yet in this visit, mostly of the favourite category."""
    category = w.visit.favourite_category if w.chance(0.7) else w.pick(w.shop.categories)
    seen = {e["product_id"] for e in w.events if e["type"] == "product_view"}
    products = w.sample([p for p in w.shop.in_category(category) if p.product_id not in seen], n)
    for product in products:
        _view_product(w, product, read_ms)
    return products


def _add_to_cart(w: SessionWriter, product: Product) -> None:
    w.click(ELEMENTS["#add-to-cart"])
    w.pause(300, 0.4)
    w.cart.append(product)
    w.emit("add_to_cart", product_id=product.product_id, value=product.price)
    w.pause(_STEP_MS)


def _remove_from_cart(w: SessionWriter, product: Product) -> None:
    w.click(ELEMENTS["#remove-item"])
    w.pause(300, 0.4)
    w.cart.remove(product)
    w.emit("remove_from_cart", product_id=product.product_id, value=product.price)
    w.pause(_STEP_MS)


def _step(w: SessionWriter, step: str) -> Event:
    """Load a checkout step's page and report the step."""
    w.goto(STEP_PAGES[step])
    w.wait(5)
    event = w.emit("checkout_step", step=step, value=w.cart_value)
    w.pause(_STEP_MS)
    return event


def _open_cart(w: SessionWriter) -> Event:
    w.click(ELEMENTS["#cart-icon"])
    w.pause(_LOAD_MS, 0.5)
    return _step(w, "cart")


def _fill_field(w: SessionWriter, field: str, typing_ms: float = _FIELD_MS) -> None:
    w.emit("form_focus", field=field)
    w.pause(typing_ms)
    w.emit("form_input", field=field)
    w.pause(200, 0.5)
    w.emit("form_blur", field=field)
    w.pause(_STEP_MS / 2)


def _submit(w: SessionWriter, button: str, form: str) -> None:
    w.click(ELEMENTS[button])
    w.wait(30)
    w.emit("form_submit", props={"form": form})
    w.pause(_LOAD_MS, 0.5)


def _form_error(w: SessionWriter, field: str) -> Event:
    return w.emit("form_error", field=field, error=FORM_ERRORS[field])


def _shipping(w: SessionWriter, typo: bool = False) -> Event:
    """From the cart to the payment step, filling the shipping form on the way."""
    w.click(ELEMENTS["#checkout"])
    w.pause(_LOAD_MS, 0.5)
    _step(w, "shipping")
    # Returning customers often find their address saved.
    if not (w.visit.index > 0 and w.chance(0.6)):
        for field in SHIPPING_FIELDS:
            _fill_field(w, field)
    if typo:
        # One mistyped field, fixed at once: a slip, not a struggle.
        field = w.pick(("email", "postcode"))
        _submit(w, "#continue", "shipping")
        _form_error(w, field)
        w.pause(_STEP_MS)
        _fill_field(w, field)
    _submit(w, "#continue", "shipping")
    return _step(w, "payment")


def _pay(w: SessionWriter) -> Event:
    _submit(w, "#pay", "payment")
    return w.emit("payment_attempt", value=w.cart_value, props={"method": "card"})


def _finish_order(w: SessionWriter) -> None:
    """From a successful payment attempt to the order confirmation."""
    w.pause(1_500, 0.5)
    _step(w, "review")
    w.pause(_GLANCE_MS)
    w.click(ELEMENTS["#place-order"])
    w.pause(800, 0.5)
    w.emit("purchase", value=w.cart_value, props={"items": len(w.cart)})
    w.cart.clear()
    w.pause(_LOAD_MS, 0.5)
    w.goto("/order/confirmed")
    w.pause(_GLANCE_MS)


def _checkout(w: SessionWriter, typo: bool = False) -> None:
    """From the cart to a placed order, with no trouble on the way."""
    _shipping(w, typo)
    for field in PAYMENT_FIELDS:
        _fill_field(w, field)
    _pay(w)
    _finish_order(w)


def _search(w: SessionWriter, query: str) -> Event:
    w.click(ELEMENTS["#search-box"])
    w.pause(2_500, 0.5)
    event = w.emit("search", query=query, results=w.shop.search_results(query))
    w.pause(_LOAD_MS, 0.5)
    w.goto(search_page(query))
    w.pause(_GLANCE_MS / 2)
    return event


def _typo(w: SessionWriter, text: str) -> str:
    """``text`` with two neighbouring letters swapped."""
    letters = [
        i
        for i in range(len(text) - 1)
        if text[i].isalpha() and text[i + 1].isalpha() and text[i] != text[i + 1]
    ]
    i = w.pick(letters)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def _found_query(w: SessionWriter) -> str:
    """Words of a real product's name, so the search finds it."""
    words = w.pick(w.shop.in_category(w.visit.favourite_category)).name.split()
    return " ".join(words[1:] if w.chance(0.5) else words[2:])


def _noise(w: SessionWriter) -> None:
    """Sometimes one harmless slip: a double-click, one back, one dead click or one error."""
    if not w.chance(_NOISE_P):
        return
    slip = w.pick(("double_click", "double_click", "back", "back", "dead_click", "error"))
    if slip == "double_click":
        first = w.click(ELEMENTS["#size-select"])
        w.pause(120, 0.3)
        w.click_at(ELEMENTS["#size-select"], first["x"] + 1, first["y"])
    elif slip == "back" and w.history:
        w.emit("back")
        w.pause(_LOAD_MS, 0.5)
        w.goto(w.history[-1])
    elif slip == "dead_click":
        w.click(ELEMENTS[".product-image"])
        w.pause(_DEAD_QUIET_MS, 0.3, min_ms=_DEAD_QUIET_MS)
        return
    elif slip == "error":
        w.emit("error", error=_ERRORS["recommendations"][1], props={"source": "recommendations"})
    w.pause(_GLANCE_MS / 2)


def _leave(w: SessionWriter, idle_median_ms: float = _LEAVE_MS) -> None:
    """End the visit; about half of the browsers report the tab closing."""
    if w.chance(0.5):
        w.pause(idle_median_ms, 0.8)
        w.emit("session_end")


# Stories.


def clean_buyer(w: SessionWriter) -> None:
    """Browses a little, adds one or two products, checks out and pays. No friction."""
    _land(w)
    products = _browse(w, w.between(1, 4))
    _add_to_cart(w, products[-1])
    _noise(w)
    if len(products) > 1 and w.chance(0.3):
        _view_product(w, products[0])
        _add_to_cart(w, products[0])
    _open_cart(w)
    _checkout(w, typo=w.chance(0.08))
    _leave(w)


def browser_leaves(w: SessionWriter) -> None:
    """Looks around, perhaps searches, and leaves without buying. No friction."""
    _land(w)
    if w.chance(0.3):
        query = _found_query(w)
        if w.chance(0.05):
            _search(w, _typo(w, query))  # a typo, fixed at once
        _search(w, query)
    for _ in range(w.between(1, 2)):
        _browse(w, w.between(1, 4))
    _noise(w)
    _leave(w)


def price_hesitant(w: SessionWriter) -> None:
    """Keeps coming back to one product, reads it at length, adds it to the cart and takes it out.

    Friction begins at the first return to that product.
    """
    _land(w)
    target = _browse(w, 1, read_ms=2.5 * _READ_MS)[0]
    for _ in range(w.between(2, 3)):
        others = [p for p in w.shop.in_category(target.category) if p != target]
        _view_product(w, w.pick(others))
        w.mark_friction(_view_product(w, target, read_ms=2.5 * _READ_MS))
    _add_to_cart(w, target)
    _open_cart(w)
    w.pause(_READ_MS)
    _remove_from_cart(w, target)
    if w.chance(0.5):  # one more try, one more change of mind
        _view_product(w, target, read_ms=_READ_MS)
        _add_to_cart(w, target)
        _open_cart(w)
        w.pause(_READ_MS)
        _remove_from_cart(w, target)
    _leave(w)


def rage_clicker(w: SessionWriter) -> None:
    """Meets a button that does nothing and clicks it again and again.

    Friction begins at the first click of the rapid burst (at least three clicks
    within a second, a few px apart).
    """
    _land(w)
    product = _browse(w, w.between(1, 3))[-1]
    broken = w.pick(("#add-to-cart", "#add-to-cart", "#apply-coupon", "#continue", "#pay"))
    if broken != "#add-to-cart":
        _add_to_cart(w, product)
        _open_cart(w)
        if broken != "#apply-coupon":
            w.click(ELEMENTS["#checkout"])
            w.pause(_LOAD_MS, 0.5)
            _step(w, "shipping")
            for field in SHIPPING_FIELDS:
                _fill_field(w, field)
            if broken == "#pay":
                _submit(w, "#continue", "shipping")
                _step(w, "payment")
                for field in PAYMENT_FIELDS:
                    _fill_field(w, field)
    button = ELEMENTS[broken]
    w.click(button)
    # Nothing happens; the customer waits a moment before hammering it.
    w.wait(1_200)
    w.pause(800, 0.5)
    for _ in range(w.between(1, 2)):
        _rage_burst(w, button)
        w.pause(4_000, 0.5)
    if w.chance(0.3):
        _open(w, ELEMENTS["#help-link"], "/help")
        w.pause(_READ_MS)
    _leave(w)


def _rage_burst(w: SessionWriter, button: Element) -> None:
    first = w.click(button)
    w.mark_friction(first)
    for _ in range(w.between(2, 6)):
        # 60-400 ms apart, so any three clicks of the burst fall within 1 s, and
        # at most 8 px from the first click, so all lie within 30 px of each other.
        w.wait(min(400, 60 + int(w.rng.exponential(140))))
        dx, dy = (max(-8.0, min(8.0, float(d))) for d in w.rng.normal(0.0, 3.0, size=2))
        w.click_at(button, first["x"] + dx, first["y"] + dy)


def dead_clicks(w: SessionWriter) -> None:
    """Clicks things on a product page that look clickable and are not; nothing happens.

    Friction begins at the first dead click.
    """
    _land(w)
    _browse(w, w.between(1, 3))
    for _ in range(w.between(3, 6)):
        # At least 600 ms apart: slower than a rage burst.
        w.mark_friction(w.click(w.pick(DEAD_ELEMENTS)))
        w.wait(600)
        w.pause(1_500, 0.5)
    w.pause(_DEAD_QUIET_MS, 0.3, min_ms=_DEAD_QUIET_MS)
    if w.chance(0.5):
        _browse(w, 1)
    _leave(w)


def form_struggler(w: SessionWriter) -> None:
    """Fights a form field that keeps being refused: refocuses it, retypes, resubmits.

    Friction begins at the first ``form_error``.
    """
    _land(w)
    _add_to_cart(w, _browse(w, w.between(1, 2))[-1])
    _open_cart(w)
    w.click(ELEMENTS["#checkout"])
    w.pause(_LOAD_MS, 0.5)
    _step(w, "shipping")
    on_payment = w.chance(0.3)
    if on_payment:
        for field in SHIPPING_FIELDS:
            _fill_field(w, field)
        _submit(w, "#continue", "shipping")
        _step(w, "payment")
    fields, button, form = (
        (PAYMENT_FIELDS, "#pay", "payment")
        if on_payment
        else (SHIPPING_FIELDS, "#continue", "shipping")
    )
    tricky = w.pick([f for f in fields if f in FORM_ERRORS])
    for field in fields:
        _fill_field(w, field, 3 * _FIELD_MS if field == tricky else _FIELD_MS)
    for _ in range(w.between(2, 4)):
        _submit(w, button, form)
        w.mark_friction(_form_error(w, tricky))
        w.pause(_GLANCE_MS)
        for _ in range(w.between(1, 2)):  # refocus, stare, retype
            _fill_field(w, tricky, 3 * _FIELD_MS)
    if w.chance(0.45):
        _submit(w, button, form)
        if on_payment:
            w.emit("payment_attempt", value=w.cart_value, props={"method": "card"})
            _finish_order(w)
        else:
            _step(w, "payment")
            for field in PAYMENT_FIELDS:
                _fill_field(w, field)
            _pay(w)
            _finish_order(w)
    else:
        w.pause(_READ_MS)
    _leave(w)


def payment_failure(w: SessionWriter) -> None:
    """Pays and is declined, tries again (perhaps with another card), maybe succeeds.

    Friction begins at the first failed payment.
    """
    _land(w)
    _add_to_cart(w, _browse(w, w.between(1, 3))[-1])
    _open_cart(w)
    _shipping(w)
    for field in PAYMENT_FIELDS:
        _fill_field(w, field)
    for _ in range(w.between(1, 3)):
        _submit(w, "#pay", "payment")
        if w.chance(0.25):
            failed = w.emit(
                "payment_attempt", value=w.cart_value, error="card_number_invalid",
                props={"method": "card"},
            )  # fmt: skip
        else:
            w.emit("payment_attempt", value=w.cart_value, props={"method": "card"})
            w.pause(2_500, 0.5)  # the payment provider answers
            failed = w.emit("payment_failed", value=w.cart_value, error=w.pick(_DECLINES))
        w.mark_friction(failed)
        w.pause(_GLANCE_MS)
        if w.chance(0.5):  # another card
            for field in PAYMENT_FIELDS[:3]:
                _fill_field(w, field)
    if w.chance(0.4):
        _pay(w)
        _finish_order(w)
    _leave(w)


def checkout_staller(w: SessionWriter) -> None:
    """Reaches the payment step and goes silent: no purchase.

    Friction begins at the payment step, the last thing the customer did.
    """
    _land(w)
    _add_to_cart(w, _browse(w, w.between(1, 3))[-1])
    _open_cart(w)
    w.mark_friction(_shipping(w))
    # If the tab is closed at all, it is long after.
    _leave(w, idle_median_ms=15 * 60_000)


def search_frustrated(w: SessionWriter) -> None:
    """Searches, finds nothing, rephrases, finds nothing again.

    Friction begins at the first search with no results.
    """
    _land(w)
    wanted = _typo(w, _found_query(w)) if w.chance(0.5) else ""
    if not wanted or w.shop.search_results(wanted) > 0:
        wanted = w.pick(w.shop.missing_terms)
    for attempt in range(w.between(2, 4)):
        query = wanted if attempt == 0 else _rephrase(w, wanted)
        search = _search(w, query)
        if search["results"] == 0:
            w.mark_friction(search)
    if w.chance(0.4):
        _search(w, _found_query(w))
        _browse(w, 1)
    _leave(w)


def _rephrase(w: SessionWriter, query: str) -> str:
    if w.chance(0.5):
        return _typo(w, query)
    words = query.split()
    return words[-1] + "s" if len(words) > 1 and w.chance(0.5) else query.replace(" ", "")


def step_looper(w: SessionWriter) -> None:
    """Goes back and forth between two checkout steps (cart and shipping, or shipping and payment).

    Friction begins at the first checkout step that returns to a visited one.
    """
    _land(w)
    _add_to_cart(w, _browse(w, w.between(1, 3))[-1])
    _open_cart(w)
    w.click(ELEMENTS["#checkout"])
    w.pause(_LOAD_MS, 0.5)
    _step(w, "shipping")
    for field in SHIPPING_FIELDS:
        _fill_field(w, field)
    if w.chance(0.5):
        here, there = "shipping", "cart"
    else:
        _submit(w, "#continue", "shipping")
        _step(w, "payment")
        here, there = "payment", "shipping"
    for _ in range(w.between(2, 4)):
        w.pause(_GLANCE_MS)
        if there == "cart":
            w.click(ELEMENTS["#edit-cart"])
        else:
            w.emit("back")
        w.pause(_LOAD_MS, 0.5)
        w.mark_friction(_step(w, there))
        here, there = there, here
    w.pause(_GLANCE_MS)
    if here != "cart" and w.chance(0.4):  # sorted it out after all
        if here == "shipping":
            _submit(w, "#continue", "shipping")
            _step(w, "payment")
        for field in PAYMENT_FIELDS:
            _fill_field(w, field)
        _pay(w)
        _finish_order(w)
    _leave(w)


def churn_risk(w: SessionWriter) -> None:
    """A returning customer whose visits get shorter (and, see ``generate``, sparser).

    The first two visits set the customer's habit; from the third on, each visit
    is a sign of fading interest, and friction begins at its first event.
    """
    engagement = 0.5**w.visit.index
    first = _land(w)
    if w.visit.index >= 2:
        w.mark_friction(first)
    read_ms = _READ_MS * max(0.2, engagement)
    products = _browse(w, max(1, round(w.between(3, 5) * engagement)), read_ms)
    if w.visit.index == 0 and w.chance(0.5):
        _add_to_cart(w, products[-1])
    _leave(w)


def error_burst(w: SessionWriter) -> None:
    """A broken page component throws several errors within seconds.

    Friction begins at the first ``error`` event.
    """
    _land(w)
    _browse(w, w.between(1, 2))
    source = w.pick(tuple(_ERRORS))
    for i in range(w.between(3, 6)):
        w.mark_friction(w.emit("error", error=w.pick(_ERRORS[source]), props={"source": source}))
        w.wait(150 + int(w.rng.exponential(1_500)))
        if i == 1 and w.chance(0.4) and w.page is not None:
            w.goto(w.page)  # a reload does not help
            w.pause(_LOAD_MS, 0.5)
    w.pause(_GLANCE_MS)
    if w.chance(0.3):
        _open(w, ELEMENTS["#help-link"], "/help")
        w.pause(_READ_MS)
    _leave(w)


#: Every story by name, in a fixed order.
STORIES: dict[str, Story] = {
    "clean_buyer": clean_buyer,
    "browser_leaves": browser_leaves,
    "price_hesitant": price_hesitant,
    "rage_clicker": rage_clicker,
    "dead_clicks": dead_clicks,
    "form_struggler": form_struggler,
    "payment_failure": payment_failure,
    "checkout_staller": checkout_staller,
    "search_frustrated": search_frustrated,
    "step_looper": step_looper,
    "churn_risk": churn_risk,
    "error_burst": error_burst,
}
