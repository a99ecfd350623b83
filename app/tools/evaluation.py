"""Quality of the interventions against the simulator's ground truth (pure).

A friction session is *caught* when an intervention of that session was
triggered by an event at or after the friction began and before the session
ended, in event time (``event_ts`` in [``friction_ts``, ``ended_ts``]). Its
*latency* runs from the friction's first event to when the first such
intervention's rule held: ``fired_ts`` for rules that fire on silence (the
trigger is then the session's last event), else the trigger's ``event_ts``. Its
reason is *right* when that first intervention names the reason the story
expects. A *clean* session is one without friction (crawlers included): an
``assist`` there claims a friction that is not there, and any intervention
there is a false alarm.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "COLUMNS",
    "LOOKALIKE_COLUMNS",
    "TARGETS",
    "LookalikeQuality",
    "StoryQuality",
    "Target",
    "evaluate",
    "evaluate_lookalikes",
    "render_lookalikes",
    "render_markdown",
    "render_targets",
]

COLUMNS = (
    "story", "sessions", "friction", "caught", "caught %", "p50 ms", "p90 ms",
    "right reason %", "assist on clean %", "any nudge on clean %", "interventions / 1k events",
)  # fmt: skip
LOOKALIKE_COLUMNS = ("look-alike", "clean sessions", "assist %", "any nudge %")


@dataclass(slots=True, frozen=True)
class StoryQuality:
    """How nudgeflow did on the sessions of one story (or on all, ``story="all"``)."""

    story: str
    sessions: int
    friction_sessions: int
    caught: int
    right_reason: int
    clean_sessions: int
    assisted_clean: int
    nudged_clean: int
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
    def assist_on_clean_rate(self) -> float | None:
        """Clean sessions given an ``assist`` (a friction claim), over clean sessions."""
        return self.assisted_clean / self.clean_sessions if self.clean_sessions else None

    @property
    def nudge_on_clean_rate(self) -> float | None:
        """Clean sessions given any intervention, over clean sessions."""
        return self.nudged_clean / self.clean_sessions if self.clean_sessions else None

    @property
    def interventions_per_1k_events(self) -> float:
        """Interventions per thousand events of these sessions."""
        return 1000 * self.interventions / self.events if self.events else 0.0

    def cells(self) -> list[str]:
        """The row as text, in the order of ``COLUMNS``."""
        return [
            self.story, str(self.sessions), str(self.friction_sessions), str(self.caught),
            _percent(self.caught_rate), _ms(self.latency_p50_ms), _ms(self.latency_p90_ms),
            _percent(self.right_reason_rate), _percent(self.assist_on_clean_rate, 1),
            _percent(self.nudge_on_clean_rate, 1), f"{self.interventions_per_1k_events:.1f}",
        ]  # fmt: skip


@dataclass(slots=True, frozen=True)
class Target:
    """A quality goal on the ``all`` row of the held-out set."""

    name: str
    rate: Callable[[StoryQuality], float | None]
    bound: float
    at_least: bool

    def met(self, row: StoryQuality) -> bool | None:
        """Whether ``row`` meets it (None when the rate is undefined)."""
        rate = self.rate(row)
        if rate is None:
            return None
        return rate >= self.bound if self.at_least else rate <= self.bound


#: The goals: catch 90 % of friction sessions; claim friction in at most 3 % of clean
#: ones; send anything at all to at most 10 % of them.
TARGETS: tuple[Target, ...] = (
    Target("caught", lambda r: r.caught_rate, 0.90, at_least=True),
    Target("assist on clean", lambda r: r.assist_on_clean_rate, 0.03, at_least=False),
    Target("any nudge on clean", lambda r: r.nudge_on_clean_rate, 0.10, at_least=False),
)


@dataclass(slots=True, frozen=True)
class LookalikeQuality:
    """False alarms on the clean sessions that show one look-alike."""

    lookalike: str
    clean_sessions: int
    assisted: int
    nudged: int

    def cells(self) -> list[str]:
        """The row as text, in the order of ``LOOKALIKE_COLUMNS``."""
        n = self.clean_sessions
        return [self.lookalike, str(n), _percent(self.assisted / n, 1),
                _percent(self.nudged / n, 1)]  # fmt: skip


def evaluate(
    labels: Iterable[Mapping[str, Any]], interventions: Iterable[Mapping[str, Any]]
) -> list[StoryQuality]:
    """One row per story, sorted by name, then a row ``all``.

    Examples
    --------
    >>> labels = [
    ...     {"session_id": "s1", "story": "rage_clicker", "friction": True, "friction_ts": 100,
    ...      "expected_reason": "rage_click", "events": 10, "ended_ts": 900},
    ...     {"session_id": "s2", "story": "checkout_staller", "friction": True,
    ...      "friction_ts": 500, "expected_reason": "checkout_stall", "events": 9,
    ...      "ended_ts": 500},
    ...     {"session_id": "s3", "story": "clean_buyer", "friction": False, "friction_ts": None,
    ...      "expected_reason": None, "events": 20, "ended_ts": 900},
    ... ]
    >>> found = [
    ...     {"session_id": "s1", "kind": "assist", "reason": "rage_click", "event_ts": 350},
    ...     {"session_id": "s2", "kind": "assist", "reason": "checkout_stall", "event_ts": 500,
    ...      "fired_ts": 60_500},
    ...     {"session_id": "s3", "kind": "offer", "reason": "product_hesitation",
    ...      "event_ts": 700},
    ... ]
    >>> rows = evaluate(labels, found)
    >>> [(r.story, r.caught, r.latency_p50_ms, r.nudged_clean, r.assisted_clean) for r in rows]
    ... # doctest: +NORMALIZE_WHITESPACE
    [('checkout_staller', 1, 60000.0, 0, 0), ('clean_buyer', 0, None, 1, 0),
     ('rage_clicker', 1, 250.0, 0, 0), ('all', 2, 30125.0, 1, 0)]
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


