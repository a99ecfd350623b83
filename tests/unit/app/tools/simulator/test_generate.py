"""simulate(): reproducible, valid events in arrival order over many overlapping customers."""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from itertools import pairwise
from typing import Any

import numpy as np
import orjson
import pytest

from app.ingest.events import event_to_wire, validate_event
from app.tools.simulator import (
    DEFAULT_MIX,
    EXPECTED,
    STORIES,
    Faults,
    SessionLabel,
    SimulationConfig,
    SimulationResult,
    simulate,
)
from app.tools.simulator.stories import CUSTOMER_STORIES, SECOND_DEVICE
from tests.unit.app.tools.simulator.conftest import DEFAULT, UNIFORM, UNIFORM_HOLDOUT, by_session

DAY_MS = 86_400_000
SMALL = SimulationConfig(customers=40, days=3, seed=5)
Sessions = dict[str, list[dict[str, Any]]]
RUNS = [("uniform_run", UNIFORM), ("holdout_run", UNIFORM_HOLDOUT)]


def as_bytes(result: SimulationResult) -> bytes:
    rows = [*result.events, *(label.as_dict() for label in result.labels)]
    return b"".join(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE) for row in rows)


def sessions_of_customers(labels: list[SessionLabel]) -> dict[str, list[SessionLabel]]:
    customers: dict[str, list[SessionLabel]] = defaultdict(list)
    for label in labels:  # labels come in session start order
        if label.story != SECOND_DEVICE:
            customers[label.customer_id].append(label)
    return customers


def session_starts(result: SimulationResult) -> dict[str, int]:
    return {session: events[0]["ts"] for session, events in by_session(result).items()}


def delays(result: SimulationResult, second_device: set[str]) -> np.ndarray:
    """Arrival minus ``ts`` of each first copy, for devices whose clock is right."""
    seen: set[str] = set()
    found = []
    for event, arrived in zip(result.events, result.arrival_ms, strict=True):
        if event["event_id"] in seen or event["session_id"] in second_device:
            continue
        seen.add(event["event_id"])
        found.append(arrived - event["ts"])
    return np.array(found)


def lognormal_cdf(x_ms: float, faults: Faults) -> float:
    z = math.log(x_ms / faults.network_delay_ms) / faults.network_delay_sigma
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


# Reproducible.


@pytest.mark.parametrize("seed", [0, 1, 2**63 - 1])
@pytest.mark.parametrize("variant", ["tuning", "holdout"])
def test_same_config_gives_the_same_bytes(seed: int, variant: str) -> None:
    config = SimulationConfig(customers=30, days=2, seed=seed, variant=variant)
    assert as_bytes(simulate(config)) == as_bytes(simulate(config))


@pytest.mark.parametrize(("seed_a", "seed_b"), [(0, 1), (1, 2), (7, 70)])
def test_different_seeds_give_different_events(seed_a: int, seed_b: int) -> None:
    a = simulate(SimulationConfig(customers=30, seed=seed_a))
    b = simulate(SimulationConfig(customers=30, seed=seed_b))
    assert as_bytes(a) != as_bytes(b)
    # Ids carry the seed, so two runs can share one broker without clashing.
    assert not {e["event_id"] for e in a.events} & {e["event_id"] for e in b.events}
    assert not {lb.customer_id for lb in a.labels} & {lb.customer_id for lb in b.labels}


def test_an_id_prefix_goes_in_front_of_every_id() -> None:
    plain = simulate(SimulationConfig(customers=10, seed=4))
    tagged = simulate(SimulationConfig(customers=10, seed=4, id_prefix="run7-"))
    for before, after in zip(plain.events, tagged.events, strict=True):
        for key in ("event_id", "customer_id", "session_id"):
            assert after[key] == "run7-" + before[key]
    for before_label, after_label in zip(plain.labels, tagged.labels, strict=True):
        assert after_label.session_id == "run7-" + before_label.session_id
        assert after_label.friction_event_id == (
            None if before_label.friction_event_id is None
            else "run7-" + before_label.friction_event_id
        )  # fmt: skip


