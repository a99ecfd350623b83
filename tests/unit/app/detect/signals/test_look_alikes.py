"""Look-alikes: what clean shoppers (and crawlers) do that a naive friction rule mistakes for
friction. None of them may cause an intervention.

Each look-alike is a realistic event sequence run through the whole pure pipeline
(``process_event`` per event, the partition's timers as its watermark moves, and a
last ``fire_timers`` well past every silence), as the agent runs it. Where the
look-alike has a friction twin (the same clicks without the trait that excuses
them, or the same path without the step that explains it), the twin is run too
and must fire: it shows the look-alike test is able to fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from app.detect.clicks import ClickRules
from app.detect.pipeline import Outcome, Rules, fire_timers, next_due_ms, process_event
from app.detect.signals import SignalThresholds
from app.ingest.events import ClickEvent
from tables.customer_state import CustomerState
from tests.factories import T0_MS, click

RULES = Rules()
#: The same deployment with no selector lists: only the tracker's props mark a click.
BARE_RULES = Rules(
    thresholds=SignalThresholds(
        click_rules=ClickRules(repeat_click_selectors=(), no_response_selectors=())
    )
)
_HOUR_MS = 3_600_000
# The timers' last look: later than every silence rule (cart idle is 10 min) and the
# session timeout (30 min).
_QUIET_AFTER_MS = 2 * _HOUR_MS
_MAX_TIMER_ROUNDS = 4  # as the runtime: a few rounds, never a spin


@dataclass
class Run:
    """Everything the pipeline sent or held back for one customer's events."""

    interventions: list[dict[str, Any]] = field(default_factory=list)
    suppressed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        return [i["reason"] for i in self.interventions]

    def take(self, outcome: Outcome) -> CustomerState | None:
        self.interventions.extend(outcome.interventions)
        self.suppressed.extend(outcome.suppressed)
        return outcome.state


def run(events: list[ClickEvent], rules: Rules = RULES) -> Run:
    """Events in arrival order through the pipeline, timers fired as the watermark moves."""
    result = Run()
    state: CustomerState | None = None
    watermark_ms = 0
    lateness_ms = rules.time.allowed_lateness_ms
    for event in events:
        watermark_ms = max(watermark_ms, event.ts_ms - lateness_ms)
        state = _fire_due(result, state, watermark_ms, rules)
        state = result.take(process_event(state, event, rules, watermark_ms, event.ts_ms))
    end_ms = max(e.ts_ms for e in events) + _QUIET_AFTER_MS
    _fire_due(result, state, end_ms, rules)
    return result


def _fire_due(
    result: Run, state: CustomerState | None, watermark_ms: int, rules: Rules
) -> CustomerState | None:
    for _round in range(_MAX_TIMER_ROUNDS):
        if state is None:
            return None
        due = next_due_ms(state, rules)
        if due is None or due > watermark_ms:
            return state
        state = result.take(fire_timers(state, watermark_ms, rules, watermark_ms))
    return state


def at(seconds: float, type: str = "click", **fields: Any) -> ClickEvent:
    """An event ``seconds`` after T0."""
    return click(type=type, ts_ms=T0_MS + round(seconds * 1000), **fields)


def press(
    seconds: float,
    element: str,
    tag: str = "button",
    xy: tuple[float, float] = (500, 400),
    **props: Any,
) -> ClickEvent:
    """A click on ``element`` as the tracker reports it (its tag in ``props``)."""
    x, y = xy
    return at(seconds, element=element, x=x, y=y, props={"tag": tag, **props})


def product_page(seconds: float, product_id: str = "p1", **fields: Any) -> ClickEvent:
    page = f"/p/{product_id}"
    return at(seconds, "product_view", page=page, product_id=product_id, value=40.0, **fields)


def assert_quiet(result: Run) -> None:
    assert result.interventions == [], result.reasons


# --- repeated clicks by design ----------------------------------------------------------------


def text_selection(selected: tuple[bool, bool, bool]) -> list[ClickEvent]:
    """Triple click on a paragraph to select it (to copy a size), then reading on."""
    return [
        product_page(0),
        at(20, "scroll", scroll_pct=50),
        *(
            press(31 + 0.12 * i, ".product-description", tag="p", xy=(400 + i, 800), selection=s)
            for i, s in enumerate(selected)
        ),
        at(33, "scroll", scroll_pct=75),
    ]


