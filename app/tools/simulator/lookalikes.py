"""Look-alikes: things clean shoppers do that look like friction to a naive rule.

Each episode is drawn with its ``Behaviour.lookalike_p`` where the clean stories
can show it, and is recorded on the writer (and so in the session's label). They
are written to the published exclusions (``FRICTION-RULES.md``), not around the
detectors: repeated clicks on steppers, carousels and toggles, text selection,
clicks that answer nothing by design, going back one step, editing the cart,
reloading a step, a slow page, long quiet with an empty cart.
"""

from __future__ import annotations

from app.tools.simulator.blocks import (
    DEAD_QUIET_MS,
    add_to_cart,
    fill_payment,
    fill_shipping,
    finish_order,
    load,
    open_link,
    pay,
    remove_from_cart,
    scroll,
    step,
    to_payment,
    to_shipping,
)
from app.tools.simulator.catalogue import ELEMENTS, Element, Product, category_page
from app.tools.simulator.session import SessionWriter

__all__ = [
    "arm_slow_load",
    "checkout",
    "listing_lookalikes",
    "product_lookalikes",
    "put_in_cart",
    "receipt_buttons",
]

_MINUTE_MS = 60_000


def arm_slow_load(w: SessionWriter) -> None:
    """Perhaps make one of the next few page loads slow (``slow_load``, done by ``load``)."""
    if w.chance(w.behaviour.lookalike_p["slow_load"]):
        w.slow_load_in = w.between(0, 5)


def listing_lookalikes(w: SessionWriter, quiet_ok: bool = False) -> None:
    """On the favourite category's listing: next pages, the view toggle, a long quiet spell."""
    paginate = w.lookalike("pagination")
    toggle = w.lookalike("filter_toggle")
    quiet = quiet_ok and not w.cart and w.lookalike("long_quiet")
    if not (paginate or toggle or quiet):
        return
    listing = category_page(w.visit.favourite_category)
    if w.page != listing:
        open_link(w, w.shop.nav_link(w.visit.favourite_category), listing)
        w.pause(w.behaviour.glance_ms / 2)
    if toggle:
        _repeat_clicks(w, ELEMENTS[".view-toggle"], w.between(2, 4), (250, 500))
        w.wait_between(300, 1_000)
        w.emit("scroll", scroll_pct=25)
        w.pause(w.behaviour.glance_ms / 2)
    if quiet:
        # Away from the tab (a call, the kettle): minutes, but not the 30 of a new session.
        w.wait_between(4 * _MINUTE_MS, 20 * _MINUTE_MS)
    if paginate:
        for page in range(2, 2 + w.between(1, 3)):
            open_link(w, ELEMENTS[".pagination-next"], f"{listing}?page={page}")
            w.pause(w.behaviour.glance_ms)
            scroll(w, w.between(1, 3))


def product_lookalikes(w: SessionWriter, share_ok: bool = False) -> None:
    """On a product page: the recommendations carousel, selecting text, copy link or share."""
    if w.lookalike("carousel"):
        arrow = ELEMENTS[w.pick((".carousel-next", ".carousel-next", ".carousel-prev"))]
        _repeat_clicks(w, arrow, w.between(2, 3), (250, 600))
        # The carousel is low on the page: the customer scrolls on to it.
        w.wait_between(300, 800)
        w.emit("scroll", scroll_pct=100)
        w.pause(w.behaviour.glance_ms / 2)
    if w.lookalike("text_selection"):
        # A triple click selects a paragraph (to copy a size or a material).
        _repeat_clicks(w, ELEMENTS[".product-description"], 3, (60, 150), selection=True)
        w.wait_between(500, 2_000)
        w.emit("scroll", scroll_pct=75)
        w.pause(w.behaviour.glance_ms / 2)
    if share_ok and w.lookalike("no_response_button"):
        for selector in w.sample(("#copy-link", "#share"), w.between(1, 2)):
            w.click(ELEMENTS[selector])
            w.pause(DEAD_QUIET_MS, 0.3, min_ms=DEAD_QUIET_MS + 500)


