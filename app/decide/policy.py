# cython: annotation_typing=True
"""Which of the signals that fired together becomes an intervention, and which are held back.

Pure and in event time, so a replay decides identically. In order:

1. **Bots** get nothing (cause ``bot``).
2. A reason already dealt with in the session is not raised again (``cooldown``).
3. **Shadow** reasons (``PolicyRules.shadow_reasons``) are decided apart: each is
   recorded, never delivered, and takes no part in the gates below (``shadow``).
4. **Quiet** after a purchase: no ``offer`` and no ``reminder`` (``quiet``). Someone who
   just bought is not sold to or reminded; one stuck on the receipt page is still helped.
5. **Cooldowns** against the customer's earlier decisions: per reason (``cooldown``),
   and overall, which only a more urgent reason (``PRIORITY``) or a ``reward`` (thanks
   for a step the customer took, not a request of them) may break.
6. **Caps** per session and per rolling day of event time (``cap``).
7. The strongest survivor speaks (``PRIORITY`` first, then score) and lists the others
   as evidence; for a customer in the **holdout** group it is recorded, not delivered
   (``holdout``).

Earlier decisions are the customer's recorded interventions (``CustomerState.interventions``),
delivered and held out alike: the holdout group must meet the same cooldowns and caps as
the treated one, or the two would not be comparable. Shadow records count for nothing.
The cooldowns look at the session's own decisions and those of visits that are over:
two live sessions (tabs, devices) taking turns are two conversations, each told once per
reason, while a new visit inherits the cooldowns of the last one. The caps count all.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

from app.detect.signals import PRIORITY, Signal
from tables.customer_state import CustomerState, SessionState

__all__ = ["Decision", "Delivery", "PolicyRules", "decide", "decision_ts", "in_holdout"]

#: What becomes of a decided intervention (the ``delivery`` field of a record not sent).
Delivery = Literal["sent", "holdout", "shadow"]

_DAY_MS = 86_400_000
_QUIET_KINDS = frozenset({"offer", "reminder"})


@dataclass(slots=True, frozen=True)
class PolicyRules:
    """The policy's settings (``NUDGEFLOW_COOLDOWN_*``, ``_CAP_*``, ``_QUIET_*``, …)."""

    reason_cooldown_ms: int = 600_000
    any_cooldown_ms: int = 120_000
    session_cap: int = 3
    daily_cap: int = 5
    quiet_after_purchase_ms: int = 1_800_000
    shadow_reasons: frozenset[str] = frozenset()
    holdout_share: float = 0.05
    # How long after a decision a purchase counts as its conversion (``app.decide.uplift``).
    conversion_window_ms: int = 86_400_000


@dataclass(slots=True)
class Decision:
    """The signal to act on (if any), the ones it speaks for, and the ones held back."""

    main: Signal | None = None
    others: list[Signal] = field(default_factory=list)
    # What becomes of ``main``: sent, or recorded for the holdout group.
    delivery: Delivery = "sent"
    # Shadow signals to record (never delivered), one intervention each.
    shadowed: list[Signal] = field(default_factory=list)
    # (reason, cause) of each signal not delivered, ``main`` included when held out.
    suppressed: list[tuple[str, str]] = field(default_factory=list)


