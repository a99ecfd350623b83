"""Dead clicks: two clicks within a minute that nothing answered within 2.5 s (PostHog's wait)."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest

from app.detect.clicks import FORM_CONTROL, NO_RESPONSE_OK, REPEAT_OK, SELECTION
from app.detect.pipeline import Rules, fire_timers
from app.detect.signals import DetectionContext, SignalThresholds, due_ms
from app.detect.signals.dead_click import (
    KIND,
    REASON,
    dead_click_due_ms,
    dead_click_groups,
    detect_dead_click,
)
from app.ingest.events import ClickEvent
from tables.customer_state import RecentEvent as R
from tables.customer_state import SessionState
from tests.factories import T0_MS, click, context, fold

DEFAULT_THRESHOLDS = SignalThresholds()
WAIT = DEFAULT_THRESHOLDS.dead_click_wait_ms
WINDOW = DEFAULT_THRESHOLDS.dead_click_window_ms


@pytest.mark.parametrize(
    ("recent", "now_ms", "groups"),
    [
        pytest.param([], 10_000, 0, id="nothing"),
        pytest.param([R(0, "click", ".a")], 10_000, 1, id="one-dead"),
        pytest.param([R(0, "click", ".a")], WAIT, 1, id="wait-just-over"),
        pytest.param([R(0, "click", ".a")], WAIT - 1, 0, id="still-waiting"),
        # Any non-click event within the wait answers the click, at its very end too.
        pytest.param([R(0, "click", ".a"), R(WAIT, "page_view")], 10_000, 0, id="answered-at-wait"),
        pytest.param([R(0, "click", ".a"), R(WAIT + 1, "page_view")], 10_000, 1, id="answer-late"),
        pytest.param([R(0, "click", ".a"), R(10, "scroll")], 10_000, 0, id="answered-by-scroll"),
        pytest.param([R(0, "click", ".a"), R(5, "error")], 10_000, 0, id="answered-by-error"),
        # Another click is not an answer.
        pytest.param([R(0, "click", ".a"), R(3000, "click", ".b")], 10_000, 2, id="two-dead"),
        pytest.param([R(0, "click", ".a"), R(1000, "click", ".b")], 3499, 1, id="second-waiting"),
        # A burst on one element is one attempt: clicks within the rage window chain.
        pytest.param([R(0, "click", ".a"), R(1000, "click", ".a")], 10_000, 1, id="burst"),
        pytest.param([R(0, "click", ".a"), R(1001, "click", ".a")], 10_000, 2, id="not-a-burst"),
        pytest.param(
            [R(0, "click", ".a"), R(900, "click", ".a"), R(1800, "click", ".a")],
            10_000,
            1,
            id="chained-burst",
        ),
        pytest.param(
            [R(0, "click", ".a"), R(500, "click", ".b"), R(900, "click", ".a")],
            10_000,
            3,
            id="burst-interrupted-by-another-element",
        ),
        # Clicks with traits that excuse them do not count.
        pytest.param([R(0, "click", ".a", flags=REPEAT_OK)], 10_000, 0, id="repeat-ok"),
        pytest.param([R(0, "click", ".a", flags=SELECTION)], 10_000, 0, id="selection"),
        pytest.param([R(0, "click", ".a", flags=FORM_CONTROL)], 10_000, 0, id="form-control"),
        pytest.param([R(0, "click", ".a", flags=NO_RESPONSE_OK)], 10_000, 0, id="no-response-ok"),
        pytest.param([R(0, "click", None)], 10_000, 0, id="no-element"),
        # Only clicks within the window (and its wait) before now count.
        pytest.param([R(0, "click", ".a")], WINDOW + WAIT, 1, id="window-edge"),
        pytest.param([R(0, "click", ".a")], WINDOW + WAIT + 1, 0, id="window-passed"),
    ],
)
def test_dead_click_groups(recent: list[R], now_ms: int, groups: int) -> None:
    assert dead_click_groups(recent, now_ms, DEFAULT_THRESHOLDS) == groups


def dead(*at_ms: int, element: str = ".price", **fields: Any) -> list[ClickEvent]:
    """Clicks on a non-interactive element ``.price`` (by default), at ``at_ms`` after T0."""
    return [click(element=element, ts_ms=T0_MS + ms, **fields) for ms in at_ms]


def detected(events: list[ClickEvent], thresholds: SignalThresholds = DEFAULT_THRESHOLDS) -> bool:
    return detect_dead_click(context(events, thresholds=thresholds)) is not None


@pytest.mark.parametrize(
    ("events", "fires"),
    [
        # The second click's wait is not over when the third click comes: two dead by then.
        pytest.param([*dead(0), *dead(3000, element=".img"), *dead(6000, element=".x")], True,
                     id="third-click-sees-two-dead"),
        pytest.param([*dead(0), *dead(3000, element=".img")], False, id="second-still-waiting"),
        pytest.param([*dead(0), *dead(2500, element=".img"), *dead(5000, element=".x")], True,
                     id="waits-just-over"),
        pytest.param([*dead(0), *dead(2500, element=".img"), *dead(4999, element=".x")], False,
                     id="second-wait-one-ms-short"),
        # Any later event shows what had no answer before it.
        pytest.param([*dead(0), *dead(3000, element=".img"),
                      click(type="scroll", scroll_pct=50.0, ts_ms=T0_MS + 6000)], True,
                     id="a-scroll-after-two-dead"),
        pytest.param([*dead(0), *dead(3000, element=".img"),
                      click(type="page_view", page="/p", ts_ms=T0_MS + 4000)], False,
                     id="the-second-answered"),
        # One element clicked again and again is one attempt.
        pytest.param(dead(0, 400, 800, 6000), False, id="a-burst-and-one-more-on-one-element"),
        pytest.param(dead(0, 1001, 6000), True, id="repeat-clicks-seconds-apart"),
        pytest.param([*dead(0), *dead(61_000, element=".img"), *dead(64_000, element=".x")],
                     False, id="a-minute-apart"),
        pytest.param([*dead(0), *dead(60_000, element=".img"), *dead(62_500, element=".x")],
                     True, id="just-within-a-minute"),
    ],
)  # fmt: skip
def test_when_it_fires(events: list[ClickEvent], fires: bool) -> None:
    assert detected(events) is fires


@pytest.mark.parametrize(
    "props",
    [
        pytest.param({"selection": True}, id="selection"),
        pytest.param({"repeat_click": True}, id="repeat-click"),
        pytest.param({"tag": "input"}, id="form-control"),
        pytest.param({"download": True}, id="download"),
        pytest.param({"target": "_blank"}, id="opens-elsewhere"),
    ],
)
def test_clicks_that_answer_nothing_by_design_never_count(props: dict[str, Any]) -> None:
    events = [
        *dead(0, props=props),
        *dead(3000, element=".img", props=props),
        *dead(6000, element=".x", props=props),
    ]

    assert not detected(events)


def test_not_after_a_rage_click_fired() -> None:
    ctx = context([*dead(0), *dead(3000, element=".img"), *dead(6000, element=".x")])
    after_rage = replace(ctx, session=replace(ctx.session, fired_reasons=("rage_click",)))

    assert detect_dead_click(ctx) is not None
    assert detect_dead_click(after_rage) is None


def test_a_resent_click_is_one_click() -> None:
    [first] = dead(0)
    [second] = dead(3000, element=".img")

    assert not detected([first, first, second, second])
    assert detected([first, first, second, second, *dead(6000, element=".x")])


def test_a_late_answer_is_placed_where_its_time_puts_it() -> None:
    clicks = [*dead(0), *dead(3000, element=".img"), *dead(6000, element=".x")]
    # The page view that answered the first click arrives last.
    late_answer = click(type="page_view", page="/p", ts_ms=T0_MS + 1500)

    assert detected(clicks)
    assert not detected([*clicks, late_answer])


def test_a_late_click_is_placed_where_its_time_puts_it() -> None:
    # The first click arrives last (1.5 s after its time, after the third click).
    events = [*dead(3000, element=".img"), *dead(6000, element=".x"), *dead(1500)]

    assert not detected(events[:2])
    assert detected(events)


@pytest.mark.parametrize(
    ("events", "due_after_last_ms"),
    [
        pytest.param(dead(0), None, id="one-click"),
        pytest.param([*dead(0), *dead(1000, element=".img")], WAIT, id="two-quick-clicks"),
        pytest.param([*dead(0), *dead(3000, element=".img")], WAIT, id="second-click-pending"),
        pytest.param([*dead(0), *dead(60_000, element=".img")], WAIT, id="just-within-a-minute"),
        pytest.param([*dead(0), *dead(61_000, element=".img")], None, id="a-minute-apart"),
        pytest.param(dead(0, 500), None, id="one-burst"),
        pytest.param(
            [*dead(0), *dead(3000, element=".img"), click(type="scroll", ts_ms=T0_MS + 3100)],
            None,
            id="answered",
        ),
        pytest.param(
            [*dead(0), *dead(3000, element=".img", props={"repeat_click": True})],
            None,
            id="newest-excused",
        ),
        # The rule holds when the first of two pending clicks' wait ends.
        pytest.param(
            [*dead(0), *dead(1000, element=".img"), *dead(1500, element=".x")],
            WAIT - 500,
            id="earliest-pending",
        ),
    ],
)
def test_dead_click_due_ms(events: list[ClickEvent], due_after_last_ms: int | None) -> None:
    session = fold(events).session
    assert session is not None

    due = dead_click_due_ms(session, DEFAULT_THRESHOLDS)

    expected = None if due_after_last_ms is None else session.last_ts_ms + due_after_last_ms
    assert due == expected


@pytest.mark.parametrize("fired", ["dead_click", "rage_click"])
def test_no_timer_once_acted_on(fired: str) -> None:
    session = fold([*dead(0), *dead(1000, element=".img")]).session
    assert session is not None

    assert dead_click_due_ms(replace(session, fired_reasons=(fired,)), DEFAULT_THRESHOLDS) is None


@pytest.mark.parametrize(
    "events",
    [
        pytest.param([*dead(0), *dead(1000, element=".img")], id="two-quick-clicks"),
        pytest.param([*dead(0), *dead(60_000, element=".img")], id="a-minute-apart"),
        pytest.param(
            [*dead(0), *dead(1000, element=".img"), *dead(1500, element=".x")], id="pending"
        ),
    ],
)
def test_a_timer_at_the_due_time_fires_and_not_before(events: list[ClickEvent]) -> None:
    session = fold(events).session
    assert session is not None
    due = due_ms(session, DEFAULT_THRESHOLDS)
    assert due is not None

    assert detect_dead_click(context(events, now_ms=due - 1, timer=True)) is None
    signal = detect_dead_click(context(events, now_ms=due, timer=True))
    assert signal is not None
    assert signal.evidence["dead_clicks"] == 2.0


def test_the_customer_who_clicks_twice_and_gives_up_is_heard_by_a_timer() -> None:
    events = [*dead(0), *dead(1000, element=".img")]
    ctx = context(events, now_ms=T0_MS + 1000 + WAIT, timer=True)

    assert detect_dead_click(context(events)) is None
    assert detect_dead_click(ctx) is not None


@pytest.mark.parametrize(
    ("thresholds", "events", "fires"),
    [
        (SignalThresholds(dead_click_min_clicks=1), dead(0, 3000), True),
        (SignalThresholds(dead_click_min_clicks=3), [*dead(0), *dead(3000, element=".b"),
                                                     *dead(6000, element=".c")], False),
        (SignalThresholds(dead_click_wait_ms=4000), [*dead(0), *dead(3000, element=".b"),
                                                     *dead(6000, element=".c")], False),
        (SignalThresholds(dead_click_window_ms=1000), [*dead(0), *dead(3000, element=".b"),
                                                       *dead(6000, element=".c")], False),
    ],
)  # fmt: skip
def test_thresholds_are_respected(
    thresholds: SignalThresholds, events: list[ClickEvent], fires: bool
) -> None:
    assert detected(events, thresholds) is fires


@pytest.mark.parametrize(("n_dead", "score"), [(2, 0.65), (3, 0.75), (6, 1.0)])
def test_signal(n_dead: int, score: float) -> None:
    events = [click(element=f".e{i}", ts_ms=T0_MS + 3000 * i) for i in range(n_dead)]
    ctx = context(events, now_ms=events[-1].ts_ms + WAIT, timer=True)

    signal = detect_dead_click(ctx)

    assert signal is not None
    assert (signal.reason, signal.kind) == (REASON, KIND) == ("dead_click", "assist")
    assert signal.score == pytest.approx(score)
    assert signal.evidence == {"dead_clicks": float(n_dead), "wait_ms": 2500.0}
    assert signal.explanation == (
        f"The customer clicked {n_dead} things that did not respond within 2.5 s; they may "
        "expect something there to work."
    )


def test_a_dead_click_timer_that_cannot_fire_does_not_hide_the_cart_reminder() -> None:
    events = [
        click(type="add_to_cart", product_id="p1", value=20.0, ts_ms=T0_MS),
        *dead(1000),
        *dead(62_000, element=".img"),  # a minute after the first: no pair
    ]
    state = fold(events)
    watermark_ms = T0_MS + 3_600_000

    outcome = fire_timers(state, watermark_ms, Rules(), watermark_ms)

    assert [i["reason"] for i in outcome.interventions] == ["cart_abandonment_risk"]


def _random_visit(rng: random.Random, n: int = 40) -> list[ClickEvent]:
    """Clicks on a few elements, page views and scrolls, some late by up to 4 s."""
    events = []
    ts_ms = T0_MS
    for _ in range(n):
        ts_ms += rng.choice((50, 300, 900, 1500, 2499, 2500, 2501, 4000, 20_000))
        late_ms = rng.choice((0, 0, 0, 0, 700, 2600, 4000))
        kind = rng.choice(("click", "click", "click", "page_view", "scroll"))
        fields: dict[str, Any] = {"type": kind, "ts_ms": ts_ms - late_ms}
        if kind == "click":
            fields["element"] = rng.choice((".price", ".img", ".stars", "#qty-plus"))
        events.append(click(**fields))
    return events


@pytest.mark.parametrize("seed", range(12))
def test_checking_only_what_changed_fires_where_a_full_check_first_holds(seed: int) -> None:
    events = _random_visit(random.Random(seed))
    t = DEFAULT_THRESHOLDS
    first_full = first_fired = None
    state = None
    for i, event in enumerate(events):
        state = fold([event], state=state)
        session = next(s for s in state.sessions if s.session_id == event.session_id)
        ctx = DetectionContext(state, session, event, event.ts_ms, t)
        now_ms = max(event.ts_ms, session.last_ts_ms)
        if first_full is None and dead_click_groups(session.recent, now_ms, t) >= 2:
            first_full = i
        if first_fired is None and detect_dead_click(ctx) is not None:
            first_fired = i

    assert first_fired == first_full


_EXCLUDED = FORM_CONTROL | NO_RESPONSE_OK | REPEAT_OK | SELECTION


def _groups_by_definition(recent: list[R], now_ms: int, t: SignalThresholds) -> int:
    """``dead_click_groups`` as the rule reads, event by event over the whole window."""
    wait = t.dead_click_wait_ms
    horizon = now_ms - t.dead_click_window_ms - wait
    groups, last_element, last_ts = 0, None, 0
    for i, event in enumerate(recent):
        if event.type != "click":
            last_element = None
            continue
        if event.element is None or event.flags & _EXCLUDED or event.ts_ms < horizon:
            continue
        if event.ts_ms + wait > now_ms:
            break
        answered = any(
            later.type != "click" for later in recent[i + 1 :] if later.ts_ms <= event.ts_ms + wait
        )
        if answered:
            continue
        if event.element == last_element and event.ts_ms - last_ts <= t.rage_click_window_ms:
            last_ts = event.ts_ms
            continue
        groups += 1
        last_element, last_ts = event.element, event.ts_ms
    return groups


def _random_window(rng: random.Random, min_events: int, gaps: tuple[int, ...]) -> list[R]:
    """Up to 32 clicks (on two elements, or none), page views and scrolls, ``gaps`` apart;
    some clicks are text selections."""
    ts_ms, recent = T0_MS, []
    for _ in range(rng.randint(min_events, 32)):
        ts_ms += rng.choice(gaps)
        kind = rng.choice(("click", "click", "click", "page_view", "scroll"))
        element = rng.choice((".price", ".img", None)) if kind == "click" else None
        recent.append(R(ts_ms, kind, element, flags=rng.choice((0, 0, 0, SELECTION))))
    return recent


@pytest.mark.parametrize("seed", range(40))
def test_dead_click_groups_counts_as_the_rule_reads(seed: int) -> None:
    rng = random.Random(seed)
    t = DEFAULT_THRESHOLDS
    gaps = (0, 50, 300, 900, 2499, 2500, 2501, 4000, 30_000, 70_000)
    recent = _random_window(rng, 0, gaps)
    ts_ms = recent[-1].ts_ms if recent else T0_MS
    for now_ms in (T0_MS, ts_ms, ts_ms + 2_500, ts_ms + 40_000, ts_ms + 90_000):
        expected = _groups_by_definition(recent, now_ms, t)
        assert dead_click_groups(recent, now_ms, t) == expected, (seed, now_ms)


def _due_by_definition(recent: list[R], t: SignalThresholds) -> int | None:
    """``dead_click_due_ms`` as the rule reads: the earliest end of a pending click's wait
    at which the whole window shows enough dead clicks."""
    if not recent or recent[-1].type != "click":
        return None
    wait = t.dead_click_wait_ms
    pending = sorted(
        e.ts_ms + wait
        for e in recent
        if e.type == "click"
        and e.element is not None
        and not e.flags & _EXCLUDED
        and e.ts_ms + wait > recent[-1].ts_ms
    )
    held = (
        due for due in pending if _groups_by_definition(recent, due, t) >= t.dead_click_min_clicks
    )
    return next(held, None)


@pytest.mark.parametrize("seed", range(200))
def test_dead_click_due_ms_is_the_earliest_pending_wait_at_which_the_rule_holds(seed: int) -> None:
    t = DEFAULT_THRESHOLDS
    gaps = (0, 50, 300, 900, 2499, 2500, 2501, 4000, 30_000, 58_000, 60_000)
    recent = _random_window(random.Random(seed), 1, gaps)
    session = SessionState("s", recent[0].ts_ms, recent[-1].ts_ms, recent=recent)

    assert dead_click_due_ms(session, t) == _due_by_definition(recent, t)