@pytest.mark.parametrize(
    "selected",
    [
        pytest.param((True, True, True), id="every-click-selects"),
        # A browser changes the selection on the second and third click only.
        pytest.param((False, True, True), id="first-click-collapses"),
    ],
)
def test_triple_click_text_selection(selected: tuple[bool, bool, bool]) -> None:
    assert_quiet(run(text_selection(selected)))


def test_triple_click_without_a_selection_is_a_rage_click() -> None:
    assert run(text_selection((False, False, False))).reasons == ["rage_click"]


def stepper(element: str = "#qty-plus", **props: Any) -> list[ClickEvent]:
    """Raising the quantity to 4 with the + button, then adding to the cart and paying."""
    return [
        product_page(0),
        *(press(12 + 0.18 * i, element, xy=(1070, 433), **props) for i in range(3)),
        press(14, "#add-to-cart", xy=(1000, 470)),
        at(14.4, "add_to_cart", product_id="p1", value=160.0, props={"quantity": 4}),
        at(20, "checkout_step", page="/checkout", step="shipping", value=160.0),
        at(60, "checkout_step", page="/checkout", step="payment", value=160.0),
        at(90, "payment_attempt", value=160.0),
        at(92, "purchase", value=160.0),
    ]


@pytest.mark.parametrize("element", ["#qty-plus", "#qty-minus", "button.Quantity-Increment"])
def test_quantity_stepper(element: str) -> None:
    assert_quiet(run(stepper(element)))


def test_stepper_clicks_are_rage_clicks_to_a_site_without_selector_lists() -> None:
    assert run(stepper(), BARE_RULES).reasons == ["rage_click"]


def test_stepper_marked_by_the_tracker_needs_no_selector_list() -> None:
    assert_quiet(run(stepper("#amount-up", repeat_click=True), BARE_RULES))
    assert run(stepper("#amount-up"), BARE_RULES).reasons == ["rage_click"]


def carousel(arrow: str) -> list[ClickEvent]:
    """Paging through the recommendations carousel, low on a product page."""
    return [
        product_page(0),
        at(25, "scroll", scroll_pct=100),
        *(press(30 + 0.35 * i, arrow, xy=(1180, 1020)) for i in range(4)),
        at(33, "scroll", scroll_pct=80),
        product_page(40, "p2"),
    ]


@pytest.mark.parametrize("arrow", [".carousel-next", ".carousel-prev", "#reco .slider-arrow"])
def test_carousel(arrow: str) -> None:
    assert_quiet(run(carousel(arrow)))


def test_carousel_clicks_without_the_selector_list_are_rage_clicks() -> None:
    assert run(carousel(".carousel-next"), BARE_RULES).reasons == ["rage_click"]


def pagination(loads_pages: bool) -> list[ClickEvent]:
    """Skimming a listing's pages: each next-page click loads a page, or fetches in place."""
    events = [at(0, "page_view", page="/c/shoes")]
    for i in range(4):
        events.append(press(5 + 0.4 * i, ".pagination-next", tag="a", xy=(700, 1900)))
        if loads_pages:
            events.append(at(5.2 + 0.4 * i, "page_view", page=f"/c/shoes?page={i + 2}"))
    events.append(at(12, "scroll", scroll_pct=50))
    return events


@pytest.mark.parametrize("loads_pages", [True, False], ids=["page-loads", "in-place"])
def test_pagination(loads_pages: bool) -> None:
    assert_quiet(run(pagination(loads_pages)))


def test_pagination_without_the_selector_list() -> None:
    # Page loads between the clicks break the chain by themselves; in place, they do not.
    assert_quiet(run(pagination(loads_pages=True), BARE_RULES))
    assert run(pagination(loads_pages=False), BARE_RULES).reasons == ["rage_click"]


def toggles() -> list[ClickEvent]:
    """Grid/list view toggle, then the 'in stock only' switch, flipped back and forth."""
    return [
        at(0, "page_view", page="/c/shoes"),
        *(press(4 + 0.3 * i, ".view-toggle", xy=(1150, 140)) for i in range(4)),
        *(press(9 + 0.4 * i, "#in-stock-switch", tag="input") for i in range(3)),
        at(12, "scroll", scroll_pct=25),
    ]


def test_toggles() -> None:
    assert_quiet(run(toggles()))


def test_toggle_clicks_without_the_selector_list_are_rage_clicks() -> None:
    # The switch is a form control whatever the lists say; the view toggle is not.
    assert run(toggles(), BARE_RULES).reasons == ["rage_click"]


