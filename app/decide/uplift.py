# cython: annotation_typing=True
"""Does stepping in help? Decisions and conversions of the treated and holdout groups.

Pure. Each decision (delivered, or recorded for a customer of the holdout group)
yields a ``decided`` mark; a purchase within ``conversion_window_ms`` of it yields
``converted``, and ``converted_in_session`` when it is in the decision's own session.
The marks carry the deterministic intervention id, so the runtime can count them in
sets (a replay adds nothing), and the day of the decision, so old days can expire.
``uplift_report`` turns the counts into rates, their difference and a 95 % interval.
"""

from __future__ import annotations

import math
import time
from typing import Any, Literal, NamedTuple

from app.decide.policy import decision_ts
from tables.customer_state import CustomerState

__all__ = [
    "MARKS",
    "Group",
    "UpliftMark",
    "conversions",
    "decided_mark",
    "newcombe_interval",
    "uplift_report",
    "wilson_interval",
]

Group = Literal["treated", "holdout"]
#: What a mark says of its decision.
MARKS = ("decided", "converted", "converted_in_session")
_Z95 = 1.959963984540054


class UpliftMark(NamedTuple):
    """One fact about one decision, for the per-reason, per-group, per-day counts."""

    intervention_id: str
    reason: str
    group: Group
    # UTC date of the decision in event time, ``YYYY-MM-DD``.
    day: str
    mark: str


def decided_mark(intervention: dict[str, Any]) -> UpliftMark:
    """The ``decided`` mark of an intervention delivered or held out."""
    return _mark(intervention, "decided")


def conversions(
    state: CustomerState, session_id: str, purchase_ts_ms: int, window_ms: int
) -> list[UpliftMark]:
    """Mark the customer's decisions that a purchase at ``purchase_ts_ms`` converts.

    Each delivered or held-out decision at most ``window_ms`` before the purchase,
    not converted yet, gets ``converted_ts`` (its record in ``state.interventions``
    is replaced, never changed in place: the previous state may share it).

    Examples
    --------
    >>> from tables.customer_state import CustomerProfile
    >>> nudge = {"intervention_id": "i1", "reason": "checkout_stall", "session_id": "s1",
    ...          "event_ts": 1_000, "fired_ts": 61_000}
    >>> state = CustomerState("c1", CustomerProfile(0, 0), interventions=(nudge,))
    >>> [m.mark for m in conversions(state, "s1", 90_000, window_ms=3_600_000)]
    ['converted', 'converted_in_session']
    >>> conversions(state, "s1", 95_000, window_ms=3_600_000)  # converted once
    []
    """
    marks: list[UpliftMark] = []
    records = list(state.interventions)
    for index, record in enumerate(records):
        if record.get("delivery") == "shadow" or "converted_ts" in record:
            continue
        if not 0 <= purchase_ts_ms - decision_ts(record) <= window_ms:
            continue
        records[index] = {**record, "converted_ts": purchase_ts_ms}
        marks.append(_mark(record, "converted"))
        if record["session_id"] == session_id:
            marks.append(_mark(record, "converted_in_session"))
    if marks:
        state.interventions = tuple(records)
    return marks


def _mark(intervention: dict[str, Any], mark: str) -> UpliftMark:
    group: Group = "holdout" if intervention.get("delivery") == "holdout" else "treated"
    day = time.strftime("%Y-%m-%d", time.gmtime(decision_ts(intervention) / 1000))
    return UpliftMark(intervention["intervention_id"], intervention["reason"], group, day, mark)


def wilson_interval(successes: int, n: int) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion.

    Examples
    --------
    >>> [round(x, 3) for x in wilson_interval(10, 100)]
    [0.055, 0.174]
    >>> wilson_interval(0, 0)
    (0.0, 1.0)
    """
    if n <= 0:
        return 0.0, 1.0
    p, z2 = successes / n, _Z95 * _Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """95 % interval of p1 - p2 by Newcombe's hybrid score method (his method 10).

    Unlike the Wald interval it stays inside [-1, 1] and keeps its coverage for small
    groups and rates near 0 or 1, which is where a 5 % holdout of a rare reason lives.

    Examples
    --------
    >>> [round(x, 4) for x in newcombe_interval(56, 70, 48, 80)]  # Newcombe (1998), ex. (a)
    [0.0524, 0.3339]
    """
    p1 = x1 / n1 if n1 else 0.0
    p2 = x2 / n2 if n2 else 0.0
    l1, u1 = wilson_interval(x1, n1)
    l2, u2 = wilson_interval(x2, n2)
    d = p1 - p2
    return (d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
            d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))  # fmt: skip


def uplift_report(counts: dict[tuple[str, str, str], int]) -> dict[str, Any]:
    """Per reason: decisions and conversions of each group, the rates, and the uplift.

    ``counts`` maps (reason, group, mark) to a count (summed over days).

    Examples
    --------
    >>> counts = {("rage_click", "treated", "decided"): 200,
    ...           ("rage_click", "treated", "converted"): 60,
    ...           ("rage_click", "holdout", "decided"): 20,
    ...           ("rage_click", "holdout", "converted"): 3}
    >>> r = uplift_report(counts)["reasons"]["rage_click"]
    >>> r["treated"]["conversion_rate"], r["holdout"]["conversion_rate"], r["uplift"]
    (0.3, 0.15, 0.15)
    >>> [round(x, 3) for x in r["uplift_ci95"]]
    [-0.069, 0.268]
    """
    reasons = sorted({reason for reason, _group, _mark in counts})
    report: dict[str, Any] = {}
    for reason in reasons:
        groups: dict[str, dict[str, Any]] = {}
        for group in ("treated", "holdout"):
            n = counts.get((reason, group, "decided"), 0)
            converted = counts.get((reason, group, "converted"), 0)
            in_session = counts.get((reason, group, "converted_in_session"), 0)
            groups[group] = {
                "decisions": n,
                "converted": converted,
                "converted_in_session": in_session,
                "conversion_rate": round(converted / n, 4) if n else None,
                "session_conversion_rate": round(in_session / n, 4) if n else None,
            }
        treated, holdout = groups["treated"], groups["holdout"]
        entry: dict[str, Any] = {**groups, "uplift": None, "uplift_ci95": None}
        if treated["decisions"] and holdout["decisions"]:
            x1, n1 = treated["converted"], treated["decisions"]
            x2, n2 = holdout["converted"], holdout["decisions"]
            entry["uplift"] = round(x1 / n1 - x2 / n2, 4)
            entry["uplift_ci95"] = [round(x, 4) for x in newcombe_interval(x1, n1, x2, n2)]
        report[reason] = entry
    return {"reasons": report}
