"""The tracker, the demo shop and its chat widget in a real browser: Debian's Chromium,
headless, driven by Playwright, against a real worker on the embedded broker and Redis.

Each test opens a fresh browser context: new storage, so the tracker makes a new
anonymous customer, and the test follows that customer on the topics.
"""

from __future__ import annotations

import itertools
import os
import shutil
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.async_api import Browser, BrowserContext, Page, Request, Route, async_playwright

from app.runtime.embedded import EmbeddedStack, free_port
from app.runtime.testing import Services, WorkerProcess, start_worker, worker_env
from app.runtime.topics import CLICKS, CLICKS_FAILED, INTERVENTIONS
from tests.integration.clients import get, read_topic

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no Chromium on PATH: install Debian's chromium (make install does, as root) "
        "to run the browser tests",
    ),
]

# Never a downloaded browser: the system's, with nothing that phones home.
_LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "demo.png"
# What a person leaves between two actions; Playwright alone acts in a few milliseconds,
# which the bot rule (most gaps under 150 ms) rightly takes for a robot.
_THINK_MS = 400
_BUBBLE_TIMEOUT_MS = 10_000

# The moment the widget shows a nudge and the moments of each click on #broken-button,
# both on the page's own clock.
_WATCH = """
window.__clicks = [];
document.addEventListener("click", (e) => {
  if (e.target.closest && e.target.closest("#broken-button")) {
    window.__clicks.push(performance.now());
  }
}, true);
new MutationObserver(() => {
  if (!window.__bubbleAt && document.querySelector(".nfw-message")) {
    window.__bubbleAt = performance.now();
  }
}).observe(document, { childList: true, subtree: true });
"""


class ForeignShop:
    """Another site that embeds the tracker, on an origin of its own (its own port), so the
    tracker runs cross-origin (CORS, keepalive) as on a shop's own domain. Served from
    loopback like the worker: Chromium blocks a public page's requests to loopback."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture(scope="module")
def foreign_shop() -> Iterator[ForeignShop]:
    shop = ForeignShop()
    try:
        yield shop
    finally:
        shop.close()


@pytest.fixture(scope="module")
def demo_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """A broker and Redis of this module's own: its worker must not join the consumer group
    of the workers the other tests share (a rebalance in the middle of their tests)."""
    stack = EmbeddedStack.start(free_port(), free_port(), tmp_path_factory.mktemp("demo-stack"))
    try:
        yield Services(stack.broker_url, stack.redis_url, embedded=True)
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def demo_worker(
    demo_services: Services, foreign_shop: ForeignShop, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """A worker serving the demo shop, and allowing the foreign shop's origin."""
    data_dir = tmp_path_factory.mktemp("demo-worker")
    env = worker_env(demo_services, data_dir, demo="1", cors_origins=foreign_shop.origin)
    process = start_worker(env, data_dir / "worker.log")
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=_LAUNCH_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


class Shopper:
    """One browser context (one anonymous customer) and what its pages did: uncaught
    errors and the feedback the widget posted, with the answers."""

    def __init__(self, context: BrowserContext, page: Page) -> None:
        self.context = context
        self.page = page
        self.page_errors: list[str] = []
        self.feedback: list[tuple[dict[str, Any], int]] = []
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("requestfinished", self._on_finished)

    async def _on_finished(self, request: Request) -> None:
        if request.url.endswith("/v1/feedback") and request.method == "POST":
            response = await request.response()
            body = orjson.loads(request.post_data or "null")
            self.feedback.append((body, response.status if response else 0))

    async def customer_id(self) -> str:
        await self.page.wait_for_function("window.nudgeflow && window.nudgeflow.version")
        customer: str = await self.page.evaluate("nudgeflow.customerId()")
        return customer

    async def stream_open(self) -> None:
        """Wait until the widget's event stream is open: the worker has subscribed it."""
        await self.page.wait_for_selector('.nfw[data-stream="open"]', state="attached")

    async def think(self, ms: int = _THINK_MS) -> None:
        await self.page.wait_for_timeout(ms)

    async def feedback_outcomes(self, want: int, timeout_s: float = 5.0) -> list[tuple[str, int]]:
        deadline = time.monotonic() + timeout_s
        while len(self.feedback) < want and time.monotonic() < deadline:
            await self.page.wait_for_timeout(50)
        return [(body["outcome"], status) for body, status in self.feedback]


