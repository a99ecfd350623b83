"""Shopper stories: one function per kind of visit, writing its events through a ``SessionWriter``.

Each story writes one whole session and, when the story has friction, marks the
event from which an intervention is called for. ``EXPECTED`` says which
intervention (kind, reason) that is. Clean stories carry look-alikes of the
frictions (``lookalikes``); friction stories are written the way the friction
happens, not to the threshold of a rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from app.tools.simulator.blocks import (
    DEAD_QUIET_MS,
    ERRORS,
    add_to_cart,
    browse,
    fill_field,
    fill_payment,
    fill_shipping,
    finish_order,
    form_error,
    found_query,
    land,
    leave,
    load,
    open_cart,
    open_link,
    pay,
    remove_from_cart,
    search,
    slip,
    step,
    submit,
    to_payment,
    to_shipping,
    typo,
    view_product,
)
from app.tools.simulator.catalogue import (
    DEAD_ELEMENTS,
    ELEMENTS,
    FORM_ERRORS,
    PAYMENT_FIELDS,
    PROFILE_FIELDS,
    REVIEW_FIELDS,
    SHIPPING_FIELDS,
    Element,
    category_page,
)
from app.tools.simulator.lookalikes import (
    arm_slow_load,
    checkout,
    listing_lookalikes,
    product_lookalikes,
    put_in_cart,
    receipt_buttons,
)
from app.tools.simulator.session import SessionWriter

__all__ = [
    "CUSTOMER_STORIES",
    "EXPECTED",
    "SECOND_DEVICE",
    "STORIES",
    "InterventionKind",
    "Story",
    "other_device_turn",
]

Story = Callable[[SessionWriter], None]
#: What an intervention asks the chatbot to do (contract §2).
InterventionKind = Literal["assist", "offer", "reminder", "reward"]

_MINUTE_MS = 60_000
_DECLINES = ("card_declined", "insufficient_funds", "do_not_honor", "3ds_failed")
# What crawlers say they are, when they do (real user-agent strings, shortened).
_BOT_AGENTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/124.0.0.0 Safari/537.36",
    "Screaming Frog SEO Spider/19.4",
    "Mozilla/5.0 (compatible; PetalBot; +https://webmaster.petalsearch.com/site/petalbot)",
)

# Friction stories, with the intervention (kind, reason) each one calls for.
EXPECTED: dict[str, tuple[InterventionKind, str] | None] = {
    "clean_buyer": None,
    "browser_leaves": None,
    "bot": None,
    "price_hesitant": ("offer", "product_hesitation"),
    "rage_clicker": ("assist", "rage_click"),
    "dead_clicks": ("assist", "dead_click"),
    "form_struggler": ("assist", "form_struggle"),
    "payment_failure": ("assist", "payment_failure"),
    "checkout_staller": ("assist", "checkout_stall"),
    "search_frustrated": ("assist", "search_frustration"),
    "step_looper": ("assist", "step_loop"),
    "error_burst": ("assist", "error_burst"),
    "cart_abandoner": ("reminder", "cart_abandonment_risk"),
    "micro_action": ("reward", "micro_action"),
    "churn_risk": ("reminder", "rhythm_change"),
}


# Clean stories.


def clean_buyer(w: SessionWriter) -> None:
    """Browses a little, adds one or two products, checks out and pays. No friction."""
    land(w)
    arm_slow_load(w)
    listing_lookalikes(w)
    products = browse(w, w.between(1, 4))
    product_lookalikes(w)
    put_in_cart(w, products[-1])
    slip(w)
    if len(products) > 1 and w.chance(0.3):
        view_product(w, products[0])
        add_to_cart(w, products[0])
    open_cart(w)
    checkout(w, typo=w.chance(0.08))
    receipt_buttons(w)
    leave(w)


def browser_leaves(w: SessionWriter) -> None:
    """Looks around, perhaps searches, and leaves without buying. No friction."""
    land(w)
    arm_slow_load(w)
    listing_lookalikes(w, quiet_ok=True)
    if w.chance(0.3):
        query = found_query(w)
        if w.chance(0.05):
            search(w, typo(w, query))  # a typo, fixed at once
        search(w, query)
    for i in range(w.between(1, 2)):
        browse(w, w.between(1, 4))
        if i == 0:
            product_lookalikes(w, share_ok=True)
    slip(w)
    leave(w)


def bot(w: SessionWriter) -> None:
    """A crawler: pages and clicks with no time to think, no cart to buy; nothing to help.

    Some say what they are in ``props.user_agent``; all are far faster than people.
    Any intervention here is a false alarm.
    """
    says = w.chance(w.behaviour.bot_user_agent_share)
    props: dict[str, Any] = {"user_agent": w.pick(_BOT_AGENTS)} if says else {}
    extra = {"props": props} if props else {}

    def gap() -> None:
        w.pause(w.behaviour.bot_gap_ms, 0.5, min_ms=5)

    def visit(page: str, product_id: str | None = None, value: float | None = None) -> None:
        w.goto(page, **extra)
        if product_id is not None:
            w.wait(3)
            w.emit("product_view", product_id=product_id, value=value, **extra)
        gap()

    def click(element: Element) -> None:
        w.click(element, **props)
        gap()

    visit("/")
    target = w.between(25, 90)
    while len(w.events) < target:
        category = w.pick(w.shop.categories)
        click(w.shop.nav_link(category))
        visit(category_page(category))
        for product in w.sample(w.shop.in_category(category), w.between(2, 6)):
            click(w.shop.product_card(product))
            visit(product.page, product.product_id, product.price)
            roll = float(w.rng.random())
            if roll < 0.15:  # price scrapers put things in the cart to see the total
                click(ELEMENTS["#add-to-cart"])
                w.cart.append(product)
                w.emit("add_to_cart", product_id=product.product_id, value=product.price,
                       **extra)  # fmt: skip
                gap()
            elif roll < 0.35:  # clicks everything on the page, reacting or not
                for element in w.sample(DEAD_ELEMENTS, w.between(2, 4)):
                    click(element)
        if w.chance(0.3):
            for page in range(2, 2 + w.between(1, 4)):
                click(ELEMENTS[".pagination-next"])
                visit(f"{category_page(category)}?page={page}")


# Friction stories.


def price_hesitant(w: SessionWriter) -> None:
    """Keeps coming back to one product, reads it at length, adds it to the cart and takes it out.

    Friction begins at the first return to that product.
    """
    read_ms = 2.5 * w.behaviour.read_ms
    land(w)
    target = browse(w, 1)[0]
    for _ in range(w.between(2, 3)):
        others = [p for p in w.shop.in_category(target.category) if p != target]
        view_product(w, w.pick(others))
        w.mark_friction(view_product(w, target, read_ms))
    add_to_cart(w, target)
    open_cart(w)
    w.pause(w.behaviour.read_ms)
    remove_from_cart(w, target)
    if w.chance(0.5):  # one more try, one more change of mind
        view_product(w, target, w.behaviour.read_ms)
        add_to_cart(w, target)
        open_cart(w)
        w.pause(w.behaviour.read_ms)
        remove_from_cart(w, target)
    leave(w)


def rage_clicker(w: SessionWriter) -> None:
    """Meets a button that does nothing and clicks it again and again.

    Friction begins at the first click of the rapid burst (three clicks or more,
    each within a second of the last, a few px apart).
    """
    land(w)
    product = browse(w, w.between(1, 3))[-1]
    broken = w.pick(("#add-to-cart", "#add-to-cart", "#apply-coupon", "#continue", "#pay"))
    if broken != "#add-to-cart":
        add_to_cart(w, product)
        open_cart(w)
        if broken != "#apply-coupon":
            to_shipping(w)
            fill_shipping(w)
            if broken == "#pay":
                to_payment(w)
                fill_payment(w)
    button = ELEMENTS[broken]
    w.click(button)
    # Nothing happens; the customer waits a moment before hammering it.
    w.wait(1_200)
    w.pause(800, 0.5)
    for _ in range(w.between(1, 2)):
        _rage_burst(w, button)
        w.pause(4_000, 0.5)
    if w.chance(0.3):
        open_link(w, ELEMENTS["#help-link"], "/help")
        w.pause(w.behaviour.read_ms)
    leave(w)


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
    land(w)
    browse(w, w.between(1, 3))
    for _ in range(w.between(3, 6)):
        # At least 600 ms apart: slower than a rage burst.
        w.mark_friction(w.click(w.pick(DEAD_ELEMENTS)))
        w.wait(600)
        w.pause(1_500, 0.5)
    w.pause(DEAD_QUIET_MS, 0.3, min_ms=DEAD_QUIET_MS)
    if w.chance(0.5):
        browse(w, 1)
    leave(w)


def form_struggler(w: SessionWriter) -> None:
    """Fights a form field that keeps being refused: refocuses it, retypes, resubmits.

    Friction begins at the first ``form_error``.
    """
    field_ms = w.behaviour.field_ms
    land(w)
    add_to_cart(w, browse(w, w.between(1, 2))[-1])
    open_cart(w)
    to_shipping(w)
    on_payment = w.chance(0.3)
    if on_payment:
        fill_shipping(w)
        to_payment(w)
    fields, button, form = (
        (PAYMENT_FIELDS, "#pay", "payment")
        if on_payment
        else (SHIPPING_FIELDS, "#continue", "shipping")
    )
    tricky = w.pick([f for f in fields if f in FORM_ERRORS])
    for field in fields:
        fill_field(w, field, 3 * field_ms if field == tricky else field_ms)
    for _ in range(w.between(2, 4)):
        submit(w, button, form)
        w.mark_friction(form_error(w, tricky))
        w.pause(w.behaviour.glance_ms)
        for _ in range(w.between(1, 2)):  # refocus, stare, retype
            fill_field(w, tricky, 3 * field_ms)
    if w.chance(0.45):
        submit(w, button, form)
        if on_payment:
            w.emit("payment_attempt", value=w.cart_value, props={"method": "card"})
        else:
            step(w, "payment")
            fill_payment(w)
            pay(w)
        finish_order(w)
    else:
        w.pause(w.behaviour.read_ms)
    leave(w)


def payment_failure(w: SessionWriter) -> None:
    """Pays and is declined, tries again (perhaps with another card), maybe succeeds.

    Friction begins at the first failed payment.
    """
    land(w)
    add_to_cart(w, browse(w, w.between(1, 3))[-1])
    open_cart(w)
    to_shipping(w)
    fill_shipping(w, saved=w.visit.index > 0 and w.chance(0.6))
    to_payment(w)
    fill_payment(w)
    for _ in range(w.between(1, 3)):
        submit(w, "#pay", "payment")
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
        w.pause(w.behaviour.glance_ms)
        if w.chance(0.5):  # another card
            for field in PAYMENT_FIELDS[:3]:
                fill_field(w, field)
    if w.chance(0.4):
        pay(w)
        finish_order(w)
    leave(w)


def checkout_staller(w: SessionWriter) -> None:
    """Gets to payment (or to the review of a paid order) and goes silent: no purchase.

    Some stop as the payment page shows, some after typing part of the card,
    some on the review page. Friction begins with the silence: at the last event.
    """
    land(w)
    add_to_cart(w, browse(w, w.between(1, 3))[-1])
    open_cart(w)
    to_shipping(w)
    fill_shipping(w, saved=w.visit.index > 0 and w.chance(0.6))
    to_payment(w)
    roll = float(w.rng.random())
    if roll < 0.3:
        for field in PAYMENT_FIELDS[: w.between(1, 2)]:
            fill_field(w, field)
    elif roll < 0.5:
        fill_payment(w)
        pay(w)
        w.pause(1_500, 0.5)
        step(w, "review")
    w.mark_friction(w.events[-1])
    # If the tab is closed at all, it is long after.
    leave(w, idle_median_ms=15 * _MINUTE_MS, min_idle_ms=2 * _MINUTE_MS)


def search_frustrated(w: SessionWriter) -> None:
    """Searches, finds nothing, rephrases, finds nothing again.

    Friction begins at the first search with no results.
    """
    land(w)
    wanted = typo(w, found_query(w)) if w.chance(0.5) else ""
    if not wanted or w.shop.search_results(wanted) > 0:
        wanted = w.pick(w.shop.missing_terms)
    for attempt in range(w.between(2, 4)):
        query = wanted if attempt == 0 else _rephrase(w, wanted)
        found = search(w, query)
        if found["results"] == 0:
            w.mark_friction(found)
    if w.chance(0.4):
        search(w, found_query(w))
        browse(w, 1)
    leave(w)


def _rephrase(w: SessionWriter, query: str) -> str:
    """Another way to ask for what the shop does not have (a rephrasing that happens to
    find something would be a typo fixed, not frustration)."""
    for _ in range(5):
        words = query.split()
        if w.chance(0.5):
            again = typo(w, query)
        elif len(words) > 1 and w.chance(0.5):
            again = words[-1] + "s"
        else:
            again = query.replace(" ", "")
        if w.shop.search_results(again) == 0:
            return again
    return w.pick(w.shop.missing_terms)


def step_looper(w: SessionWriter) -> None:
    """Goes back and forth between two checkout steps, twice or more, changing nothing.

    Between the cart and shipping, or between shipping and payment. Friction
    begins at the first checkout step that returns to an earlier one.
    """
    land(w)
    add_to_cart(w, browse(w, w.between(1, 3))[-1])
    open_cart(w)
    to_shipping(w)
    fill_shipping(w)
    back_to_cart = w.chance(0.5)
    if not back_to_cart:
        to_payment(w)
    for _ in range(w.between(2, 3)):  # round trips
        w.pause(w.behaviour.glance_ms)
        if back_to_cart:
            w.click(ELEMENTS["#edit-cart"])
        else:
            w.emit("back")
        load(w)
        w.mark_friction(step(w, "cart" if back_to_cart else "shipping"))
        w.pause(w.behaviour.glance_ms)  # looks at it again, changes nothing
        if back_to_cart:
            to_shipping(w)
        else:
            to_payment(w)
    if w.chance(0.4):  # sorted it out after all
        if back_to_cart:
            to_payment(w)
        fill_payment(w)
        pay(w)
        finish_order(w)
    leave(w)


def error_burst(w: SessionWriter) -> None:
    """A broken page component throws several errors within seconds.

    Friction begins at the first ``error`` event.
    """
    land(w)
    browse(w, w.between(1, 2))
    source = w.pick(tuple(ERRORS))
    for i in range(w.between(3, 6)):
        w.mark_friction(w.emit("error", error=w.pick(ERRORS[source]), props={"source": source}))
        w.wait(150 + int(w.rng.exponential(1_500)))
        if i == 1 and w.chance(0.4) and w.page is not None:
            w.goto(w.page)  # a reload does not help
            load(w)
    w.pause(w.behaviour.glance_ms)
    if w.chance(0.3):
        open_link(w, ELEMENTS["#help-link"], "/help")
        w.pause(w.behaviour.read_ms)
    leave(w)


def cart_abandoner(w: SessionWriter) -> None:
    """Puts something in the cart, drifts around the shop, and goes quiet with the cart full.

    No checkout. Friction begins with the silence: at the last event before it.
    """
    land(w)
    add_to_cart(w, browse(w, w.between(1, 3))[-1])
    if w.chance(0.3):
        add_to_cart(w, browse(w, 1)[-1])
    for _ in range(w.between(1, 3)):
        roll = float(w.rng.random())
        if roll < 0.5:
            browse(w, 1)
        elif roll < 0.75:
            search(w, found_query(w))
        else:
            open_cart(w)
            w.pause(w.behaviour.glance_ms)
    w.mark_friction(w.events[-1])
    leave(w, idle_median_ms=18 * _MINUTE_MS, min_idle_ms=11 * _MINUTE_MS)


def micro_action(w: SessionWriter) -> None:
    """Does something small worth a thank-you: a first review, a completed profile, or
    a wishlist add after going back and forth over a product.

    Friction (here: where a reward is called for) is at that action.
    """
    land(w)
    action = w.pick([a for a in ("review", "profile") if a not in w.done] + ["wishlist"])
    if action == "review":
        product = browse(w, w.between(1, 2))[-1]
        open_link(w, ELEMENTS["#write-review"], f"{product.page}/review")
        for field in REVIEW_FIELDS:
            fill_field(w, field, 2 * w.behaviour.field_ms if field == "review_body" else None)
        w.click(ELEMENTS["#submit-review"])
        w.wait(30)
        w.mark_friction(w.emit("form_submit", props={"form": "review"}))
        load(w)
        w.goto(product.page)
    elif action == "profile":
        browse(w, w.between(0, 2))
        open_link(w, ELEMENTS["#account-link"], "/account")
        w.pause(w.behaviour.glance_ms / 2)
        w.goto("/account/profile")
        w.pause(w.behaviour.glance_ms / 2)
        for field in PROFILE_FIELDS:
            fill_field(w, field)
        w.click(ELEMENTS["#save-profile"])
        w.wait(30)
        w.mark_friction(w.emit("form_submit", props={"form": "profile"}))
        load(w)
    else:
        target = browse(w, 1)[0]
        for _ in range(w.between(1, 2)):
            others = [p for p in w.shop.in_category(target.category) if p != target]
            view_product(w, w.pick(others))
            view_product(w, target, 1.5 * w.behaviour.read_ms)
        w.mark_friction(w.click(ELEMENTS["#wishlist"], action="wishlist"))
    w.done.add(action)
    w.pause(w.behaviour.glance_ms)
    if w.chance(0.5):
        browse(w, 1)
    leave(w)


def churn_risk(w: SessionWriter) -> None:
    """A returning customer with a habit (``generate`` spaces the visits); once it breaks,
    the visits come after far longer breaks and are much shorter.

    The visits of the habit are clean; in each later one (``Visit.fading``) friction
    begins at its first event.
    """
    first = land(w)
    if not w.visit.fading:
        products = browse(w, w.between(2, 5))
        if w.chance(0.3):
            add_to_cart(w, products[-1])
            open_cart(w)
            checkout(w)
        leave(w)
        return
    w.mark_friction(first)
    if w.chance(0.6):
        browse(w, 1, 0.3 * w.behaviour.read_ms)
    leave(w, idle_median_ms=w.behaviour.leave_ms / 2)


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
    "error_burst": error_burst,
    "cart_abandoner": cart_abandoner,
    "micro_action": micro_action,
    "churn_risk": churn_risk,
    "bot": bot,
}
#: Stories a customer has for all their visits: their weight in a mix is a share of customers.
CUSTOMER_STORIES: tuple[str, ...] = ("churn_risk", "bot")

#: The label story of the sessions a customer's second device writes (``other_device_turn``).
SECOND_DEVICE = "second_device"


def other_device_turn(w: SessionWriter) -> None:
    """One turn on a customer's other tab or device: opens the shop once, then looks at a
    product or two. Clean; it never reports its end (the tab is left open)."""
    if not w.events:
        land(w)
    else:
        w.pause(w.behaviour.glance_ms / 2)
    browse(w, w.between(1, 2))
