"""A whole simulated shop: customers, their visits over the days, events and ground-truth labels."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import count
from typing import Any

import numpy as np

from app.detect.signals.signal import InterventionKind
from app.tools.simulator.catalogue import build_catalogue
from app.tools.simulator.config import SimulationConfig
from app.tools.simulator.session import Event, SessionWriter, Visit
from app.tools.simulator.stories import EXPECTED, STORIES

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
# A churning customer comes back 3 to this many times, each break 1.5-2.5 times the last.
_CHURN_MAX_VISITS = 8
_CHURN_GROWTH = (1.5, 2.5)


@dataclass(slots=True, frozen=True)
class SessionLabel:
    """The ground truth of one simulated session."""

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

    def as_dict(self) -> dict[str, Any]:
        """The label as the JSON object written to the labels file."""
        return asdict(self)


@dataclass(slots=True, frozen=True)
class SimulationResult:
    """Every event of a run sorted by event time, and one label per session by start time."""

    events: list[Event]
    labels: list[SessionLabel]


def simulate(config: SimulationConfig) -> SimulationResult:
    """Simulate ``config.customers`` customers visiting a generated shop.

    Each customer gets 1 + Poisson(``sessions_per_customer`` - 1) visits at
    times drawn from a day-night traffic curve over ``config.days`` days, each
    visit a story drawn from ``config.mix``; a churning customer instead gets
    3 or more visits with ever longer breaks. Visits of one customer never
    overlap; visits of different customers do. Everything comes from one
    ``numpy`` generator seeded with ``config.seed``: the same config gives the
    same events, ids and labels.

    Parameters
    ----------
    config
        What to simulate.

    Returns
    -------
    SimulationResult
        Events as contract §1 objects (``ts`` in integer ms), sorted by event time
        (ties keep the order they were written in), and a label per session.

    Examples
    --------
    >>> result = simulate(SimulationConfig(customers=5, days=1, seed=7))
    >>> len(result.labels) >= 5, [e["ts"] for e in result.events] == sorted(
    ...     e["ts"] for e in result.events)
    (True, True)
    >>> result.events[0]["event_id"].startswith("e7-"), result == simulate(
    ...     SimulationConfig(customers=5, days=1, seed=7))
    (True, True)
    """
    rng = np.random.default_rng(config.seed)
    shop = build_catalogue(rng)
    event_ids = (f"e{config.seed}-{n}" for n in count())
    session_numbers = count()
    horizon_ms = int(config.days * _DAY_MS)
    mix = dict(config.mix)
    churn_weight = mix.pop("churn_risk", 0.0)
    other_weight = sum(mix.values())
    churn_p = churn_weight / (churn_weight + other_weight)
    names = list(mix)
    weights = np.array([mix[n] for n in names]) / other_weight if other_weight else None

    events: list[Event] = []
    started: list[tuple[int, SessionLabel]] = []
    for number in range(config.customers):
        customer_id = f"c{config.seed}-{number:05d}"
        favourite = shop.categories[int(rng.integers(len(shop.categories)))]
        churner = weights is None or float(rng.random()) < churn_p
        if churner:
            offsets = _churn_offsets(rng, config.sessions_per_customer, horizon_ms)
        else:
            n = 1 + int(rng.poisson(config.sessions_per_customer - 1))
            offsets = _diurnal_offsets(rng, n, horizon_ms, config.start_ms)
        ended_ms: int | None = None
        for index, offset in enumerate(offsets):
            start_ms = config.start_ms + offset
            if ended_ms is not None:
                start_ms = max(start_ms, ended_ms + _MIN_SESSION_GAP_MS)
            story = "churn_risk" if churner else names[int(rng.choice(len(names), p=weights))]
            visit = Visit(
                customer_id, f"s{config.seed}-{next(session_numbers):06d}", start_ms, index,
                favourite,
            )  # fmt: skip
            writer = SessionWriter(rng, visit, shop, event_ids)
            STORIES[story](writer)
            label = _label(story, writer)
            ended_ms = label.ended_ts
            events.extend(writer.events)
            started.append((start_ms, label))

    # Stable sorts: ties keep the order the events (sessions) were written in.
    events.sort(key=_event_ts)
    started.sort(key=_first)
    return SimulationResult(events, [label for _, label in started])


def _event_ts(event: Event) -> int:
    ts: int = event["ts"]
    return ts


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


def _churn_offsets(rng: np.random.Generator, mean_visits: float, horizon_ms: int) -> list[int]:
    """Session starts of a churning customer: each break longer than the one before."""
    n = min(_CHURN_MAX_VISITS, 3 + int(rng.poisson(max(0.5, mean_visits - 1))))
    first = float(rng.uniform(0.0, 0.15)) * horizon_ms
    span = (horizon_ms - first) * float(rng.uniform(0.6, 0.95))
    growth = float(rng.uniform(*_CHURN_GROWTH))
    # Breaks b, b*g, b*g^2, ... fill the span; fewer visits if the first break gets short.
    while n > 3 and span * (growth - 1) / (growth ** (n - 1) - 1) < _HOUR_MS:
        n -= 1
    first_break = span * (growth - 1) / (growth ** (n - 1) - 1)
    return [int(first + first_break * (growth**k - 1) / (growth - 1)) for k in range(n)]