@pytest.fixture
async def shopper(browser: Browser) -> AsyncIterator[Shopper]:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    await page.add_init_script(_WATCH)
    try:
        yield Shopper(context, page)
    finally:
        await context.close()


def _header(headers: dict[str, str], name: str) -> str:
    return next(value for key, value in headers.items() if key.lower() == name.lower())


def _for(customer: str, **fields: str) -> Callable[[dict[str, Any]], bool]:
    """Matches the customer's values on a topic, with these fields."""

    def match(value: dict[str, Any]) -> bool:
        return value.get("customer_id") == customer and all(
            value.get(k) == v for k, v in fields.items()
        )

    return match


# --- serving -----------------------------------------------------------------------------


async def test_tracker_is_served_cacheable_and_public(demo_worker: WorkerProcess) -> None:
    status, body, headers = await get(f"{demo_worker.web_url}/v1/tracker.js")
    assert status == 200
    assert headers["Content-Type"] == "application/javascript; charset=utf-8"
    assert headers["Cache-Control"] == "public, max-age=300"
    assert b"nudgeflow" in body and b"/v1/events" in body
    etag = _header(headers, "ETag")
    status, body, again = await get(
        f"{demo_worker.web_url}/v1/tracker.js", headers={"If-None-Match": etag}
    )
    assert (status, body, _header(again, "ETag")) == (304, b"", etag)
    status, _, _ = await get(f"{demo_worker.web_url}/v1/tracker.js", {"If-None-Match": '"x"'})
    assert status == 200