def put_in_cart(w: SessionWriter, product: Product) -> None:
    """Add ``product`` from its page, perhaps raising the quantity with the stepper first."""
    if not w.lookalike("qty_stepper"):
        add_to_cart(w, product)
        return
    extra = w.between(3, 5)
    _repeat_clicks(w, ELEMENTS["#qty-plus"], extra, (100, 250))
    w.wait_between(300, 700)
    w.click(ELEMENTS["#add-to-cart"])
    w.pause(300, 0.4, max_ms=600)
    w.cart.extend([product] * (1 + extra))
    value = round(product.price * (1 + extra), 2)
    w.emit("add_to_cart", product_id=product.product_id, value=value, props={"quantity": 1 + extra})
    w.pause(w.behaviour.step_ms)


def checkout(w: SessionWriter, typo: bool = False) -> None:
    """From the cart page to a placed order, with the look-alikes a clean checkout may show.

    A returning customer often finds their address and card saved and goes
    through in seconds (``fast_continue``); others may reload a step
    (``refresh_step``), go back to the cart to change it (``cart_edit``), go back
    one step once (``back_one_step``) or double-click "place order".
    """
    saved = w.visit.index > 0 and w.chance(0.6)
    fast = saved and not typo and w.lookalike("fast_continue")
    if fast:
        w.wait_between(600, 1_500)
    else:
        w.pause(w.behaviour.glance_ms / 2)
    to_shipping(w)
    if w.lookalike("refresh_step"):
        w.pause(w.behaviour.glance_ms / 2)
        load(w)
        step(w, "shipping")  # the reloaded page reports its step again
    if fast:
        w.wait_between(500, 1_500)
    else:
        fill_shipping(w, typo, saved)
    if len(w.cart) >= 1 and w.lookalike("cart_edit"):
        _edit_cart(w, fast)
    to_payment(w)
    if w.lookalike("back_one_step"):
        w.pause(w.behaviour.glance_ms / 2)
        w.emit("back")
        load(w)
        step(w, "shipping")
        w.pause(w.behaviour.glance_ms / 2)  # checks the address, changes nothing
        to_payment(w)
    if fast:
        w.wait_between(500, 1_500)
    fill_payment(w, saved=fast)
    pay(w)
    finish_order(w, double_click=w.lookalike("double_submit"))


def receipt_buttons(w: SessionWriter) -> None:
    """On the order confirmation: print the receipt, download the invoice (nothing happens)."""
    if not w.lookalike("no_response_button"):
        return
    for selector in w.sample(("#print-receipt", "#download-invoice"), w.between(1, 2)):
        if selector == "#download-invoice":
            w.click(ELEMENTS[selector], download=True)
        else:
            w.click(ELEMENTS[selector])
        w.pause(DEAD_QUIET_MS, 0.3, min_ms=DEAD_QUIET_MS + 500)


def _edit_cart(w: SessionWriter, fast: bool) -> None:
    """From shipping back to the cart; take one product out or add one more; on again."""
    w.click(ELEMENTS["#edit-cart"])
    load(w)
    step(w, "cart")
    w.pause(w.behaviour.glance_ms / 2)
    if len(w.cart) >= 2 and w.chance(0.5):
        remove_from_cart(w, w.cart[-1])
    else:
        product = w.cart[0]
        for _ in range(w.between(1, 2)):
            w.click(ELEMENTS["#qty-plus"])
            add_to_cart(w, product, click=False)
    to_shipping(w)
    # The address is still there.
    if fast:
        w.wait_between(500, 1_500)
    else:
        w.pause(w.behaviour.glance_ms / 2)


def _repeat_clicks(
    w: SessionWriter, element: Element, n: int, gap_ms: tuple[int, int], **props: object
) -> None:
    """``n`` clicks on one spot of ``element`` (a few px apart), ``gap_ms`` between them."""
    first = w.click(element, 0.15, **props)
    for _ in range(n - 1):
        w.wait_between(*gap_ms)
        dx, dy = (max(-3.0, min(3.0, float(d))) for d in w.rng.normal(0.0, 1.0, size=2))
        w.click_at(element, first["x"] + dx, first["y"] + dy, **props)
