"""Building blocks of the stories: landing, browsing, the cart, forms, checkout, leaving.

Think times come from the writer's ``Behaviour`` (the variant's medians), so the
same story runs at another pace under another variant.
"""

from __future__ import annotations

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

__all__ = [
    "DEAD_QUIET_MS",
    "ERRORS",
    "add_to_cart",
    "browse",
    "fill_field",
    "fill_payment",
    "fill_shipping",
    "finish_order",
    "form_error",
    "found_query",
    "land",
    "leave",
    "load",
    "open_cart",
    "open_link",
    "pay",
    "remove_from_cart",
    "scroll",
    "search",
    "slip",
    "step",
    "submit",
    "to_payment",
    "to_shipping",
    "typo",
    "view_product",
]

#: A click nobody answers is followed by nothing but clicks for at least this long
#: (PostHog flags a dead click after 2.5 s without a response, FRICTION-RULES.md).
DEAD_QUIET_MS = 2_500
#: Script errors a broken page component throws, by component.
ERRORS: dict[str, tuple[str, ...]] = {
    "cart-widget": (
        "TypeError: Cannot read properties of undefined (reading 'price')",
        "Failed to fetch /api/cart",
    ),
    "price-api": ("HTTP 503 from /api/prices", "HTTP 504 from /api/prices"),
    "recommendations": ("ChunkLoadError: Loading chunk 417 failed", "HTTP 500 from /api/recs"),
}
_REFERRERS = ("direct", "search", "email", "ads", "social")
# A slow page (the ``slow_load`` look-alike) takes this long to show; any other
# page shows within the first bound.
_SLOW_LOAD_MS = (1_500, 3_000)
_MAX_LOAD_MS = 1_500
# A tab closed later than this would be closed after the 30-minute session timeout.
_MAX_IDLE_MS = 29 * 60_000


def load(w: SessionWriter) -> None:
    """A page load: a few hundred ms, or 1.5-3 s for the one slow page of a ``slow_load`` visit."""
    if w.slow_load_in == 0:
        w.slow_load_in = None
        w.lookalikes.append("slow_load")
        low_ms, high_ms = _SLOW_LOAD_MS
        after_click = bool(w.events) and w.events[-1]["type"] == "click"
        if after_click and w.unanswered_clicks:
            high_ms = DEAD_QUIET_MS - 100  # one unanswered click a visit at most
        load_ms = w.between(low_ms, high_ms)
        if after_click and load_ms >= DEAD_QUIET_MS:
            w.unanswered_clicks += 1
        w.wait(load_ms)
        return
    if w.slow_load_in is not None:
        w.slow_load_in -= 1
    w.pause(w.behaviour.load_ms, 0.5, max_ms=_MAX_LOAD_MS)


def land(w: SessionWriter) -> Event:
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
    w.pause(w.behaviour.glance_ms)
    if roll < 0.8 and w.turn is not None and w.chance(0.5):
        w.take_turn()  # the other device has the shop open too
    return event


def scroll(w: SessionWriter, depth: int, median_ms: float | None = None) -> None:
    """Scroll down through ``depth`` quarters of the page."""
    pause_ms = w.behaviour.glance_ms / 2 if median_ms is None else median_ms
    for quarter in range(1, depth + 1):
        w.emit("scroll", scroll_pct=25 * quarter)
        w.pause(pause_ms)


def open_link(w: SessionWriter, element: Element, page: str) -> Event:
    """Click a link or button that loads ``page``."""
    w.click(element)
    load(w)
    return w.goto(page)


def view_product(w: SessionWriter, product: Product, read_ms: float | None = None) -> Event:
    """Open a product from its category listing, then read the page."""
    read = w.behaviour.read_ms if read_ms is None else read_ms
    listing = category_page(product.category)
    if w.page != listing:
        open_link(w, w.shop.nav_link(product.category), listing)
        w.pause(w.behaviour.glance_ms / 2)
    open_link(w, w.shop.product_card(product), product.page)
    w.wait(5)
    event = w.emit("product_view", product_id=product.product_id, value=product.price)
    w.pause(read / 3)
    scroll(w, w.between(0, 3), read / 4)
    return event


def browse(w: SessionWriter, n: int, read_ms: float | None = None) -> list[Product]:
    """View ``n`` products not seen yet in this visit, mostly of the favourite category.

    Between two products, back on the listing, the customer may turn to their other
    device, if they have one.
    """
    category = w.visit.favourite_category if w.chance(0.7) else w.pick(w.shop.categories)
    seen = {e["product_id"] for e in w.events if e["type"] == "product_view"}
    products = w.sample([p for p in w.shop.in_category(category) if p.product_id not in seen], n)
    for i, product in enumerate(products):
        if i > 0 and w.turn is not None and w.chance(0.5):
            listing = category_page(category)
            open_link(w, w.shop.nav_link(category), listing)
            w.take_turn()
        view_product(w, product, read_ms)
    return products


def add_to_cart(w: SessionWriter, product: Product, click: bool = True) -> None:
    if click:
        w.click(ELEMENTS["#add-to-cart"])
    w.pause(300, 0.4)
    w.cart.append(product)
    w.emit("add_to_cart", product_id=product.product_id, value=product.price)
    w.pause(w.behaviour.step_ms)


def remove_from_cart(w: SessionWriter, product: Product) -> None:
    w.click(ELEMENTS["#remove-item"])
    w.pause(300, 0.4)
    w.cart.remove(product)
    w.emit("remove_from_cart", product_id=product.product_id, value=product.price)
    w.pause(w.behaviour.step_ms)


