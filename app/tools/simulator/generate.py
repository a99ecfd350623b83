"""A whole simulated shop: customers, their visits over the days, events and ground-truth labels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from itertools import count
from typing import Any

import numpy as np

from app.tools.simulator.arrival import arrival_order
from app.tools.simulator.catalogue import build_catalogue
from app.tools.simulator.config import SimulationConfig
from app.tools.simulator.session import Event, SessionWriter, Visit
from app.tools.simulator.stories import (
    CUSTOMER_STORIES,
    EXPECTED,
    SECOND_DEVICE,
    STORIES,
    InterventionKind,
    other_device_turn,
)
from app.tools.simulator.variants import VARIANTS, Faults

__all__ = ["SessionLabel", "SimulationResult", "simulate"]

_HOUR_MS = 3_600_000
_DAY_MS = 24 * _HOUR_MS
# The common analytics rule: a visit after a 30-minute break is a new session.
_MIN_SESSION_GAP_MS = 30 * 60_000
# Relative traffic per hour of the day (UTC): quiet nights, a peak in the evening,
# the usual shape of retail web traffic.
_HOURLY_TRAFFIC = (
    np.array(
        [2, 1, 1, 1, 1, 1, 2, 4, 6, 7, 8, 8, 9, 8, 8, 8, 8, 9, 10, 12, 13, 12, 8, 4], dtype=float
    )
    / 13.0
)
# A churning customer keeps a habit for 3 to this many visits, evenly spaced give or
# take this much, then comes back 1-2 times after breaks of 2.5-4 times the habit's
# (each later one longer again): the "gap at least twice the usual" of rhythm rules,
# well clear of the threshold.
_CHURN_MAX_HABIT = 6
_CHURN_JITTER = 0.15
_CHURN_FIRST_BREAK = (2.5, 4.0)
_CHURN_GROWTH = (1.2, 1.8)
# A second device: at most this many turns a visit, and the time to pick it up or put it down.
_MAX_TURNS = 3
_SWITCH_MS = (3_000, 20_000)


@dataclass(slots=True, frozen=True)
class SessionLabel:
    """The ground truth of one simulated session.

    ``friction`` means an intervention is called for from ``friction_ts`` on (for
    ``micro_action``, a reward); times are the session's own device clock, as in
    its events. ``events`` counts distinct events (a retry is not another one).
    ``lookalikes`` names the look-alikes of friction the session shows.
    """

    customer_id: str
    session_id: str
    story: str
    friction: bool
    friction_event_id: str | None
    friction_ts: int | None
    expected_kind: InterventionKind | None
    expected_reason: str | None
    events: int
    ended_ts: int
    lookalikes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The label as the JSON object written to the labels file."""
        return asdict(self)


@dataclass(slots=True, frozen=True)
class SimulationResult:
    """Every event of a run in arrival order (a retried one twice), when each arrived
    (ms, collector clock), and one label per session by start time."""

    events: list[Event]
    labels: list[SessionLabel]
    arrival_ms: list[int]


def simulate(config: SimulationConfig) -> SimulationResult:
    """Simulate ``config.customers`` customers visiting a generated shop.

    Each customer gets 1 + Poisson(``sessions_per_customer`` - 1) visits at
    times drawn from a day-night traffic curve over ``config.days`` days, each
    visit a story drawn from ``config.mix``; a churning customer instead keeps
    a habit of evenly spaced visits and then fades, and a crawler crawls on
    every visit. Visits of one customer never overlap, except that some
    customers (``Faults.two_device_share``) take turns with a second device, a
    session of its own on a skewed clock. Visits of different customers overlap.

    Stories write events in event time; ``arrival_order`` then applies the
    network's faults. Everything comes from two generators seeded with
    ``config.seed``, one for the stories and one for the faults: the same config
    gives the same events, ids, labels and order.

    Parameters
    ----------
    config
        What to simulate.

    Returns
    -------
    SimulationResult
        Events as contract §1 objects (``ts`` in integer ms) in the order a
        collector receives them, and a label per session.

    Examples
    --------
    >>> result = simulate(SimulationConfig(customers=5, days=1, seed=7))
    >>> len(result.labels) >= 5, result.arrival_ms == sorted(result.arrival_ms)
    (True, True)
    >>> result.events[0]["event_id"].startswith("e7-"), result == simulate(
    ...     SimulationConfig(customers=5, days=1, seed=7))
    (True, True)
    """
    behaviour = VARIANTS[config.variant].behaviour
    faults = config.faults
    rng = np.random.default_rng(config.seed)
    fault_rng = np.random.default_rng([config.seed, 1])
    shop = build_catalogue(rng)
    prefix = config.id_prefix
    event_ids = (f"{prefix}e{config.seed}-{n}" for n in count())
    session_ids = (f"{prefix}s{config.seed}-{n:06d}" for n in count())
    horizon_ms = int(config.days * _DAY_MS)
    mix = dict(config.mix)
    whole_weights = {story: mix.pop(story, 0.0) for story in CUSTOMER_STORIES}
    total_weight = sum(whole_weights.values()) + sum(mix.values())
    whole_p = np.array([whole_weights[s] for s in CUSTOMER_STORIES]) / total_weight
    names = list(mix)
    weights = np.array([mix[n] for n in names]) / sum(mix.values()) if names else None

    written: list[tuple[list[Event], int]] = []
    started: list[tuple[int, SessionLabel]] = []
    for number in range(config.customers):
        customer_id = f"{prefix}c{config.seed}-{number:05d}"
        favourite = shop.categories[int(rng.integers(len(shop.categories)))]
        whole = _whole_customer_story(rng, whole_p, weights is None)
        habit: int | None = None
        if whole == "churn_risk":
            offsets, habit = _churn_offsets(rng, config.sessions_per_customer, horizon_ms)
        else:
            n = 1 + int(rng.poisson(config.sessions_per_customer - 1))
            offsets = _diurnal_offsets(rng, n, horizon_ms, config.start_ms)
        two_devices = whole is None and float(rng.random()) < faults.two_device_share
        skew_ms = int(rng.integers(faults.clock_skew_ms[0], faults.clock_skew_ms[1] + 1))
        done: set[str] = set()
        ended_ms: int | None = None
        for index, offset in enumerate(offsets):
            start_ms = config.start_ms + offset
            if ended_ms is not None:
                start_ms = max(start_ms, ended_ms + _MIN_SESSION_GAP_MS)
            story = whole or names[int(rng.choice(len(names), p=weights))]
            fading = habit is not None and index >= habit
            visit = Visit(customer_id, next(session_ids), start_ms, index, favourite, fading)
            writer = SessionWriter(rng, visit, shop, event_ids, behaviour, done=done)
            sessions = [(story, writer)]
            if two_devices:
                other = SessionWriter(
                    rng, Visit(customer_id, next(session_ids), start_ms, index, favourite),
                    shop, event_ids, behaviour, skew_ms=skew_ms, done=done,
                )  # fmt: skip
                writer.turn = _turns(other)
                sessions.append((SECOND_DEVICE, other))
            STORIES[story](writer)
            ended_ms = max(w.now_ms for _, w in sessions)
            for name, w in sessions:
                if not w.events:
                    continue
                _lose_session_end(w, faults, fault_rng)
                written.append((w.events, w.skew_ms))
                started.append((w.events[0]["ts"], _label(name, w)))

    events, arrival_ms = arrival_order(written, faults, fault_rng)
    started.sort(key=_first)  # stable: ties keep the order sessions were written in
    return SimulationResult(events, [label for _, label in started], arrival_ms)