def evaluate_lookalikes(
    labels: Iterable[Mapping[str, Any]], interventions: Iterable[Mapping[str, Any]]
) -> list[LookalikeQuality]:
    """False alarms per look-alike, over the clean sessions showing it, by name.

    Examples
    --------
    >>> labels = [{"session_id": "s1", "friction": False, "lookalikes": ["carousel"]},
    ...           {"session_id": "s2", "friction": False, "lookalikes": ["carousel"]}]
    >>> found = [{"session_id": "s1", "kind": "assist"}]
    >>> evaluate_lookalikes(labels, found)[0].cells()
    ['carousel', '2', '50.0', '50.0']
    """
    kinds: dict[str, set[str]] = defaultdict(set)
    for intervention in interventions:
        kinds[intervention["session_id"]].add(intervention["kind"])
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for label in labels:
        if label["friction"]:
            continue
        found = kinds.get(label["session_id"], set())
        for lookalike in set(label.get("lookalikes") or ()):
            n = counts[lookalike]
            n[0] += 1
            n[1] += "assist" in found
            n[2] += bool(found)
    return [LookalikeQuality(name, *counts[name]) for name in sorted(counts)]


def render_markdown(rows: list[StoryQuality]) -> str:
    """The rows as a Markdown table.

    Examples
    --------
    >>> print(render_markdown([]).splitlines()[0][:40])
    | story | sessions | friction | caught |
    """
    return _table(COLUMNS, [row.cells() for row in rows])


def render_lookalikes(rows: list[LookalikeQuality]) -> str:
    """The look-alike rows as a Markdown table."""
    return _table(LOOKALIKE_COLUMNS, [row.cells() for row in rows])


def render_targets(rows: list[StoryQuality]) -> str:
    """One line: each target, the ``all`` row's figure and PASS or FAIL.

    Examples
    --------
    >>> row = StoryQuality("all", 100, 10, 9, 9, 90, 2, 12, 30, 5000, 10.0, 20.0)
    >>> render_targets([row])
    'caught ≥ 90 %: 90.0 % PASS; assist on clean ≤ 3 %: 2.2 % PASS; any nudge on clean ≤ 10 %: 13.3 % FAIL'
    """  # noqa: E501
    total = next(row for row in rows if row.story == "all")
    parts = []
    for target in TARGETS:
        met = target.met(total)
        verdict = "n/a" if met is None else "PASS" if met else "FAIL"
        sign = "≥" if target.at_least else "≤"
        parts.append(f"{target.name} {sign} {100 * target.bound:.0f} %: "
                     f"{_percent(target.rate(total), 1)} % {verdict}")  # fmt: skip
    return "; ".join(parts)


def _table(columns: tuple[str, ...], rows: list[list[str]]) -> str:
    header = "| " + " | ".join(columns) + " |\n|---|" + "---:|" * (len(columns) - 1) + "\n"
    lines = ["| " + " | ".join(cells) + " |" for cells in rows]
    return header + "\n".join(lines) + ("\n" if lines else "")


def _when(intervention: Mapping[str, Any]) -> int:
    """Event time at which the intervention's rule held."""
    fired: int | None = intervention.get("fired_ts")
    return intervention["event_ts"] if fired is None else fired


def _quality(
    story: str,
    labels: list[Mapping[str, Any]],
    by_session: Mapping[str, list[Mapping[str, Any]]],
) -> StoryQuality:
    latencies: list[float] = []
    caught = right = clean = assisted = nudged = interventions = events = friction = 0
    for label in labels:
        found = by_session.get(label["session_id"], [])
        interventions += len(found)
        events += label["events"]
        if not label["friction"]:
            clean += 1
            assisted += any(i["kind"] == "assist" for i in found)
            nudged += bool(found)
            continue
        friction += 1
        start, end = label["friction_ts"], label["ended_ts"]
        in_time = sorted((i for i in found if start <= i["event_ts"] <= end), key=_when)
        if in_time:
            caught += 1
            latencies.append(float(_when(in_time[0]) - start))
            right += in_time[0]["reason"] == label["expected_reason"]
    p50, p90 = (
        (float(np.percentile(latencies, 50)), float(np.percentile(latencies, 90)))
        if latencies
        else (None, None)
    )
    return StoryQuality(story, len(labels), friction, caught, right, clean, assisted, nudged,
                        interventions, events, p50, p90)  # fmt: skip


def _percent(rate: float | None, decimals: int = 0) -> str:
    return "-" if rate is None else f"{100 * rate:.{decimals}f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