def decide(
    signals: list[Signal],
    session: SessionState,
    state: CustomerState | None = None,
    rules: PolicyRules | None = None,
    at_ms: int = 0,
) -> Decision:
    """Pick what to do with the signals one event (or one timer) fired at ``at_ms``.

    Examples
    --------
    >>> from tables.customer_state import SessionState
    >>> s = SessionState("s", 0, 0, fired_reasons=("rage_click",))
    >>> d = decide([Signal("rage_click", "assist", 0.8), Signal("payment_failure", "assist", 0.9),
    ...             Signal("error_burst", "assist", 0.95)], s)
    >>> d.main.reason, [o.reason for o in d.others], d.suppressed
    ('payment_failure', ['error_burst'], [('rage_click', 'cooldown')])
    """
    decision = Decision()
    if not signals:
        return decision
    if session.bot:
        decision.suppressed = [(s.reason, "bot") for s in signals]
        return decision
    rules = rules or PolicyRules()
    live: list[Signal] = []
    for signal in signals:
        if signal.reason in session.fired_reasons:
            decision.suppressed.append((signal.reason, "cooldown"))
        elif signal.reason in rules.shadow_reasons:
            decision.shadowed.append(signal)
            decision.suppressed.append((signal.reason, "shadow"))
        else:
            live.append(signal)
    if state is not None:
        live = _gate(live, session, state, rules, at_ms, decision.suppressed)
    if not live:
        return decision
    live.sort(key=lambda s: (PRIORITY.get(s.reason, len(PRIORITY)), -s.score))
    decision.main, decision.others = live[0], live[1:]
    if state is not None and in_holdout(state.customer_id, rules.holdout_share):
        decision.delivery = "holdout"
        decision.suppressed.append((live[0].reason, "holdout"))
    return decision


def in_holdout(customer_id: str, share: float) -> bool:
    """Whether the customer is in the control group: a stable hash, the same on every worker.

    Examples
    --------
    >>> in_holdout("c1", 0.0), in_holdout("c1", 1.0)
    (False, True)
    >>> sum(in_holdout(f"c{i}", 0.05) for i in range(10_000))
    484
    """
    if share <= 0:
        return False
    digest = hashlib.blake2b(customer_id.encode(), digest_size=8, person=b"nf-holdout").digest()
    return int.from_bytes(digest, "big") < share * 2**64


def decision_ts(intervention: dict[str, Any]) -> int:
    """When a recorded intervention was decided, in event time (a silence: when it held)."""
    return int(intervention.get("fired_ts", intervention["event_ts"]))


def _cooling(
    signal: Signal, past: list[tuple[str, int]], at_ms: int, reason_ms: int, urgent_rank: int | None
) -> bool:
    """Whether the reason's own cooldown holds, or the overall one and the signal is neither
    more urgent nor a reward."""
    reason = signal.reason
    if (
        urgent_rank is not None
        and signal.kind != "reward"
        and PRIORITY.get(reason, len(PRIORITY)) >= urgent_rank
    ):
        return True
    return any(r == reason and abs(at_ms - ts) < reason_ms for r, ts in past)


def _gate(
    signals: list[Signal],
    session: SessionState,
    state: CustomerState,
    rules: PolicyRules,
    at_ms: int,
    suppressed: list[tuple[str, str]],
) -> list[Signal]:
    """The signals that pass quiet, cooldowns and caps; the others go to ``suppressed``."""
    if not signals:
        return signals
    past = [
        (i["reason"], i["session_id"], decision_ts(i))
        for i in state.interventions
        if i.get("delivery") != "shadow"
    ]
    elsewhere = {s.session_id for s in state.sessions} - {session.session_id}
    cooling = [(r, ts) for r, session_id, ts in past if session_id not in elsewhere]
    bought_ms = state.profile.last_purchase_ts_ms
    quiet = bought_ms > 0 and 0 <= at_ms - bought_ms < rules.quiet_after_purchase_ms
    in_session = sum(1 for _, session_id, _ in past if session_id == session.session_id)
    today = sum(1 for _, _, ts in past if at_ms - _DAY_MS < ts <= at_ms)
    capped = in_session >= rules.session_cap or today >= rules.daily_cap
    # The most urgent reason decided within the overall cooldown: only a more urgent one
    # may speak before it is over.
    recent_ranks = [
        PRIORITY.get(reason, len(PRIORITY))
        for reason, ts in cooling
        if abs(at_ms - ts) < rules.any_cooldown_ms
    ]
    urgent_rank = min(recent_ranks, default=None)
    passed: list[Signal] = []
    for signal in signals:
        reason = signal.reason
        if quiet and signal.kind in _QUIET_KINDS:
            suppressed.append((reason, "quiet"))
        elif _cooling(signal, cooling, at_ms, rules.reason_cooldown_ms, urgent_rank):
            suppressed.append((reason, "cooldown"))
        elif capped:
            suppressed.append((reason, "cap"))
        else:
            passed.append(signal)
    return passed
