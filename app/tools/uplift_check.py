"""An A/A check of the uplift measurement on the held-out simulated set.

The simulator's shoppers do not react to interventions: their events are written
before anything is decided. So the true uplift of every reason is zero, and what
``GET /v1/stats/uplift`` would report on them must say so: a difference near zero,
a 95 % interval that covers zero for about 19 reasons in 20. A biased group
assignment, or counting that favours one group (say, conversions looked for only
after delivered interventions), would show here as an interval that misses zero.

In process, as the worker decides (``PartitionRun``, the default policy), with half
of the customers held out so that both groups are large enough to say something.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from app.decide.uplift import uplift_report
from app.detect.partition_run import PartitionRun
from app.detect.pipeline import Outcome, Rules
from app.ingest.events import validate_event
from app.tools.abandonment_comparison import simulated_streams
from tables.customer_state import CustomerState

__all__ = ["HOLDOUT_SHARE", "markdown_section", "uplift_counts"]

HOLDOUT_SHARE = 0.5
_TITLE = "## Uplift: an A/A check on the held-out set"
_CLOSE_AFTER_MS = 3 * 3_600_000


def uplift_counts(
    events: Sequence[dict[str, Any]], rules: Rules
) -> dict[tuple[str, str, str], int]:
    """(reason, group, mark) → decisions counted, replaying ``events`` (arrival order).

    Examples
    --------
    >>> from app.decide.policy import PolicyRules
    >>> day = 1_767_225_600_000
    >>> events = [{"event_id": f"e{n}", "customer_id": "c1", "session_id": "s1", "type": t,
    ...            "ts": day + 1000 * n, **f} for n, (t, f) in enumerate([
    ...     ("payment_failed", {"error": "declined"}), ("purchase", {"value": 9.0})])]
    >>> counts = uplift_counts(events, Rules(policy=PolicyRules(holdout_share=0.0)))
    >>> sorted(counts.items())  # doctest: +NORMALIZE_WHITESPACE
    [(('payment_failure', 'treated', 'converted'), 1),
     (('payment_failure', 'treated', 'converted_in_session'), 1),
     (('payment_failure', 'treated', 'decided'), 1)]
    """
    seen: set[tuple[str, str]] = set()
    counts: dict[tuple[str, str, str], int] = {}

    def count(_customer: str, _before: CustomerState | None, outcome: Outcome) -> None:
        for mark in outcome.uplift:
            if (mark.intervention_id, mark.mark) in seen:  # a set of ids, as in Redis
                continue
            seen.add((mark.intervention_id, mark.mark))
            key = (mark.reason, mark.group, mark.mark)
            counts[key] = counts.get(key, 0) + 1

    run = PartitionRun(rules, on_outcome=count)
    for raw in events:
        click = validate_event(raw)
        run.event(click, arrival_ms=click.ts_ms)
    watermark_ms = run.clock.newest_ts_ms + _CLOSE_AFTER_MS
    run.fire(watermark_ms, watermark_ms)
    return counts


def markdown_section(customers: int = 300, days: float = 3.0, holdout_seed: int = 1000) -> str:
    """The section for ``benchmarks/QUALITY.md``."""
    _tuning, [held_out] = simulated_streams(customers, days, (), holdout_seed)
    base = Rules()
    rules = replace(base, policy=replace(base.policy, holdout_share=HOLDOUT_SHARE))
    report = uplift_report(uplift_counts(held_out, rules))["reasons"]
    lines = [
        _TITLE,
        "",
        "The simulated shoppers do not react to interventions (their events are written "
        "before anything is decided), so every reason's true uplift is 0: this checks that "
        "the group assignment and the counting are unbiased. Replayed in process with the "
        f"default policy and {HOLDOUT_SHARE:.0%} of the customers held out; conversion = a "
        "purchase within 24 h of the decision; the unit is a decision.",
        "",
        "| reason | treated decisions | treated conversion | holdout decisions "
        "| holdout conversion | uplift | 95 % interval | covers 0 |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    covered = total = 0
    for reason, entry in report.items():
        treated, holdout = entry["treated"], entry["holdout"]
        interval = entry["uplift_ci95"]
        covers = "-" if interval is None else ("yes" if interval[0] <= 0 <= interval[1] else "NO")
        if interval is not None:
            total += 1
            covered += covers == "yes"
        lines.append(
            f"| {reason} | {treated['decisions']} | {_rate(treated['conversion_rate'])} "
            f"| {holdout['decisions']} | {_rate(holdout['conversion_rate'])} "
            f"| {_signed(entry['uplift'])} "
            f"| {'-' if interval is None else f'{interval[0]:+.3f} … {interval[1]:+.3f}'} "
            f"| {covers} |"
        )
    lines += ["", f"The interval covers 0 for {covered} of {total} reasons.", ""]
    return "\n".join(lines)


def _rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"
