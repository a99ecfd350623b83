"""Stories and labels: each friction event is what its story says; clean sessions stay clean."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import pytest

from app.detect.signals import SignalThresholds, detect_all
from app.detect.signals.step_loop import count_step_returns
from app.detect.state import StateLimits, advance
from app.ingest.events import validate_event
from app.tools.simulator import EXPECTED, STORIES, SessionLabel, SimulationResult
from app.tools.simulator.catalogue import ELEMENTS
from tables.customer_state import CustomerState

Event = dict[str, Any]
Sessions = dict[str, list[Event]]

FRICTION_STORIES = [story for story, expected in EXPECTED.items() if expected is not None]
CLEAN_STORIES = [story for story, expected in EXPECTED.items() if expected is None]


def is_dead(event: Event) -> bool:
    element = ELEMENTS.get(event.get("element", ""))
    return event["type"] == "click" and element is not None and not element.interactive


def is_failed_payment(event: Event) -> bool:
    return event["type"] == "payment_failed" or (
        event["type"] == "payment_attempt" and "error" in event
    )


def is_page_change(event: Event) -> bool:
    return event["type"] in ("page_view", "product_view")


def near(a: Event, b: Event, px: float = 30.0) -> bool:
    return bool((a["x"] - b["x"]) ** 2 + (a["y"] - b["y"]) ** 2 <= px**2)


def before(events: list[Event], event: Event) -> list[Event]:
    return events[: events.index(event)]


def after(events: list[Event], event: Event) -> list[Event]:
    return events[events.index(event) + 1 :]


# What the friction event of each story must be, given the session's events.


def rage_click_begins(events: list[Event], f: Event) -> bool:
    same = [e for e in events if e["type"] == "click" and e.get("element") == f["element"]]
    burst = [e for e in same if f["ts"] <= e["ts"] <= f["ts"] + 1000 and near(e, f)]
    just_before = [e for e in same if f["ts"] - 1000 <= e["ts"] < f["ts"]]
    return f["type"] == "click" and len(burst) >= 3 and not just_before


def dead_click_begins(events: list[Event], f: Event) -> bool:
    dead = [e for e in events if is_dead(e)]
    quiet = all(
        not (is_page_change(e) and e["ts"] - d["ts"] < 2000) for d in dead for e in after(events, d)
    )
    return is_dead(f) and dead[0] is f and len(dead) >= 3 and quiet


def form_struggle_begins(events: list[Event], f: Event) -> bool:
    errors = [e for e in events if e["type"] == "form_error"]
    refocused = [
        e for e in after(events, f) if e["type"] == "form_focus" and e["field"] == f["field"]
    ]
    return f["type"] == "form_error" and errors[0] is f and len(errors) >= 2 and bool(refocused)


def payment_failure_begins(events: list[Event], f: Event) -> bool:
    return is_failed_payment(f) and not any(is_failed_payment(e) for e in before(events, f))


def checkout_stall_begins(events: list[Event], f: Event) -> bool:
    later = {e["type"] for e in after(events, f)}
    purchased = any(e["type"] == "purchase" for e in events)
    return (
        f["type"] == "checkout_step"
        and f["step"] == "payment"
        and later <= {"session_end"}
        and (not purchased)
    )


def search_frustration_begins(events: list[Event], f: Event) -> bool:
    zero = [e for e in events if e["type"] == "search" and e["results"] == 0]
    return f["type"] == "search" and zero[0] is f and len(zero) >= 1


def step_loop_begins(events: list[Event], f: Event) -> bool:
    steps = [e for e in events if e["type"] == "checkout_step"]
    path_before = [e["step"] for e in before(steps, f)]
    return (
        f["type"] == "checkout_step"
        and count_step_returns(path_before) == 0
        and count_step_returns([*path_before, f["step"]]) == 1
        and count_step_returns([e["step"] for e in steps]) >= 2
    )


def abandonment_risk_begins(events: list[Event], f: Event) -> bool:
    return events[0] is f


def error_burst_begins(events: list[Event], f: Event) -> bool:
    errors = [e for e in events if e["type"] == "error"]
    burst = [e for e in errors if f["ts"] <= e["ts"] <= f["ts"] + 30_000]
    return f["type"] == "error" and errors[0] is f and len(burst) >= 3


def product_hesitation_begins(events: list[Event], f: Event) -> bool:
    product = f.get("product_id")
    views = [e for e in events if e["type"] == "product_view" and e["product_id"] == product]
    carted = {e["type"] for e in events if e.get("product_id") == product}
    return (
        f["type"] == "product_view"
        and views.index(f) == 1
        and len(views) >= 3
        and {"add_to_cart", "remove_from_cart"} <= carted
    )


BEGINS: dict[str, Callable[[list[Event], Event], bool]] = {
    "rage_clicker": rage_click_begins,
    "dead_clicks": dead_click_begins,
    "form_struggler": form_struggle_begins,
    "payment_failure": payment_failure_begins,
    "checkout_staller": checkout_stall_begins,
    "search_frustrated": search_frustration_begins,
    "step_looper": step_loop_begins,
    "churn_risk": abandonment_risk_begins,
    "error_burst": error_burst_begins,
    "price_hesitant": product_hesitation_begins,
}


def labels_of(result: SimulationResult, story: str) -> list[SessionLabel]:
    labels = [label for label in result.labels if label.story == story]
    assert len(labels) >= 20, story
    return labels


def test_every_friction_story_has_a_rule_here() -> None:
    assert set(BEGINS) == set(FRICTION_STORIES)


@pytest.mark.parametrize(
    ("story", "kind", "reason"),
    [
        ("rage_clicker", "assist", "rage_click"),
        ("dead_clicks", "assist", "dead_click"),
        ("form_struggler", "assist", "form_struggle"),
        ("payment_failure", "assist", "payment_failure"),
        ("checkout_staller", "reminder", "checkout_stall"),
        ("search_frustrated", "assist", "search_frustration"),
        ("step_looper", "assist", "step_loop"),
        ("churn_risk", "reminder", "abandonment_risk"),
        ("error_burst", "assist", "error_burst"),
        ("price_hesitant", "offer", "product_hesitation"),
    ],
)
def test_friction_labels(
    uniform_run: SimulationResult, uniform_sessions: Sessions, story: str, kind: str, reason: str
) -> None:
    checked = 0
    for label in labels_of(uniform_run, story):
        events = uniform_sessions[label.session_id]
        if not label.friction:  # only churn_risk's first two visits
            assert story == "churn_risk"
            assert (label.friction_event_id, label.friction_ts) == (None, None)
            assert (label.expected_kind, label.expected_reason) == (None, None)
            continue
        (friction,) = [e for e in events if e["event_id"] == label.friction_event_id]
        assert friction["ts"] == label.friction_ts
        assert (label.expected_kind, label.expected_reason) == (kind, reason)
        assert BEGINS[story](events, friction), (label, friction)
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize("story", CLEAN_STORIES)
def test_clean_labels(uniform_run: SimulationResult, story: str) -> None:
    for label in labels_of(uniform_run, story):
        assert not label.friction
        assert (label.friction_event_id, label.friction_ts) == (None, None)
        assert (label.expected_kind, label.expected_reason) == (None, None)


def test_churn_friction_starts_on_the_third_visit(uniform_run: SimulationResult) -> None:
    visits: dict[str, list[SessionLabel]] = defaultdict(list)
    for label in labels_of(uniform_run, "churn_risk"):
        visits[label.customer_id].append(label)
    for group in visits.values():
        assert [label.friction for label in group] == [i >= 2 for i in range(len(group))]


def fired_reasons(result: SimulationResult) -> dict[str, set[str]]:
    """Run the real detectors over the events, customer by customer, in event-time order."""
    thresholds, limits = SignalThresholds(), StateLimits()
    states: dict[str, CustomerState] = {}
    fired: dict[str, set[str]] = defaultdict(set)
    for raw in result.events:
        event = validate_event(raw)
        state = advance(states.get(event.customer_id), event, limits)
        states[event.customer_id] = state
        for signal in detect_all(state.session, event, thresholds):
            fired[event.session_id].add(signal.reason)
    return fired


@pytest.mark.parametrize(
    ("reason", "story"),
    [("rage_click", "rage_clicker"), ("step_loop", "step_looper")],
)
@pytest.mark.parametrize("run", ["uniform_run", "default_run"])
def test_detectors_fire_exactly_on_their_story(
    request: pytest.FixtureRequest, run: str, reason: str, story: str
) -> None:
    result: SimulationResult = request.getfixturevalue(run)
    fired = fired_reasons(result)
    for label in result.labels:
        assert (reason in fired[label.session_id]) == (label.story == story), label


@pytest.mark.parametrize("run", ["uniform_run", "default_run"])
def test_payment_failures_only_fire_on_failing_payments(
    request: pytest.FixtureRequest, run: str
) -> None:
    result: SimulationResult = request.getfixturevalue(run)
    fired = fired_reasons(result)
    stories = {
        label.story for label in result.labels if "payment_failure" in fired[label.session_id]
    }
    assert stories == {"payment_failure"}


@pytest.mark.parametrize(
    ("what", "count_in"),
    [
        ("dead clicks", lambda events: sum(is_dead(e) for e in events)),
        ("errors", lambda events: sum(e["type"] == "error" for e in events)),
        ("form errors", lambda events: sum(e["type"] == "form_error" for e in events)),
        ("failed payments", lambda events: sum(is_failed_payment(e) for e in events)),
        ("zero-result searches", lambda events: sum(e.get("results") == 0 for e in events)),
        ("back steps", lambda events: sum(e["type"] == "back" for e in events)),
        (
            "views of one product",
            lambda events: max(
                Counter(e["product_id"] for e in events if e["type"] == "product_view").values(),
                default=0,
            ),
        ),
    ],
)
def test_clean_sessions_have_at_most_one_slip(
    default_run: SimulationResult,
    default_sessions: Sessions,
    what: str,
    count_in: Callable[[list[Event]], int],
) -> None:
    for label in default_run.labels:
        if label.story in CLEAN_STORIES:
            limit = 2 if what == "views of one product" else 1  # a buyer may look again
            assert count_in(default_sessions[label.session_id]) <= limit, (what, label)


def test_clean_sessions_carry_measurable_noise(
    default_run: SimulationResult, default_sessions: Sessions
) -> None:
    slips: Counter[str] = Counter()
    for label in default_run.labels:
        if label.story not in CLEAN_STORIES:
            continue
        events = default_sessions[label.session_id]
        clicks = [e for e in events if e["type"] == "click"]
        if any(
            a["element"] == b["element"] and b["ts"] - a["ts"] < 400 for a, b in pairwise(clicks)
        ):
            slips["double_click"] += 1
        slips.update(e["type"] for e in events if e["type"] in ("back", "error"))
        slips["dead_click"] += any(is_dead(e) for e in events)
        slips["form_error"] += any(e["type"] == "form_error" for e in events)
    assert min(slips[s] for s in ("double_click", "back", "dead_click", "error", "form_error")) > 0


@pytest.mark.parametrize("story", list(STORIES))
def test_every_session_lands_on_a_page_and_moves_forward_in_time(
    uniform_run: SimulationResult, uniform_sessions: Sessions, story: str
) -> None:
    for label in labels_of(uniform_run, story):
        events = uniform_sessions[label.session_id]
        assert events[0]["type"] == "page_view" and "referrer" in events[0]["props"]
        assert all(e["type"] != "session_end" for e in events[:-1])
        # Written in time order, so sorting by ts kept the story's own order.
        ids = [int(e["event_id"].rsplit("-", 1)[1]) for e in events]
        assert ids == sorted(ids)


def test_buyers_pay_what_the_cart_holds(
    default_run: SimulationResult, default_sessions: Sessions
) -> None:
    for label in default_run.labels:
        if label.story != "clean_buyer":
            continue
        events = default_sessions[label.session_id]
        added = sum(e["value"] for e in events if e["type"] == "add_to_cart")
        (purchase,) = [e for e in events if e["type"] == "purchase"]
        assert purchase["value"] == pytest.approx(added)
        assert [e["step"] for e in events if e["type"] == "checkout_step"] == [
            "cart", "shipping", "payment", "review",
        ]  # fmt: skip