async def test_demo_files_only_from_the_demo_folder(demo_worker: WorkerProcess) -> None:
    base = demo_worker.web_url
    status, body, headers = await get(f"{base}/demo/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert b'<script src="/v1/tracker.js" async></script>' in body
    assert b'id="broken-button"' in body
    for name, content_type in [("checkout.html", "text/html; charset=utf-8"),
                               ("shop.css", "text/css; charset=utf-8"),
                               ("widget.js", "application/javascript; charset=utf-8")]:  # fmt: skip
        status, _, headers = await get(f"{base}/demo/{name}")
        assert (status, headers["Content-Type"]) == (200, content_type), name
    for path in ["/demo/nope.html", "/demo/..%2F..%2Fviews.py", "/demo/%2e%2e/tracker.js",
                 "/demo/../../pyproject.toml",
                 "/demo/..%2f..%2f..%2fconfig%2fsettings.py"]:  # fmt: skip
        status, body, _ = await get(base + path)
        assert status == 404, path
        assert b"Settings" not in body and b"attach_shop_views" not in body


async def test_no_demo_unless_the_setting_is_on(worker: WorkerProcess) -> None:
    status, _, _ = await get(f"{worker.web_url}/v1/tracker.js")
    assert status == 200  # the tracker is always there
    for path in ("/demo/", "/demo/index.html"):
        status, _, _ = await get(worker.web_url + path)
        assert status == 404, path


# --- the demo in the browser -------------------------------------------------------------


async def test_rage_click_opens_the_chat_bubble_within_a_second(
    demo_worker: WorkerProcess, demo_services: Services, shopper: Shopper
) -> None:
    page = shopper.page
    await page.goto(f"{demo_worker.web_url}/demo/")
    customer = await shopper.customer_id()
    await shopper.stream_open()
    await shopper.think()

    button = page.locator("#broken-button")
    for _ in range(3):
        await button.click()
        await shopper.think(150)
    message = page.locator('.nfw-message[data-reason="rage_click"]')
    await message.wait_for(state="visible", timeout=_BUBBLE_TIMEOUT_MS)
    clicks, bubble_at = await page.evaluate("[window.__clicks, window.__bubbleAt]")
    latency_ms = bubble_at - clicks[2]
    print(f"rage click -> chat bubble: {latency_ms:.0f} ms after the third click")
    assert len(clicks) == 3
    assert latency_ms < 1000, f"the bubble took {latency_ms:.0f} ms after the third click"

    assert await message.get_attribute("data-kind") == "assist"
    assert "#broken-button" in await message.locator(".nfw-why").inner_text()
    assert await page.locator(".nfw-panel").is_visible()
    intervention_id = await message.get_attribute("data-intervention-id")
    assert await shopper.feedback_outcomes(1) == [("shown", 202)]

    _SCREENSHOT.parent.mkdir(exist_ok=True)
    png = await page.screenshot(animations="disabled")  # the bubble fully in, not fading
    assert png.startswith(b"\x89PNG")
    # The README's picture: rewritten only when asked, so a test run leaves the tree clean.
    if os.environ.get("NUDGEFLOW_UPDATE_SCREENSHOT") == "1":
        _SCREENSHOT.write_bytes(png)

    await message.locator(".nfw-accept").click()
    assert await shopper.feedback_outcomes(2) == [("shown", 202), ("accepted", 202)]
    assert await message.get_attribute("data-outcome") == "accepted"

    on_kafka = await read_topic(
        demo_services.bootstrap, INTERVENTIONS, _for(customer, reason="rage_click")
    )
    assert [i["intervention_id"] for i in on_kafka] == [intervention_id]
    assert on_kafka[0]["kind"] == "assist"
    assert on_kafka[0]["context"]["page"] == "/demo/"
    assert shopper.page_errors == []


async def test_a_declined_card_brings_help_with_the_payment(
    demo_worker: WorkerProcess, demo_services: Services, shopper: Shopper
) -> None:
    page = shopper.page
    await page.goto(f"{demo_worker.web_url}/demo/product.html?id=lamp")
    customer = await shopper.customer_id()
    await shopper.think()
    await page.click("#add-to-cart")
    await page.wait_for_selector("#added", state="visible")
    await shopper.think()
    # Straight to the checkout: a visit's DOM events come in pairs (a click and the page it
    # opens, a field left and the next one focused), so a long one nears the bot rule's
    # share of gaps under 150 ms however slowly the shopper goes.
    await page.goto(f"{demo_worker.web_url}/demo/checkout.html")
    await shopper.stream_open()
    await _fill(shopper, "#shipping-form", {"full_name": "Ada Lovelace",
                "email": "ada@example.com", "address": "12 St James's Square",
                "city": "London", "postcode": "SW1Y 4JH"})  # fmt: skip
    await page.click("#continue-to-payment")
    await page.wait_for_selector("#payment-form", state="visible")
    await shopper.think()
    await _fill(shopper, "#payment-form", {"card_number": "4000 0000 0000 0002",
                "expiry": "12 / 30", "cvc": "123"})  # fmt: skip
    await page.click("#pay-button")
    await page.wait_for_selector("#payment-error", state="visible")

    message = page.locator('.nfw-message[data-reason="payment_failure"]')
    await message.wait_for(state="visible", timeout=_BUBBLE_TIMEOUT_MS)
    assert "card_declined" in await message.locator(".nfw-why").inner_text()
    assert await message.get_attribute("data-kind") == "assist"
    await message.locator(".nfw-dismiss").click()
    assert await shopper.feedback_outcomes(2) == [("shown", 202), ("dismissed", 202)]

    on_kafka = await read_topic(
        demo_services.bootstrap, INTERVENTIONS, _for(customer, reason="payment_failure")
    )
    assert [i["intervention_id"] for i in on_kafka] == [
        await message.get_attribute("data-intervention-id")
    ]
    assert on_kafka[0]["context"]["step"] == "payment"
    assert shopper.page_errors == []


async def _fill(shopper: Shopper, form: str, values: dict[str, str]) -> None:
    """Type into each field like a person: a click, keystrokes, a pause."""
    for name, value in values.items():
        field = shopper.page.locator(f"{form} [name={name}]")
        await field.click()
        await field.press_sequentially(value, delay=30)
        await shopper.think()


# --- the tracker's events on the wire ---------------------------------------------------


async def test_tracker_events_arrive_valid(
    demo_worker: WorkerProcess, demo_services: Services, shopper: Shopper
) -> None:
    page = shopper.page
    base = f"{demo_worker.web_url}/demo"
    await page.goto(f"{base}/search.html?q=cup")
    customer = await shopper.customer_id()
    await page.wait_for_selector("#no-results")
    await shopper.think()
    await page.click(".logo")
    await page.wait_for_selector("#products .card")
    await page.mouse.wheel(0, 2000)  # to the bottom: scroll depth
    await shopper.think()
    await page.click("#products .card >> nth=1")
    await page.wait_for_selector("#add-to-cart")
    await page.click("#add-to-cart")
    await shopper.think()
    await page.goto(f"{base}/checkout.html")
    phone = page.locator("#shipping-form [name=phone]")
    await phone.click()
    await phone.press_sequentially("+44 20 7946 0000", delay=20)
    await shopper.think(1200)  # a pause in typing: form_input
    await page.locator("#shipping-form [name=full_name]").click()  # leaving it: refused
    await shopper.think()
    await page.click("#continue-to-payment")  # required fields empty: invalid
    await shopper.think()
    await page.evaluate("setTimeout(() => { throw new Error('demo bug') })")
    await page.evaluate("() => { Promise.reject(new Error('lost promise')); }")
    await page.evaluate(
        'nudgeflow.track("checkout_step", {step: "x".repeat(100), value: 12.5,'
        ' coupon: "SPRING", results: -3})'
    )
    await page.goto(f"{base}/")  # leaving at once: the last events go as the page hides

    expected = {"page_view", "search", "click", "scroll", "product_view", "add_to_cart",
                "form_focus", "form_input", "form_blur", "form_error", "checkout_step",
                "error"}  # fmt: skip
    seen: set[str] = set()
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + 15
    while not expected <= seen and time.monotonic() < deadline:
        events = await read_topic(demo_services.bootstrap, CLICKS, _for(customer), want=10**6,
                                  timeout_s=1.0)  # fmt: skip
        seen = {e["type"] for e in events}
    assert expected <= seen, f"missing {expected - seen}"

    by_type = {e["type"]: e for e in events}
    assert by_type["search"]["query"] == "cup" and by_type["search"]["results"] == 0
    assert by_type["search"]["page"] == "/demo/search.html?q=cup"
    assert by_type["scroll"]["scroll_pct"] in (25, 50, 75, 90, 100)
    clicked = {e["element"]: e for e in events if e["type"] == "click"}
    card = clicked["#products > a.card:nth-of-type(2)"]  # no id: the path to it
    assert isinstance(card["x"], int) and card["props"] == {"tag": "a"}
    assert "#continue-to-payment" in clicked
    assert not any("phone" in element or "full_name" in element for element in clicked)
    errors = [e for e in events if e["type"] == "form_error"]
    assert {"phone", "full_name"} <= {e["field"] for e in errors}
    assert {"customError", "valueMissing"} <= {e["error"] for e in errors}
    js_errors = {e["error"] for e in events if e["type"] == "error"}
    assert any("demo bug" in m for m in js_errors)
    assert any("lost promise" in m for m in js_errors)
    declared = next(e for e in events if e["type"] == "checkout_step" and e.get("value") == 12.5)
    assert declared["step"] == "x" * 64  # cut to the contract's limit, not refused
    assert declared["props"] == {"coupon": "SPRING"} and "results" not in declared
    # Field names only: nothing typed ever leaves the page. Ids and times are left out of
    # the search: random hex and millisecond digits hold "7946" now and then.
    generated = {"event_id", "customer_id", "session_id", "ts"}
    wire = orjson.dumps([{k: v for k, v in e.items() if k not in generated} for e in events])
    for typed in (b"7946", b"Ada", b"ada@example.com"):
        assert typed not in wire
    for e in events:
        assert len(e["event_id"]) <= 64 and isinstance(e["ts"], int)
        assert e["session_id"] == events[0]["session_id"]
    # A retried batch may reach the topic twice (the worker drops the repeat): one id, one event.
    by_id: dict[str, dict[str, Any]] = {}
    for e in events:
        assert by_id.setdefault(e["event_id"], e) == e, "two events share an id"

    rejected = await read_topic(demo_services.bootstrap, CLICKS_FAILED,
                                lambda r: customer in orjson.dumps(r).decode(),
                                timeout_s=2.0)  # fmt: skip
    assert rejected == []
    assert shopper.page_errors == ["demo bug", "lost promise"]


async def test_tracker_cross_origin_with_dnt_and_identify(
    demo_worker: WorkerProcess, demo_services: Services, foreign_shop: ForeignShop, shopper: Shopper
) -> None:
    page, collector, shop = shopper.page, demo_worker.web_url, foreign_shop.origin

    def shop_page(extra: str = "") -> str:
        return (f'<!doctype html><title>Shop</title><button id="buy">Buy</button>'
                f'<script src="{collector}/v1/tracker.js" {extra} async></script>')  # fmt: skip

    foreign_shop.pages.update({"/": shop_page(), "/next": shop_page(),
                               "/private": shop_page('data-respect-dnt="true"')})  # fmt: skip

    await page.goto(f"{shop}/")
    anonymous = await shopper.customer_id()
    assert anonymous.startswith("anon-")
    await page.click("#buy")
    await page.evaluate('nudgeflow.identify("member-" + nudgeflow.customerId().slice(5))')
    member = await page.evaluate("nudgeflow.customerId()")
    await page.click("#buy")  # sent as the member, by the keepalive fetch as the page goes
    await page.goto(f"{shop}/next")
    assert await page.evaluate("nudgeflow.customerId()") == member  # remembered

    # The site asks the tracker to honour Global Privacy Control, and the browser sends it:
    # nothing from that page, not even with an id the tracker knows.
    await page.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})"
    )
    await page.goto(f"{shop}/private")
    await page.wait_for_function("window.nudgeflow && window.nudgeflow.version")
    assert await page.evaluate("[nudgeflow.enabled, nudgeflow.customerId()]") == [False, None]
    await page.click("#buy")
    assert await page.evaluate('nudgeflow.track("search", {query: "x"})') is None
    await page.goto(f"{shop}/next")  # anything pending would leave now; this page tracks

    anonymous_events = await read_topic(demo_services.bootstrap, CLICKS, _for(anonymous), want=2)
    anonymous_events.sort(key=lambda e: e["ts"])  # two requests: either may land first
    assert [(e["type"], e["page"]) for e in anonymous_events] == [("page_view", "/"),
                                                                 ("click", "/")]  # fmt: skip
    member_events = await read_topic(demo_services.bootstrap, CLICKS, _for(member), want=3,
                                     settle_s=1.0)  # fmt: skip
    member_events.sort(key=lambda e: e["ts"])
    assert [(e["type"], e["page"]) for e in member_events] == [
        ("click", "/"),
        ("page_view", "/next"),
        ("page_view", "/next"),
    ]
    assert member_events[0]["element"] == "#buy"
    # One visit: logging in does not start another.
    assert {e["session_id"] for e in anonymous_events + member_events} == {
        anonymous_events[0]["session_id"]
    }
    assert shopper.page_errors == []