def date_picker() -> list[ClickEvent]:
    """Choosing a delivery date three months ahead: next-month, next-month, ..., a day."""
    return [
        at(0, "checkout_step", page="/checkout", step="shipping", value=80.0),
        at(1, "add_to_cart", product_id="p1", value=80.0),
        press(20, "#delivery-date", tag="input"),
        *(press(21 + 0.25 * i, ".datepicker-next-month", xy=(700, 300)) for i in range(4)),
        press(23, ".datepicker-day[data-day='14']", tag="td"),
        at(23.1, "form_input", field="delivery_date"),
        at(40, "checkout_step", page="/checkout", step="payment", value=80.0),
        at(70, "payment_attempt", value=80.0),
        at(71, "purchase", value=80.0),
    ]


def test_date_picker() -> None:
    assert_quiet(run(date_picker()))


def test_date_picker_arrows_without_the_selector_list_are_rage_clicks() -> None:
    assert run(date_picker(), BARE_RULES).reasons == ["rage_click"]


@pytest.mark.parametrize(
    ("props", "settings"),
    [
        pytest.param({"repeat_click": True}, (), id="props-flag"),
        pytest.param({}, ("spin-wheel",), id="selector-setting"),
        pytest.param({}, ("SPIN-WHEEL",), id="selector-setting-any-case"),
    ],
)
def test_site_marks_an_element_as_clicked_repeatedly(
    props: dict[str, Any], settings: tuple[str, ...]
) -> None:
    rules = Rules(SignalThresholds(click_rules=ClickRules(repeat_click_selectors=settings)))
    spins = [
        at(0, "page_view", page="/win"),
        *(press(3 + 0.2 * i, "#spin-wheel", **props) for i in range(5)),
    ]

    assert_quiet(run(spins, rules))
    assert run(
        [replace(e, props={"tag": "button"}) if e.type == "click" else e for e in spins], BARE_RULES
    ).reasons == ["rage_click"]


def double_submit(clicks: int) -> list[ClickEvent]:
    """Double-clicking 'Place order' (a habit from the desktop), then the confirmation."""
    return [
        at(0, "checkout_step", page="/checkout", step="review", value=50.0),
        *(press(8 + 0.15 * i, "#place-order", xy=(1040, 640)) for i in range(clicks)),
        at(9.5, "purchase", page="/thanks", value=50.0),
    ]


def test_double_click_on_place_order() -> None:
    assert_quiet(run(double_submit(2)))
    assert run(double_submit(3)).reasons == ["rage_click"]


# --- fast, slow and silent answers ------------------------------------------------------------


def saved_details_checkout(answered: bool) -> list[ClickEvent]:
    """A returning customer with a saved address and card: Continue, Continue, Pay, in seconds.

    The button sits at the same spot on every step, so three clicks land within a second
    and 30 px; each step's page in between shows they were answered.
    """
    steps = [("shipping", 0.0), ("payment", 0.45), ("review", 0.9)]
    events = [at(0, "checkout_step", page="/checkout", step="cart", value=60.0)]
    for name, dt in steps:
        events.append(press(5 + dt, "#continue", xy=(1040, 720)))
        if answered:
            events.append(at(5.2 + dt, "checkout_step", page="/checkout", step=name, value=60.0))
    if answered:
        events += [press(8, "#place-order", xy=(1040, 640)), at(9, "purchase", value=60.0)]
    return events


def test_fast_legitimate_continue_clicks() -> None:
    assert_quiet(run(saved_details_checkout(answered=True)))


def test_continue_clicks_nothing_answers_are_a_rage_click() -> None:
    # Stuck at the cart with no order, the customer also gets the reminder later.
    reasons = run(saved_details_checkout(answered=False)).reasons
    assert reasons == ["rage_click", "cart_abandonment_risk"]


def no_response_buttons(**download: Any) -> list[ClickEvent]:
    """On the order confirmation: print the receipt, download the invoice, copy the order link."""
    return [
        at(0, "purchase", page="/thanks", value=75.0),
        press(10, "#print-receipt"),
        press(15, "#download-invoice", tag="a", **download),
        press(22, "#copy-link"),
        press(30, "button.share-order"),
    ]


def test_download_print_copy_and_share_buttons() -> None:
    assert_quiet(run(no_response_buttons(download=True)))


def test_the_tracker_alone_marks_a_download() -> None:
    only_download = no_response_buttons(download=True)[:3]
    assert_quiet(run(only_download, BARE_RULES))


def test_buttons_that_answer_nothing_without_the_selector_list_are_dead_clicks() -> None:
    assert run(no_response_buttons(), BARE_RULES).reasons == ["dead_click"]


