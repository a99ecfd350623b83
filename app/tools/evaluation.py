"""Quality of the interventions against the simulator's ground truth (pure).

A friction session is *caught* when an intervention of that session was
triggered by an event at or after the friction began and before the session
ended, in event time. Its *latency* is the event time from the friction's first
event to the trigger; its reason is *right* when the first such intervention
names the reason the story expects. A *false alarm* is any intervention in a
session without friction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["COLUMNS", "StoryQuality", "evaluate", "render_markdown"]

COLUMNS = (
    "story", "sessions", "friction", "caught", "caught %", "p50 ms", "p90 ms",
    "right reason %", "false alarms %", "interventions / 1k events",
)  # fmt: skip


@dataclass(slots=True, frozen=True)
class StoryQuality:
    """How nudgeflow did on the sessions of one story (or on all, ``story="all"``)."""

    story: str
    sessions: int
    friction_sessions: int
    caught: int
    right_reason: int
    false_alarm_sessions: int
    clean_sessions: int
    interventions: int
    events: int
    latency_p50_ms: float | None
    latency_p90_ms: float | None

    @property
    def caught_rate(self) -> float | None:
        """Caught friction sessions over friction sessions."""
        return self.caught / self.friction_sessions if self.friction_sessions else None

    @property
    def right_reason_rate(self) -> float | None:
        """Caught sessions whose first intervention had the expected reason, over caught."""
        return self.right_reason / self.caught if self.caught else None

    @property
    def false_alarm_rate(self) -> float | None:
        """Clean sessions with any intervention, over clean sessions."""
        return self.false_alarm_sessions / self.clean_sessions if self.clean_sessions else None

    @property
    def interventions_per_1k_events(self) -> float:
        """Interventions per thousand events of these sessions."""
        return 1000 * self.interventions / self.events if self.events else 0.0

    def cells(self) -> list[str]:
        """The row as text, in the order of ``COLUMNS``."""
        return [
            self.story, str(self.sessions), str(self.friction_sessions), str(self.caught),
            _percent(self.caught_rate), _ms(self.latency_p50_ms), _ms(self.latency_p90_ms),
            _percent(self.right_reason_rate), _percent(self.false_alarm_rate),
            f"{self.interventions_per_1k_events:.1f}",
        ]  # fmt: skip


def evaluate(
    labels: Iterable[Mapping[str, Any]], interventions: Iterable[Mapping[str, Any]]
) -> list[StoryQuality]:
    """One row per story, sorted by name, then a row ``all``.

    Examples
    --------
    >>> labels = [
    ...     {"session_id": "s1", "story": "rage_clicker", "friction": True, "friction_ts": 100,
    ...      "expected_reason": "rage_click", "events": 10, "ended_ts": 900},
    ...     {"session_id": "s2", "story": "clean_buyer", "friction": False, "friction_ts": None,
    ...      "expected_reason": None, "events": 20, "ended_ts": 900},
    ... ]
    >>> found = [{"session_id": "s1", "reason": "rage_click", "event_ts": 350}]
    >>> rows = evaluate(labels, found)
    >>> [(r.story, r.caught, r.latency_p50_ms, r.false_alarm_sessions) for r in rows]
    [('clean_buyer', 0, None, 0), ('rage_clicker', 1, 250.0, 0), ('all', 1, 250.0, 0)]
    """
    by_session: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for intervention in interventions:
        by_session[intervention["session_id"]].append(intervention)
    by_story: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    all_labels = list(labels)
    for label in all_labels:
        by_story[label["story"]].append(label)
    rows = [_quality(story, by_story[story], by_session) for story in sorted(by_story)]
    rows.append(_quality("all", all_labels, by_session))
    return rows


def render_markdown(rows: list[StoryQuality]) -> str:
    """The rows as a Markdown table.

    Examples
    --------
    >>> print(render_markdown([]).splitlines()[0][:40])
    | story | sessions | friction | caught |
    """
    header = "| " + " | ".join(COLUMNS) + " |\n|---|" + "---:|" * (len(COLUMNS) - 1) + "\n"
    lines = ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return header + "\n".join(lines) + ("\n" if lines else "")


def _quality(
    story: str,
    labels: list[Mapping[str, Any]],
    by_session: Mapping[str, list[Mapping[str, Any]]],
) -> StoryQuality:
    latencies: list[float] = []
    caught = right = false_alarms = clean = interventions = events = friction = 0
    for label in labels:
        found = by_session.get(label["session_id"], [])
        interventions += len(found)
        events += label["events"]
        if not label["friction"]:
            clean += 1
            false_alarms += bool(found)
            continue
        friction += 1
        start, end = label["friction_ts"], label["ended_ts"]
        in_time = sorted(
            (i for i in found if start <= i["event_ts"] <= end), key=lambda i: i["event_ts"]
        )
        if in_time:
            caught += 1
            latencies.append(float(in_time[0]["event_ts"] - start))
            right += in_time[0]["reason"] == label["expected_reason"]
    p50, p90 = (
        (float(np.percentile(latencies, 50)), float(np.percentile(latencies, 90)))
        if latencies
        else (None, None)
    )
    return StoryQuality(story, len(labels), friction, caught, right, false_alarms, clean,
                        interventions, events, p50, p90)  # fmt: skip


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.0f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