async def test_tracker_retries_with_backoff_and_honours_retry_after(
    demo_worker: WorkerProcess, demo_services: Services, shopper: Shopper
) -> None:
    page = shopper.page
    # The collector as the tracker sees it: down twice, then rate limiting, then itself;
    # after that one refusal of a body, which must not come back.
    answers: list[int | None] = [503, 503, 429, None, 400]
    attempts: list[tuple[float, list[str]]] = []

    async def collector(route: Route) -> None:
        ids = [e["event_id"] for e in orjson.loads(route.request.post_data or "{}")["events"]]
        attempts.append((time.monotonic(), ids))
        answer = answers.pop(0) if answers else None
        if answer is None:
            await route.continue_()
        else:
            await route.fulfill(status=answer, content_type="application/json", body="{}",
                                headers={"Retry-After": "2"} if answer == 429 else {})  # fmt: skip

    await page.route("**/v1/events", collector)
    await page.goto(f"{demo_worker.web_url}/demo/")
    customer = await shopper.customer_id()
    deadline = time.monotonic() + 15
    while len(attempts) < 4 and time.monotonic() < deadline:
        await shopper.think(100)
    assert len(attempts) == 4, attempts
    first = attempts[0][1]
    assert all(ids[: len(first)] == first for _, ids in attempts)  # the same batch, in order
    gaps = [later[0] - earlier[0] for earlier, later in itertools.pairwise(attempts)]
    # Backoff of 1 s then 2 s, each with jitter down to half; then the 2 s Retry-After.
    assert gaps[0] >= 0.45 and gaps[1] >= 0.95, gaps
    assert gaps[2] >= 1.95, gaps
    delivered = await read_topic(demo_services.bootstrap, CLICKS, _for(customer))
    assert delivered[0]["event_id"] == first[0] and delivered[0]["type"] == "page_view"

    await page.evaluate('nudgeflow.track("search", {query: "refused", results: 1})')
    await shopper.think(3000)
    assert len(attempts) == 5  # refused once, not retried
    assert await read_topic(demo_services.bootstrap, CLICKS, _for(customer, query="refused"),
                            timeout_s=1.0) == []  # fmt: skip