def step(w: SessionWriter, name: str) -> Event:
    """Load a checkout step's page and report the step."""
    w.goto(STEP_PAGES[name])
    w.wait(5)
    event = w.emit("checkout_step", step=name, value=w.cart_value)
    w.pause(w.behaviour.step_ms)
    return event


def open_cart(w: SessionWriter) -> Event:
    w.click(ELEMENTS["#cart-icon"])
    load(w)
    return step(w, "cart")


def fill_field(w: SessionWriter, field: str, typing_ms: float | None = None) -> None:
    w.emit("form_focus", field=field)
    w.pause(w.behaviour.field_ms if typing_ms is None else typing_ms)
    w.emit("form_input", field=field)
    w.pause(200, 0.5)
    w.emit("form_blur", field=field)
    w.pause(w.behaviour.step_ms / 2)


def submit(w: SessionWriter, button: str, form: str) -> None:
    w.click(ELEMENTS[button])
    w.wait(30)
    w.emit("form_submit", props={"form": form})
    load(w)


def form_error(w: SessionWriter, field: str) -> Event:
    return w.emit("form_error", field=field, error=FORM_ERRORS[field])


def to_shipping(w: SessionWriter) -> Event:
    """From the cart page to the shipping step."""
    w.click(ELEMENTS["#checkout"])
    load(w)
    return step(w, "shipping")


def fill_shipping(w: SessionWriter, typo: bool = False, saved: bool = False) -> None:
    """Fill the shipping form (unless the address is ``saved``); a ``typo`` is fixed at once."""
    if not saved:
        for field in SHIPPING_FIELDS:
            fill_field(w, field)
    if typo:
        # One mistyped field, fixed at once: a slip, not a struggle.
        field = w.pick(("email", "postcode"))
        submit(w, "#continue", "shipping")
        form_error(w, field)
        w.pause(w.behaviour.step_ms)
        fill_field(w, field)


def to_payment(w: SessionWriter) -> Event:
    """Send the shipping form and load the payment step."""
    submit(w, "#continue", "shipping")
    return step(w, "payment")


def fill_payment(w: SessionWriter, saved: bool = False) -> None:
    """Type the card (a saved card needs only its security code)."""
    for field in ("card_cvc",) if saved else PAYMENT_FIELDS:
        fill_field(w, field)


def pay(w: SessionWriter) -> Event:
    submit(w, "#pay", "payment")
    return w.emit("payment_attempt", value=w.cart_value, props={"method": "card"})


def finish_order(w: SessionWriter, double_click: bool = False) -> None:
    """From a successful payment attempt to the order confirmation."""
    w.pause(1_500, 0.5)
    step(w, "review")
    w.pause(w.behaviour.glance_ms)
    first = w.click(ELEMENTS["#place-order"])
    if double_click:
        w.wait_between(80, 200)
        w.click_at(ELEMENTS["#place-order"], first["x"] + 1, first["y"])
    w.pause(800, 0.3, max_ms=2_000)
    w.emit("purchase", value=w.cart_value, props={"items": len(w.cart)})
    w.cart.clear()
    load(w)
    w.goto("/order/confirmed")
    w.pause(w.behaviour.glance_ms)


def search(w: SessionWriter, query: str) -> Event:
    w.click(ELEMENTS["#search-box"])
    w.pause(2_500, 0.5)
    event = w.emit("search", query=query, results=w.shop.search_results(query))
    load(w)
    w.goto(search_page(query))
    w.pause(w.behaviour.glance_ms / 2)
    return event


def typo(w: SessionWriter, text: str) -> str:
    """``text`` with two neighbouring letters swapped."""
    letters = [
        i
        for i in range(len(text) - 1)
        if text[i].isalpha() and text[i + 1].isalpha() and text[i] != text[i + 1]
    ]
    i = w.pick(letters)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def found_query(w: SessionWriter) -> str:
    """Words of a real product's name, so the search finds it."""
    words = w.pick(w.shop.in_category(w.visit.favourite_category)).name.split()
    return " ".join(words[1:] if w.chance(0.5) else words[2:])


def slip(w: SessionWriter) -> None:
    """Sometimes one harmless slip: a double click, one back, one unanswered click, one error."""
    if not w.chance(w.behaviour.slip_p):
        return
    kind = w.pick(("double_click", "double_click", "back", "back", "dead_click", "error"))
    if kind == "dead_click" and w.unanswered_clicks:
        kind = "double_click"  # one unanswered click a visit is a slip; two would be friction
    if kind == "double_click":
        first = w.click(ELEMENTS["#size-select"])
        w.pause(120, 0.3)
        w.click_at(ELEMENTS["#size-select"], first["x"] + 1, first["y"])
    elif kind == "back" and w.history:
        w.emit("back")
        load(w)
        w.goto(w.history[-1])
    elif kind == "dead_click":
        w.click(w.pick(DEAD_ELEMENTS))
        w.unanswered_clicks += 1
        w.pause(DEAD_QUIET_MS, 0.3, min_ms=DEAD_QUIET_MS + 200)
        return
    elif kind == "error":
        w.emit("error", error=ERRORS["recommendations"][1], props={"source": "recommendations"})
    w.pause(w.behaviour.glance_ms / 2)


def leave(w: SessionWriter, idle_median_ms: float | None = None, min_idle_ms: int = 40) -> None:
    """End the visit: the tab closes after some idle time (``session_end``).

    Whether the browser manages to report it is a fault of the network, decided
    later (``Faults.session_end_share``).
    """
    idle_ms = w.behaviour.leave_ms if idle_median_ms is None else idle_median_ms
    w.pause(idle_ms, 0.8, min_ms=min_idle_ms, max_ms=min(4 * idle_ms, _MAX_IDLE_MS))
    w.emit("session_end")