def slow_responses(response_s: float) -> list[ClickEvent]:
    """A slow shop: every click is answered, but only after ``response_s``."""
    return [
        at(0, "page_view", page="/"),
        press(5, "#nav-shoes", tag="a"),
        at(5 + response_s, "page_view", page="/c/shoes"),
        press(15, ".product-card[data-id='p1']", tag="a"),
        product_page(15 + response_s),
        press(40, "#add-to-cart", xy=(1000, 470)),
        at(40 + response_s, "add_to_cart", product_id="p1", value=40.0),
        at(45, "purchase", value=40.0),
    ]


@pytest.mark.parametrize("response_s", [0.3, 1.8, 2.5])
def test_slow_responses(response_s: float) -> None:
    assert_quiet(run(slow_responses(response_s)))


def test_responses_slower_than_the_wait_are_dead_clicks() -> None:
    assert run(slow_responses(2.501)).reasons == ["dead_click"]


def test_one_very_slow_response_and_an_impatient_second_click() -> None:
    events = [
        at(0, "checkout_step", page="/checkout", step="payment", value=90.0),
        press(30, "#pay", xy=(1040, 680)),
        press(31.5, "#pay", xy=(1041, 680)),  # "did it work?"
        at(34, "payment_attempt", value=90.0),
        at(35, "purchase", page="/thanks", value=90.0),
    ]

    assert_quiet(run(events))


# --- checkout paths ---------------------------------------------------------------------------


def checkout(path: list[str], cart_edits: dict[int, str] | None = None) -> list[ClickEvent]:
    """Checkout steps 20 s apart; ``cart_edits`` adds or removes an item after step i."""
    edits = cart_edits or {}
    events = [at(0, "add_to_cart", product_id="p1", value=30.0, page="/p/p1")]
    for i, name in enumerate(path):
        events.append(at(20 * (i + 1), "checkout_step", page="/checkout", step=name, value=30.0))
        if i in edits:
            events.append(at(20 * (i + 1) + 5, edits[i], product_id="p2", value=12.0))
    events.append(at(20 * (len(path) + 1), "purchase", page="/thanks", value=30.0))
    return events


REFRESHES = ["cart", "shipping", "shipping", "payment", "payment", "payment", "review"]
BACK_ONCE = ["cart", "shipping", "payment", "shipping", "payment", "review"]
EDITS = [
    "cart",
    "shipping",
    "payment",
    "cart",
    "shipping",
    "payment",
    "cart",
    "shipping",
    "payment",
    "review",
]
LOOP = ["cart", "shipping", "payment", "shipping", "payment", "shipping", "payment", "review"]


@pytest.mark.parametrize(
    ("path", "edits"),
    [
        pytest.param(REFRESHES, None, id="refresh-re-sends-a-step"),
        pytest.param(BACK_ONCE, None, id="back-once-to-check-the-address"),
        pytest.param(
            EDITS, {3: "add_to_cart", 6: "remove_from_cart"}, id="editing-the-cart-mid-checkout"
        ),
    ],
)
def test_checkout_paths_that_are_not_loops(path: list[str], edits: dict[int, str] | None) -> None:
    assert_quiet(run(checkout(path, edits)))


@pytest.mark.parametrize(
    "path",
    [pytest.param(EDITS, id="the-same-path-without-the-edits"), pytest.param(LOOP, id="loop")],
)
def test_checkout_loops(path: list[str]) -> None:
    assert run(checkout(path)).reasons == ["step_loop"]


def test_refresh_arriving_out_of_order_is_still_a_refresh() -> None:
    events = checkout(["cart", "shipping", "payment", "payment", "review"])
    # The refreshed step's event overtakes the first one (a slow request, 1 s behind).
    events[3], events[4] = replace(events[4], ts_ms=events[3].ts_ms + 1000), events[3]

    assert_quiet(run(events))


# --- quiet ------------------------------------------------------------------------------------


def evening_then_morning(with_cart: bool, session_id: str = "s2") -> list[ClickEvent]:
    """Browsing at 22:40, nothing for the night, back the next morning."""
    evening = [
        at(0, "page_view", page="/"),
        product_page(30, "p1"),
        at(70, "search", page="/search", query="rain jacket", results=12),
        product_page(90, "p2"),
    ]
    if with_cart:
        evening.append(at(120, "add_to_cart", product_id="p2", value=89.0))
    morning_s = 120 + 8 * 3600
    morning = [
        at(morning_s, "page_view", page="/", session_id=session_id),
        product_page(morning_s + 40, "p3", session_id=session_id),
    ]
    return [*evening, *morning]