def test_mix_order_does_not_matter() -> None:
    forward = SimulationConfig(customers=20, mix={"clean_buyer": 2, "rage_clicker": 1})
    backward = SimulationConfig(customers=20, mix={"rage_clicker": 1, "clean_buyer": 2})
    assert as_bytes(simulate(forward)) == as_bytes(simulate(backward))


def test_the_holdout_variant_gives_other_sessions_from_the_same_seed(
    uniform_run: SimulationResult, holdout_run: SimulationResult
) -> None:
    assert as_bytes(uniform_run) != as_bytes(holdout_run)
    tuning_gaps, holdout_gaps = (
        np.median([b["ts"] - a["ts"] for events in by_session(run).values()
                   for a, b in pairwise(events)])
        for run in (uniform_run, holdout_run)
    )  # fmt: skip
    assert holdout_gaps > tuning_gaps  # holdout shoppers think slower


# Valid events, labels that hold in event time.


@pytest.mark.parametrize("run", ["uniform_run", "holdout_run"])
def test_every_event_validates_and_round_trips(request: pytest.FixtureRequest, run: str) -> None:
    result: SimulationResult = request.getfixturevalue(run)
    for event in result.events:
        # Round-tripping also proves every value is a plain Python int/float/str.
        assert event_to_wire(validate_event(event)) == event


def test_ids_are_unique_apart_from_retries(uniform_run: SimulationResult) -> None:
    copies = Counter(e["event_id"] for e in uniform_run.events)
    assert set(copies.values()) == {1, 2}
    session_ids = [label.session_id for label in uniform_run.labels]
    assert len(set(session_ids)) == len(session_ids)
    owner = {label.session_id: label.customer_id for label in uniform_run.labels}
    assert all(owner[e["session_id"]] == e["customer_id"] for e in uniform_run.events)


@pytest.mark.parametrize("run", ["uniform_run", "holdout_run"])
def test_labels_hold_in_event_time_whatever_the_arrival_order(
    request: pytest.FixtureRequest, run: str
) -> None:
    result: SimulationResult = request.getfixturevalue(run)
    sessions = by_session(result)
    assert len(result.labels) == len(sessions)
    for label in result.labels:
        events = sessions[label.session_id]
        assert (label.events, label.ended_ts) == (len(events), max(e["ts"] for e in events))
        if label.friction:
            (friction,) = [e for e in events if e["event_id"] == label.friction_event_id]
            assert friction["ts"] == label.friction_ts <= label.ended_ts
    starts = session_starts(result)
    label_starts = [starts[label.session_id] for label in result.labels]
    assert label_starts == sorted(label_starts)


# Arrival order and faults.


@pytest.mark.parametrize("run", ["uniform_run", "holdout_run"])
def test_events_come_in_arrival_order_not_event_time(
    request: pytest.FixtureRequest, run: str
) -> None:
    result: SimulationResult = request.getfixturevalue(run)
    assert result.arrival_ms == sorted(result.arrival_ms)
    times = [e["ts"] for e in result.events]
    assert times != sorted(times)
    # Every event arrives after it happened, on its device's clock give or take the skew.
    second = {lb.session_id for lb in result.labels if lb.story == SECOND_DEVICE}
    assert delays(result, second).min() >= 0


