"""Stories and labels, checked against the friction rules written out in ``reference_rules``.

Friction sessions break their rule from the friction on; clean sessions, look-alikes
and all, break none. Every check reads a session in event time, as its labels are.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from itertools import count, pairwise
from typing import Any

import numpy as np
import pytest

from app.tools.simulator import EXPECTED, LOOKALIKES, STORIES, SessionLabel, SimulationResult
from app.tools.simulator.catalogue import ELEMENTS, build_catalogue
from app.tools.simulator.session import SessionWriter, Visit
from app.tools.simulator.stories import SECOND_DEVICE
from app.tools.simulator.variants import HOLDOUT, TUNING, Behaviour
from tests.unit.app.tools.simulator import reference_rules as rules

Event = dict[str, Any]
Sessions = dict[str, list[Event]]

FRICTION_STORIES = [story for story, expected in EXPECTED.items() if expected is not None]
CLEAN_STORIES = [story for story, expected in EXPECTED.items() if expected is None]
RUNS = ["uniform_run", "holdout_run"]


def sessions_of(request: pytest.FixtureRequest, run: str) -> tuple[SimulationResult, Sessions]:
    sessions = "uniform_sessions" if run == "uniform_run" else "holdout_sessions"
    return request.getfixturevalue(run), request.getfixturevalue(sessions)


def labels_of(result: SimulationResult, story: str) -> list[SessionLabel]:
    labels = [label for label in result.labels if label.story == story]
    assert len(labels) >= 20, story
    return labels


def is_dead(event: Event) -> bool:
    element = ELEMENTS.get(event.get("element", ""))
    return event["type"] == "click" and element is not None and not element.interactive


def after(events: list[Event], event: Event) -> list[Event]:
    return events[events.index(event) + 1 :]


def before(events: list[Event], event: Event) -> list[Event]:
    return events[: events.index(event)]


# Where each story's friction begins, given the session's events.


def rage_click_begins(events: list[Event], f: Event) -> bool:
    same = [e for e in events if e["type"] == "click" and e.get("element") == f["element"]]
    burst = [e for e in same if f["ts"] <= e["ts"] <= f["ts"] + 1000 and rules.near(e, f)]
    return f["type"] == "click" and len(burst) >= 3


def dead_click_begins(events: list[Event], f: Event) -> bool:
    return is_dead(f) and next(e for e in events if is_dead(e)) is f


def form_struggle_begins(events: list[Event], f: Event) -> bool:
    errors = [e for e in events if e["type"] == "form_error"]
    return f["type"] == "form_error" and errors[0] is f and len(errors) >= 2


def payment_failure_begins(events: list[Event], f: Event) -> bool:
    return rules.payment_failure(events) is f


def silence_begins(events: list[Event], f: Event) -> bool:
    """The last thing the customer did before going quiet."""
    return {e["type"] for e in after(events, f)} <= {"session_end"}


def checkout_stall_begins(events: list[Event], f: Event) -> bool:
    purchased = any(e["type"] == "purchase" for e in events)
    return silence_begins(events, f) and f["page"] in rules.PAID_STEPS and not purchased


def cart_abandonment_begins(events: list[Event], f: Event) -> bool:
    checkout = [e for e in events if e["type"] == "checkout_step" and e["step"] != "cart"]
    return silence_begins(events, f) and not checkout


def search_frustration_begins(events: list[Event], f: Event) -> bool:
    zero = [e for e in events if e["type"] == "search" and e["results"] == 0]
    return f["type"] == "search" and zero[0] is f


def step_loop_begins(events: list[Event], f: Event) -> bool:
    """The first return to an earlier step."""
    steps = [e for e in events if e["type"] == "checkout_step"]
    order = rules.STEP_ORDER
    return f is next(b for a, b in pairwise(steps) if order[b["step"]] < order[a["step"]])


def error_burst_begins(events: list[Event], f: Event) -> bool:
    return f["type"] == "error" and next(e for e in events if e["type"] == "error") is f


def product_hesitation_begins(events: list[Event], f: Event) -> bool:
    views = [e for e in events if e.get("product_id") == f.get("product_id")]
    views = [e for e in views if e["type"] == "product_view"]
    return f["type"] == "product_view" and views.index(f) == 1


def micro_action_begins(events: list[Event], f: Event) -> bool:
    return rules.micro_action(events) is f


def rhythm_change_begins(events: list[Event], f: Event) -> bool:
    return events[0] is f


BEGINS: dict[str, Callable[[list[Event], Event], bool]] = {
    "rage_clicker": rage_click_begins,
    "dead_clicks": dead_click_begins,
    "form_struggler": form_struggle_begins,
    "payment_failure": payment_failure_begins,
    "checkout_staller": checkout_stall_begins,
    "search_frustrated": search_frustration_begins,
    "step_looper": step_loop_begins,
    "error_burst": error_burst_begins,
    "price_hesitant": product_hesitation_begins,
    "cart_abandoner": cart_abandonment_begins,
    "micro_action": micro_action_begins,
    "churn_risk": rhythm_change_begins,
}


def test_every_friction_story_has_a_rule_here() -> None:
    assert set(BEGINS) == set(FRICTION_STORIES)


@pytest.mark.parametrize(
    ("story", "kind", "reason"),
    [
        ("rage_clicker", "assist", "rage_click"),
        ("dead_clicks", "assist", "dead_click"),
        ("form_struggler", "assist", "form_struggle"),
        ("payment_failure", "assist", "payment_failure"),
        ("checkout_staller", "assist", "checkout_stall"),
        ("search_frustrated", "assist", "search_frustration"),
        ("step_looper", "assist", "step_loop"),
        ("error_burst", "assist", "error_burst"),
        ("price_hesitant", "offer", "product_hesitation"),
        ("cart_abandoner", "reminder", "cart_abandonment_risk"),
        ("churn_risk", "reminder", "rhythm_change"),
        ("micro_action", "reward", "micro_action"),
    ],
)
def test_the_catalogue_of_expected_interventions(story: str, kind: str, reason: str) -> None:
    assert EXPECTED[story] == (kind, reason)


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("story", FRICTION_STORIES)
def test_friction_labels_point_at_where_the_friction_begins(
    request: pytest.FixtureRequest, run: str, story: str
) -> None:
    result, sessions = sessions_of(request, run)
    kind, reason = EXPECTED[story] or ("", "")
    checked = 0
    for label in labels_of(result, story):
        events = sessions[label.session_id]
        if not label.friction:  # only the habit visits of a churning customer
            assert story == "churn_risk"
            assert (label.friction_event_id, label.expected_reason) == (None, None)
            continue
        (friction,) = [e for e in events if e["event_id"] == label.friction_event_id]
        assert (label.expected_kind, label.expected_reason) == (kind, reason)
        assert BEGINS[story](events, friction), (label, friction)
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("story", sorted(set(FRICTION_STORIES) - {"churn_risk"}))
def test_friction_breaks_its_rule_from_the_friction_on(
    request: pytest.FixtureRequest, run: str, story: str
) -> None:
    result, sessions = sessions_of(request, run)
    for label in labels_of(result, story):
        assert label.expected_reason is not None and label.friction_ts is not None
        fired = rules.RULES[label.expected_reason](sessions[label.session_id])
        assert fired is not None and fired["ts"] >= label.friction_ts, label


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("story", ["clean_buyer", "browser_leaves", "churn_risk", SECOND_DEVICE])
def test_clean_sessions_break_no_rule_look_alikes_and_all(
    request: pytest.FixtureRequest, run: str, story: str
) -> None:
    result, sessions = sessions_of(request, run)
    for label in labels_of(result, story):
        if label.friction:
            continue
        fired = rules.fired(sessions[label.session_id])
        if story == SECOND_DEVICE:
            # A tab left on a product page while the other device is in use reads as a
            # long dwell: a look-alike only the customer's other session explains.
            fired.pop("product_hesitation", None)
        assert not fired, (label, fired)


@pytest.mark.parametrize("run", RUNS)
def test_crawlers_are_fast_and_some_say_so(request: pytest.FixtureRequest, run: str) -> None:
    result, sessions = sessions_of(request, run)
    behaviour = TUNING.behaviour if run == "uniform_run" else HOLDOUT.behaviour
    saying = 0
    bots = labels_of(result, "bot")
    for label in bots:
        events = sessions[label.session_id]
        gaps = [b["ts"] - a["ts"] for a, b in pairwise(events)]
        assert len(events) >= 20 and np.median(gaps) < 150
        agents = {(e.get("props") or {}).get("user_agent") for e in events}
        assert len(agents) == 1  # a crawler says the same on every request, or nothing
        (agent,) = agents
        if agent is not None:
            saying += 1
            assert any(word in agent.lower() for word in ("bot", "crawler", "spider", "headless"))
        assert not label.friction
    assert saying / len(bots) == pytest.approx(behaviour.bot_user_agent_share, abs=0.2)


# Look-alikes.

#: What each look-alike leaves in a session's events.
FOOTPRINTS: dict[str, Callable[[list[Event]], bool]] = {
    "cart_edit": lambda events: any(
        a.get("step") == "shipping" and b.get("step") == "cart"
        for a, b in pairwise(e for e in events if e["type"] == "checkout_step")
    ),
    "back_one_step": lambda events: any(
        e["type"] == "back" and e.get("page") == "/checkout/payment" for e in events
    ),
    "qty_stepper": lambda events: sum(e.get("element") == "#qty-plus" for e in events) >= 3,
    "carousel": lambda events: any(".carousel" in e.get("element", "") for e in events),
    "pagination": lambda events: any("?page=" in e.get("page", "") for e in events),
    "text_selection": lambda events: (
        sum((e.get("props") or {}).get("selection") is True for e in events) == 3
    ),
    "no_response_button": lambda events: any(
        e.get("element") in ("#print-receipt", "#download-invoice", "#copy-link", "#share")
        for e in events
    ),
    "slow_load": lambda events: any(
        a["type"] in ("click", "form_submit", "purchase", "checkout_step", "search")
        and b["type"] == "page_view"
        and b["ts"] - a["ts"] >= 1_500
        for a, b in pairwise(events)
    ),
    "refresh_step": lambda events: any(
        a.get("step") == b.get("step") == "shipping"
        for a, b in pairwise(e for e in events if e["type"] == "checkout_step")
    ),
    "fast_continue": lambda events: any(
        a.get("step") == "shipping" and b.get("step") == "payment" and b["ts"] - a["ts"] < 8_000
        for a, b in pairwise(e for e in events if e["type"] == "checkout_step")
    ),
    "long_quiet": lambda events: any(
        b["ts"] - a["ts"] >= 4 * 60_000 and a.get("page", "").startswith("/c/")
        for a, b in pairwise(events)
    ),
    "filter_toggle": lambda events: sum(e.get("element") == ".view-toggle" for e in events) >= 2,
    "double_submit": lambda events: sum(e.get("element") == "#place-order" for e in events) == 2,
}


def test_every_look_alike_has_a_footprint() -> None:
    assert set(FOOTPRINTS) == set(LOOKALIKES)


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("lookalike", LOOKALIKES)
def test_each_look_alike_appears_where_its_variant_has_it(
    request: pytest.FixtureRequest, run: str, lookalike: str
) -> None:
    result, sessions = sessions_of(request, run)
    behaviour = TUNING.behaviour if run == "uniform_run" else HOLDOUT.behaviour
    showing = [label for label in result.labels if lookalike in label.lookalikes]
    if behaviour.lookalike_p[lookalike] == 0:
        assert not showing
        return
    assert showing
    for label in showing:
        assert label.story in CLEAN_STORIES or label.story == "churn_risk"
        assert FOOTPRINTS[lookalike](sessions[label.session_id]), (lookalike, label)


@pytest.mark.parametrize("lookalike", LOOKALIKES)
def test_a_look_alike_drawn_every_time_shows_in_a_clean_story(lookalike: str) -> None:
    behaviour = Behaviour(**{
        **{f: getattr(TUNING.behaviour, f) for f in TUNING.behaviour.__slots__},
        "lookalike_p": dict.fromkeys(LOOKALIKES, 1.0),
    })  # fmt: skip
    shown = 0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        shop = build_catalogue(rng)
        for index, story in enumerate(("clean_buyer", "browser_leaves")):
            visit = Visit(f"c{seed}", f"s{seed}-{index}", 0, index=1, favourite_category="shoes")
            writer = SessionWriter(rng, visit, shop, (f"e{n}" for n in count()), behaviour)
            STORIES[story](writer)
            if lookalike in writer.lookalikes:
                shown += 1
                assert FOOTPRINTS[lookalike](writer.events), (lookalike, story)
                assert not rules.fired(writer.events), (lookalike, rules.fired(writer.events))
    assert shown >= 1


# Other things stories must get right.


@pytest.mark.parametrize("story", list(STORIES))
def test_every_visit_lands_on_a_page(
    uniform_run: SimulationResult, uniform_sessions: Sessions, story: str
) -> None:
    for label in labels_of(uniform_run, story):
        events = uniform_sessions[label.session_id]
        assert events[0]["type"] == "page_view"
        if story != "bot":
            assert "referrer" in events[0]["props"]


def test_buyers_pay_what_the_cart_holds(
    default_run: SimulationResult, default_sessions: Sessions
) -> None:
    for label in labels_of(default_run, "clean_buyer"):
        events = default_sessions[label.session_id]
        added = sum(e["value"] for e in events if e["type"] == "add_to_cart")
        removed = sum(e["value"] for e in events if e["type"] == "remove_from_cart")
        (purchase,) = [e for e in events if e["type"] == "purchase"]
        assert purchase["value"] == pytest.approx(added - removed)
        steps = [e["step"] for e in events if e["type"] == "checkout_step"]
        assert steps[0] == "cart" and steps[-2:] == ["payment", "review"]


def test_step_loopers_go_back_at_least_twice(
    uniform_run: SimulationResult, uniform_sessions: Sessions
) -> None:
    for label in labels_of(uniform_run, "step_looper"):
        steps = [e["step"] for e in uniform_sessions[label.session_id] if "step" in e]
        order = [rules.STEP_ORDER[s] for s in steps]
        assert sum(b < a for a, b in pairwise(order)) >= 2


def test_cart_abandoners_go_quiet_for_ten_minutes_with_a_full_cart(
    uniform_run: SimulationResult, uniform_sessions: Sessions
) -> None:
    for label in labels_of(uniform_run, "cart_abandoner"):
        events = uniform_sessions[label.session_id]
        assert events[-1]["type"] == "session_end" or events[-1]["ts"] == label.friction_ts
        if events[-1]["type"] == "session_end":
            assert events[-1]["ts"] - label.friction_ts >= 10 * 60_000


def test_a_customer_writes_a_first_review_and_completes_a_profile_once(
    uniform_run: SimulationResult, uniform_sessions: Sessions
) -> None:
    done: dict[str, Counter[str]] = defaultdict(Counter)
    for label in labels_of(uniform_run, "micro_action"):
        for event in uniform_sessions[label.session_id]:
            form = (event.get("props") or {}).get("form")
            if event["type"] == "form_submit" and form in ("review", "profile"):
                done[label.customer_id][form] += 1
    assert done and all(max(forms.values()) == 1 for forms in done.values())
