"""Simulation runs shared by the simulator tests (each is computed once per test session)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from app.tools.simulator import STORIES, SimulationConfig, SimulationResult, simulate

#: Every story equally often, so each one has enough sessions to check.
UNIFORM = SimulationConfig(customers=300, seed=11, mix=dict.fromkeys(STORIES, 1.0))
#: The same under the held-out variant (its think times, look-alikes and faults).
UNIFORM_HOLDOUT = SimulationConfig(
    customers=300, seed=11, mix=dict.fromkeys(STORIES, 1.0), variant="holdout"
)
#: The default mix: mostly clean sessions, where false alarms would show.
DEFAULT = SimulationConfig(customers=400, seed=3)


def by_session(result: SimulationResult) -> dict[str, list[dict[str, Any]]]:
    """Each session's events as written: in event time, a retried event once."""
    sessions: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for event in result.events:
        sessions[event["session_id"]].setdefault(event["event_id"], event)
    return {
        session: sorted(events.values(), key=lambda e: e["ts"])
        for session, events in sessions.items()
    }


@pytest.fixture(scope="session")
def uniform_run() -> SimulationResult:
    return simulate(UNIFORM)


@pytest.fixture(scope="session")
def uniform_sessions(uniform_run: SimulationResult) -> dict[str, list[dict[str, Any]]]:
    return by_session(uniform_run)


@pytest.fixture(scope="session")
def holdout_run() -> SimulationResult:
    return simulate(UNIFORM_HOLDOUT)


@pytest.fixture(scope="session")
def holdout_sessions(holdout_run: SimulationResult) -> dict[str, list[dict[str, Any]]]:
    return by_session(holdout_run)


@pytest.fixture(scope="session")
def default_run() -> SimulationResult:
    return simulate(DEFAULT)


@pytest.fixture(scope="session")
def default_sessions(default_run: SimulationResult) -> dict[str, list[dict[str, Any]]]:
    return by_session(default_run)