@pytest.mark.parametrize(("run", "config"), RUNS, ids=["tuning", "holdout"])
def test_late_and_out_of_order_shares_are_as_configured(
    request: pytest.FixtureRequest, run: str, config: SimulationConfig
) -> None:
    result: SimulationResult = request.getfixturevalue(run)
    faults = config.faults
    second = {lb.session_id for lb in result.labels if lb.story == SECOND_DEVICE}
    delay_ms = delays(result, second)
    low, high = faults.out_of_order_ms
    held_back = (delay_ms >= low) & (delay_ms <= high)
    very_late = delay_ms >= faults.very_late_ms[0]
    # Ordinary lognormal delays reach into the held-back range too, now and then.
    ordinary = 1 - faults.out_of_order_share - faults.very_late_share
    also = ordinary * (lognormal_cdf(high, faults) - lognormal_cdf(low, faults))
    assert held_back.mean() == pytest.approx(faults.out_of_order_share + also, rel=0.2)
    assert very_late.mean() == pytest.approx(faults.very_late_share, rel=0.25)
    assert np.median(delay_ms) == pytest.approx(faults.network_delay_ms, rel=0.1)
    # Seen from the collector: some events arrive behind newer ones of their session,
    # a few beyond the 5 s allowed lateness.
    newest: dict[str, int] = {}
    lag_ms = []
    seen: set[str] = set()
    for event in result.events:
        if event["event_id"] in seen:
            continue  # a retry: a repeat, not a late event
        seen.add(event["event_id"])
        session = event["session_id"]
        lag_ms.append(newest.get(session, event["ts"]) - event["ts"])
        newest[session] = max(newest.get(session, event["ts"]), event["ts"])
    lags = np.array(lag_ms)
    assert 0.02 < ((lags > 0) & (lags <= 5_000)).mean() < 0.2
    assert 0.3 * faults.very_late_share < (lags > 5_000).mean() < faults.very_late_share


@pytest.mark.parametrize(("run", "config"), RUNS, ids=["tuning", "holdout"])
def test_retries_are_exact_repeats_at_the_configured_rate(
    request: pytest.FixtureRequest, run: str, config: SimulationConfig
) -> None:
    result: SimulationResult = request.getfixturevalue(run)
    first: dict[str, tuple[dict[str, Any], int]] = {}
    retried = 0
    for event, arrived in zip(result.events, result.arrival_ms, strict=True):
        if event["event_id"] in first:
            original, first_arrival = first[event["event_id"]]
            assert orjson.dumps(event) == orjson.dumps(original)
            low, high = config.faults.retry_ms
            assert low <= arrived - first_arrival <= high
            retried += 1
        else:
            first[event["event_id"]] = (event, arrived)
    assert retried / len(first) == pytest.approx(config.faults.retry_share, rel=0.2)


@pytest.mark.parametrize(("run", "config"), RUNS, ids=["tuning", "holdout"])
def test_a_share_of_sessions_never_report_their_end(
    request: pytest.FixtureRequest, run: str, config: SimulationConfig
) -> None:
    result: SimulationResult = request.getfixturevalue(run)
    sessions = by_session(result)
    leaving = [lb for lb in result.labels if lb.story not in ("bot", SECOND_DEVICE)]
    ended = [lb for lb in leaving if sessions[lb.session_id][-1]["type"] == "session_end"]
    assert len(ended) / len(leaving) == pytest.approx(config.faults.session_end_share, abs=0.05)
    for events in sessions.values():
        assert all(e["type"] != "session_end" for e in events[:-1])