def _whole_customer_story(
    rng: np.random.Generator, whole_p: np.ndarray, only_whole: bool
) -> str | None:
    """The story of all a customer's visits (churn, crawler), or None: one story a visit."""
    roll = float(rng.random())
    for story, top in zip(CUSTOMER_STORIES, np.cumsum(whole_p), strict=True):
        if roll < top:
            return story
    return CUSTOMER_STORIES[-1] if only_whole else None


def _turns(other: SessionWriter) -> Callable[[int], int]:
    """A ``SessionWriter.turn`` that hands over to ``other`` for a short while."""
    taken = 0

    def turn(now_ms: int) -> int:
        nonlocal taken
        if taken >= _MAX_TURNS:
            return now_ms
        taken += 1
        other.now_ms = max(other.now_ms, now_ms) + other.between(*_SWITCH_MS)
        other_device_turn(other)
        return other.now_ms + other.between(*_SWITCH_MS)

    return turn


def _lose_session_end(w: SessionWriter, faults: Faults, rng: np.random.Generator) -> None:
    """Drop the session's ``session_end`` unless the browser manages to report it."""
    if w.events[-1]["type"] == "session_end" and float(rng.random()) >= faults.session_end_share:
        w.events.pop()


def _first(item: tuple[int, SessionLabel]) -> int:
    return item[0]


def _label(story: str, writer: SessionWriter) -> SessionLabel:
    friction = writer.friction
    expected = EXPECTED[story] if friction is not None else None
    return SessionLabel(
        customer_id=writer.visit.customer_id,
        session_id=writer.visit.session_id,
        story=story,
        friction=friction is not None,
        friction_event_id=None if friction is None else friction["event_id"],
        friction_ts=None if friction is None else friction["ts"],
        expected_kind=None if expected is None else expected[0],
        expected_reason=None if expected is None else expected[1],
        events=len(writer.events),
        ended_ts=max(e["ts"] for e in writer.events),
        lookalikes=tuple(writer.lookalikes),
    )


def _diurnal_offsets(rng: np.random.Generator, n: int, horizon_ms: int, start_ms: int) -> list[int]:
    """``n`` sorted session starts within the horizon, following the hourly traffic curve."""
    offsets: list[int] = []
    while len(offsets) < n:  # rejection sampling; about half the draws are kept
        offset = int(rng.integers(horizon_ms))
        hour = (start_ms + offset) // _HOUR_MS % 24
        if float(rng.random()) < _HOURLY_TRAFFIC[hour]:
            offsets.append(offset)
    return sorted(offsets)


def _churn_offsets(
    rng: np.random.Generator, mean_visits: float, horizon_ms: int
) -> tuple[list[int], int]:
    """Session starts of a churning customer, and how many of them keep the habit."""
    habit = min(_CHURN_MAX_HABIT, 3 + int(rng.poisson(max(0.5, mean_visits - 2))))
    breaks = [float(rng.uniform(*_CHURN_FIRST_BREAK))]
    for _ in range(int(rng.integers(0, 2))):
        breaks.append(breaks[-1] * float(rng.uniform(*_CHURN_GROWTH)))
    first = float(rng.uniform(0.0, 0.1)) * horizon_ms
    span = (horizon_ms - first) * float(rng.uniform(0.8, 0.95))
    usual = span / (habit - 1 + sum(breaks))
    jitter = rng.uniform(1 - _CHURN_JITTER, 1 + _CHURN_JITTER, size=habit - 1)
    gaps = [usual * float(j) for j in jitter] + [usual * b for b in breaks]
    offsets = [int(first)]
    for gap in gaps:
        offsets.append(offsets[-1] + int(gap))
    return offsets, habit