@pytest.mark.parametrize("session_id", ["s2", "s1"], ids=["new-session-id", "tab-left-open"])
def test_night_time_quiet(session_id: str) -> None:
    assert_quiet(run(evening_then_morning(with_cart=False, session_id=session_id)))


def test_a_cart_left_for_the_night_is_a_reminder() -> None:
    assert run(evening_then_morning(with_cart=True)).reasons == ["cart_abandonment_risk"]


def test_product_page_left_open_overnight_is_not_a_long_read() -> None:
    events = [
        product_page(0, "p1"),
        at(30, "scroll", scroll_pct=40),
        at(30 + 8 * 3600, "scroll", scroll_pct=60),  # the same tab, the next morning
        at(31 + 8 * 3600, "scroll", scroll_pct=80),
    ]

    assert_quiet(run(events))


# --- automated traffic ------------------------------------------------------------------------

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def crawl(gap_ms: int, fetches_first: int = 20, **props: Any) -> list[ClickEvent]:
    """Fetching product pages, then p1 over and over, pressing every button it finds."""
    pages = [f"p{i + 10}" for i in range(fetches_first)] + ["p1", "p1", "p1"]
    events = []
    for i, product_id in enumerate(pages):
        ts_ms = T0_MS + 2 * i * gap_ms
        events += [
            click(
                type="product_view",
                product_id=product_id,
                page=f"/p/{product_id}",
                ts_ms=ts_ms,
                props=props or None,
            ),
            click(
                element="#add-to-cart",
                x=1000,
                y=470,
                ts_ms=ts_ms + gap_ms,
                props={"tag": "button", **props},
            ),
        ]
    return events


def assert_held_back_as_bot(result: Run) -> None:
    assert_quiet(result)
    assert result.suppressed
    assert {cause for _, cause in result.suppressed} == {"bot"}


def test_declared_crawler_gets_no_intervention() -> None:
    assert_held_back_as_bot(run(crawl(gap_ms=2_000, fetches_first=0, user_agent=GOOGLEBOT)))


def test_no_think_time_gets_no_intervention() -> None:
    assert_held_back_as_bot(run(crawl(gap_ms=60)))


@pytest.mark.xfail(
    strict=True,
    reason="a session is known to be automated only after bot_min_events fast events: "
    "friction a crawler shows before that still goes out",
)
def test_no_think_time_from_the_first_event_gets_no_intervention() -> None:
    assert_held_back_as_bot(run(crawl(gap_ms=60, fetches_first=0)))


def test_a_crawler_that_comes_back_is_held_back_from_its_first_events() -> None:
    # Known as automated on its first visit; the next day it is known after five events,
    # before it shows p1 a third time.
    first_visit = crawl(gap_ms=60)
    next_visit = [replace(e, session_id="s2", ts_ms=e.ts_ms + 86_400_000)
                  for e in crawl(gap_ms=60, fetches_first=0)]  # fmt: skip

    assert_held_back_as_bot(run(first_visit + next_visit))


def test_a_person_on_the_id_a_crawler_used_still_gets_friction() -> None:
    first_visit = crawl(gap_ms=60)
    next_visit = [replace(e, session_id="s2", ts_ms=e.ts_ms + 86_400_000)
                  for e in crawl(gap_ms=1_000, fetches_first=0)]  # fmt: skip

    assert run(first_visit + next_visit).reasons == ["product_hesitation"]


def test_a_crawlers_held_back_silence_is_asked_once() -> None:
    at_payment = at(0, "checkout_step", step="payment", value=30.0,
                    props={"user_agent": GOOGLEBOT})  # fmt: skip
    state = process_event(None, at_payment, RULES, 0, at_payment.ts_ms).state
    assert state is not None
    watermark_ms = at_payment.ts_ms + 120_000  # the stall is due; the session still live

    first = fire_timers(state, watermark_ms, RULES, watermark_ms)

    assert first.suppressed == [("checkout_stall", "bot")]
    assert first.state is not None
    due = next_due_ms(first.state, RULES)
    assert due is None or due > watermark_ms


@pytest.mark.parametrize("fetches_first", [0, 20])
def test_the_same_pages_at_a_persons_pace_are_friction(fetches_first: int) -> None:
    assert run(crawl(gap_ms=1_000, fetches_first=fetches_first)).reasons == ["product_hesitation"]