@pytest.mark.parametrize(("run", "config"), RUNS, ids=["tuning", "holdout"])
def test_some_customers_take_turns_on_a_second_device(
    request: pytest.FixtureRequest, run: str, config: SimulationConfig
) -> None:
    result: SimulationResult = request.getfixturevalue(run)
    labels = [lb for lb in result.labels]
    second = [lb for lb in labels if lb.story == SECOND_DEVICE]
    customers = {lb.customer_id for lb in labels}
    users = {lb.customer_id for lb in second}
    # Churners and crawlers have one device; others do not switch on every visit.
    eligible = sum(
        group[0].story not in CUSTOMER_STORIES for group in sessions_of_customers(labels).values()
    )
    share = config.faults.two_device_share
    assert 0.4 * share * eligible / len(customers) <= len(users) / len(customers) <= share
    arrival = {e["event_id"]: a for e, a in zip(result.events, result.arrival_ms, strict=False)}
    sessions = by_session(result)
    low, high = config.faults.clock_skew_ms
    interleaved = 0
    for other in second:
        assert not other.friction
        (main,) = [
            lb for lb in labels
            if lb.customer_id == other.customer_id and lb.story != SECOND_DEVICE
            and arrival[sessions[lb.session_id][0]["event_id"]]
            <= arrival[sessions[other.session_id][0]["event_id"]]
            <= arrival[sessions[lb.session_id][-1]["event_id"]]
        ]  # fmt: skip
        main_times = [arrival[e["event_id"]] for e in sessions[main.session_id]]
        other_times = [arrival[e["event_id"]] for e in sessions[other.session_id]]
        # Taking turns: the main session goes on after the other device's events.
        interleaved += max(main_times) > max(other_times)
        # The second device's clock is off by the skew (the network adds a little).
        offset = min(arrival[e["event_id"]] - e["ts"] for e in sessions[other.session_id])
        assert -high <= offset <= -low + 10_000
    assert interleaved > 0.8 * len(second)


def test_a_perfect_network_delivers_everything_once_in_order() -> None:
    result = simulate(SimulationConfig(customers=60, seed=2, faults=Faults()))
    assert [e["ts"] for e in result.events] == sorted(e["ts"] for e in result.events)
    assert len({e["event_id"] for e in result.events}) == len(result.events)
    assert SECOND_DEVICE not in {lb.story for lb in result.labels}
    sessions = by_session(result)
    assert all(
        sessions[lb.session_id][-1]["type"] == "session_end"
        for lb in result.labels if lb.story != "bot"
    )  # fmt: skip


# Stories, customers and time.


@pytest.mark.parametrize("story", list(STORIES))
def test_a_single_story_mix_gives_only_that_story(story: str) -> None:
    result = simulate(SimulationConfig(customers=15, days=7, seed=2, mix={story: 1.0}))
    assert {label.story for label in result.labels} - {SECOND_DEVICE} == {story}
    frictions = {label.friction for label in result.labels if label.story == story}
    if EXPECTED[story] is None:
        assert frictions == {False}
    else:
        assert True in frictions


@pytest.mark.parametrize("run", ["uniform_run", "holdout_run"])
def test_every_story_appears_in_a_uniform_mix(request: pytest.FixtureRequest, run: str) -> None:
    result: SimulationResult = request.getfixturevalue(run)
    sessions = Counter(label.story for label in result.labels)
    assert set(sessions) == {*STORIES, SECOND_DEVICE}


def test_the_default_mix_is_followed(default_run: SimulationResult) -> None:
    labels = [lb for lb in default_run.labels if lb.story != SECOND_DEVICE]
    session_weights = {s: w for s, w in DEFAULT_MIX.items() if s not in CUSTOMER_STORIES}
    others = [label for label in labels if label.story not in CUSTOMER_STORIES]
    shares = Counter(label.story for label in others)
    for story, weight in session_weights.items():
        expected = weight / sum(session_weights.values())
        assert shares[story] / len(others) == pytest.approx(expected, abs=0.03), story
    customers = sessions_of_customers(labels)
    for story in CUSTOMER_STORIES:
        whole = sum(group[0].story == story for group in customers.values())
        assert whole / len(customers) == pytest.approx(DEFAULT_MIX[story], abs=0.03), story
    # Most sessions are free of friction.
    assert sum(not label.friction for label in labels) / len(labels) > 0.5


def test_a_zero_weight_story_never_appears() -> None:
    mix = dict(DEFAULT_MIX, rage_clicker=0.0, bot=0.0)
    result = simulate(SimulationConfig(customers=100, seed=4, mix=mix))
    assert not {"rage_clicker", "bot"} & {label.story for label in result.labels}


def test_customers_return_in_later_sessions(default_run: SimulationResult) -> None:
    starts = session_starts(default_run)
    customers = sessions_of_customers(default_run.labels)
    visits = [len(group) for group in customers.values()]
    assert len(customers) == DEFAULT.customers
    assert sum(visits) / len(visits) == pytest.approx(3.0, abs=0.4)
    assert max(visits) >= 5
    for group in customers.values():
        for before, after in pairwise(group):
            # A customer's visits never overlap: 30 minutes at least between them.
            assert starts[after.session_id] >= before.ended_ts + 30 * 60_000


def test_sessions_of_different_customers_overlap(default_run: SimulationResult) -> None:
    live: set[str] = set()
    most_live = 0
    starts = session_starts(default_run)
    ends = {label.session_id: label.ended_ts for label in default_run.labels}
    for session, start in sorted(starts.items(), key=lambda item: item[1]):
        live = {s for s in live if ends[s] >= start} | {session}
        most_live = max(most_live, len(live))
    assert most_live >= 5


@pytest.mark.parametrize("days", [1, 3, 7])
def test_sessions_spread_over_the_days(days: int) -> None:
    config = SimulationConfig(customers=100, days=days, seed=9)
    result = simulate(config)
    starts = sorted(session_starts(result).values())
    assert starts[0] >= config.start_ms - 90_000  # a second device's clock may lag
    day_of = Counter((ts - config.start_ms) // DAY_MS for ts in starts)
    assert set(range(days)) <= set(day_of)
    # Visits pushed past the horizon by a customer's earlier visit are rare.
    assert sum(n for day, n in day_of.items() if day >= days) / len(starts) < 0.02


def test_a_start_one_day_later_shifts_every_event() -> None:
    earlier = simulate(SMALL)
    later = simulate(
        SimulationConfig(customers=40, days=3, seed=5, start_ms=SMALL.start_ms + DAY_MS)
    )
    assert [dict(e, ts=e["ts"] + DAY_MS) for e in earlier.events] == later.events
    assert [a + DAY_MS for a in earlier.arrival_ms] == later.arrival_ms


def test_most_visits_happen_in_the_day_not_the_night(default_run: SimulationResult) -> None:
    hours = Counter(ts // 3_600_000 % 24 for ts in session_starts(default_run).values())
    assert sum(hours[h] for h in range(18, 22)) > 3 * sum(hours[h] for h in range(1, 5))


def test_think_times_vary(uniform_sessions: Sessions) -> None:
    gaps = [b["ts"] - a["ts"] for events in uniform_sessions.values() for a, b in pairwise(events)]
    assert len(set(gaps)) > len(gaps) / 10


@pytest.mark.parametrize("run", ["uniform_run", "holdout_run"])
def test_churning_customers_keep_a_habit_then_fade(
    request: pytest.FixtureRequest, run: str
) -> None:
    result: SimulationResult = request.getfixturevalue(run)
    starts = session_starts(result)
    customers = sessions_of_customers(result.labels)
    churners = [group for group in customers.values() if group[0].story == "churn_risk"]
    assert len(churners) >= 10
    for group in churners:
        habit = [label for label in group if not label.friction]
        fading = [label for label in group if label.friction]
        assert len(habit) >= 3 and fading and group == habit + fading
        times = [starts[label.session_id] for label in group]
        gaps = [b - a for a, b in pairwise(times)]
        usual = np.mean(gaps[: len(habit) - 1])
        # The habit's gaps are even; the first break after it is well over twice as long.
        assert max(gaps[: len(habit) - 1]) < 1.4 * min(gaps[: len(habit) - 1])
        assert gaps[len(habit) - 1] > 2.1 * usual
        assert max(lb.events for lb in fading) < min(lb.events for lb in habit)


def test_a_thousand_customers_take_seconds() -> None:
    began = time.perf_counter()
    result = simulate(SimulationConfig(customers=1000))
    assert time.perf_counter() - began < 10
    assert len(result.labels) > 2000
