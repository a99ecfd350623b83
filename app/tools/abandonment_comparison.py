"""Abandonment: the learned score against the ``cart_abandonment_risk`` rule, offline.

Issue 9 lets the learned abandonment score drive ``cart_abandonment_risk`` once it
beats the rule on held-out simulated data. This module measures that in process,
deterministically, without a broker, in about ten seconds for the default sets.

**Replay.** Each simulated stream goes through one ``clicks`` partition as the
worker runs it (``agents/process_clicks.py``, ``app/runtime/event_time.py``):
events in arrival (offset) order, the partition's watermark (newest event time -
allowed lateness) firing the timers due before each event, ``process_event`` with
the learner's adapted rules, then ``learn_event`` and ``annotate``; a timer that
changes a state is followed by ``learn_ended`` and ``annotate``. After a stream's
last event the watermark moves half a day on (as ``nudgeflow eval``'s tick), so
every silence fires and every session ends. One ``PartitionLearner`` learns the
tuning streams (seeds 1-3 of variant ``tuning``) and then the held-out stream
(seed 1000 of variant ``holdout``), a day apart, as one worker does through
``nudgeflow eval``; the model is progressive throughout: a session's scores are
given before its label is learned. A timer that finds nothing due yet (the
customer's due time moved later since it was set) is set again for the new due
time, as the worker does.

**Cart sessions and their outcome.** A cart session is one whose state held a cart
(``SessionState.has_cart``: a value, or items) after some event; crawlers' sessions are
left out (the policy gives them nothing, whoever predicts). It is *abandoned* when the
simulator wrote no ``purchase`` for it and its state still held a cart when it ended; a session
that bought, or emptied its cart, is not. The purchase is read from the events
themselves, so one that arrived too late for the pipeline still counts.

**Predictors of "this cart session will be abandoned".**

- *rule*: ``cart_abandonment_risk`` fired for the session (as the intervention's
  reason or as evidence of another). It fires when the visit ends
  (``session_end``) or the cart is idle for ``cart_idle_ms`` (10 min), so it knows
  at the session's last event at best. It leaves a session to ``checkout_stall``
  once that fired, so *rule or stall* (the first of the two) is shown too.
- *model*: the abandonment model's score at a cart or checkout event of the session
  (``ABANDONMENT_TRIGGERS``, scored while the session holds a cart) reached the
  threshold; the flag is the first such event, as a detector driven by the score
  would fire. The threshold maximises F1 over the tuning streams' cart sessions
  and is used unchanged on held-out: nothing is chosen on held-out. A session
  with no such event while it holds a cart gets no score, and no flag.

For each: precision and recall over every cart session, and over the cart
sessions the model scored (where both can answer); and the *lead*: the session's
last event time minus the predictor's first flag, over the abandoned sessions it
flagged (the median, in seconds; negative when it flags after the last event).
The model's *AUC* is the exact ROC AUC over the scored cart sessions of the last
score each was given, and of the first; both were given before the session's
outcome was learned (progressive, so each stream is held out from the model).
The last score is only known to be the last in hindsight: a detector acts on the
scores as they come, which is what precision, recall and lead measure. The
learner's own progressive AUC (what the worker exports) is over every score given,
each met with its session's outcome.

**Verdict.** The model beats the rule when its held-out F1 over every cart
session, at the tuning threshold, is higher than the rule's.

Run ``python -m app.tools.abandonment_comparison`` for the markdown section;
``nudgeflow eval`` adds it to its report, for the sets it ran.
"""

from __future__ import annotations

import argparse
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from app.decide.policy import PolicyRules
from app.detect.learning import PartitionLearner
from app.detect.models.partition import PartitionModels
from app.detect.partition_run import PartitionRun
from app.detect.pipeline import Outcome, Rules
from app.detect.signals.cart_abandonment import REASON
from app.detect.signals.checkout_stall import REASON as STALL
from app.errors import NothingScored
from app.ingest.events import ClickEvent, validate_event
from app.tools.simulator import SimulationConfig, simulate
from app.tools.simulator.config import DEFAULT_START_MS
from tables.customer_state import CustomerState

__all__ = [
    "AbandonmentComparison",
    "CartSession",
    "Detection",
    "Predictors",
    "StreamComparison",
    "choose_threshold",
    "compare",
    "compare_and_render",
    "markdown_section",
    "render_cart_only",
    "render_markdown",
    "replay_cart_sessions",
    "roc_auc",
    "simulated_streams",
    "without_checkout",
]

#: A simulated event as the simulator writes it (contract §1, ``ts`` in ms).
Event = Mapping[str, Any]

_DAY_MS = 86_400_000
_TITLE = "## Abandonment: learned score vs rule"
# As ``nudgeflow eval``: after a stream, the watermark moves half a day on, far past
# every silence (cart idle is 10 min) and the session timeout (30 min).
_CLOSE_AFTER_MS = _DAY_MS // 2
# The sets ``nudgeflow eval`` scores: seeds 1-3 of ``tuning``, seed 1000 of ``holdout``.
_TUNING_SEEDS = (1, 2, 3)
_HOLDOUT_SEED = 1000
#: What a shop that tracks no checkout does not send: the model then scores cart changes.
_CHECKOUT_TYPES = frozenset({"checkout_step", "payment_attempt", "payment_failed"})


@dataclass(slots=True, frozen=True)
class CartSession:
    """One session that held a cart: how it ended, when the rule fired, what the model said."""

    customer_id: str
    session_id: str
    abandoned: bool
    purchased: bool
    #: Event time of the session's last event.
    ended_ts_ms: int
    #: When ``cart_abandonment_risk`` first fired for it (its ``fired_ts`` or ``event_ts``).
    rule_ts_ms: int | None
    #: When ``checkout_stall`` first fired for it (the rule then leaves the session to it).
    stall_ts_ms: int | None
    #: (event time, score) of each abandonment score, in processing order.
    scores: tuple[tuple[int, float], ...]

    def model_ts_ms(self, threshold: float) -> int | None:
        """When the model's score first reached ``threshold`` (None: never).

        Examples
        --------
        >>> s = CartSession("c", "s", True, False, 90, None, None, ((10, 0.4), (50, 0.8)))
        >>> s.model_ts_ms(0.5), s.model_ts_ms(0.9)
        (50, None)
        """
        return next((ts for ts, score in self.scores if score >= threshold), None)

    @property
    def rules_ts_ms(self) -> int | None:
        """When ``cart_abandonment_risk`` or ``checkout_stall`` first fired (None: neither)."""
        fired = [ts for ts in (self.rule_ts_ms, self.stall_ts_ms) if ts is not None]
        return min(fired, default=None)


@dataclass(slots=True, frozen=True)
class Detection:
    """How one predictor of "this cart session will be abandoned" did on a set of sessions."""

    sessions: int
    abandoned: int
    flagged: int
    flagged_abandoned: int
    #: Median of (last event - first flag) over the abandoned sessions flagged, in seconds.
    lead_p50_s: float | None

    @property
    def precision(self) -> float | None:
        """Flagged sessions that were abandoned, over flagged sessions."""
        return self.flagged_abandoned / self.flagged if self.flagged else None

    @property
    def recall(self) -> float | None:
        """Abandoned sessions flagged, over abandoned sessions."""
        return self.flagged_abandoned / self.abandoned if self.abandoned else None

    @property
    def f1(self) -> float:
        """The harmonic mean of precision and recall (0 when nothing is right).

        Examples
        --------
        >>> Detection(10, 4, 4, 3, None).f1
        0.75
        """
        wrong = (self.flagged - self.flagged_abandoned) + (self.abandoned - self.flagged_abandoned)
        right = 2 * self.flagged_abandoned
        return right / (right + wrong) if right else 0.0


@dataclass(slots=True, frozen=True)
class Predictors:
    """The rule, the rule with ``checkout_stall``, and the model, on one set of sessions."""

    rule: Detection
    rule_or_stall: Detection
    model: Detection


@dataclass(slots=True, frozen=True)
class StreamComparison:
    """Rule and model on the cart sessions of one stream (``tuning`` or ``holdout``)."""

    name: str
    events: int
    #: On every cart session, and on those the model scored.
    every: Predictors
    scored: Predictors
    #: ROC AUC over the scored sessions of the last score each was given (what the model
    #: said at the last cart or checkout event) and of the first (at the first); None without both
    #: outcomes. Both progressive: given before the session's outcome was learned.
    auc_last: float | None
    auc_first: float | None
    #: The learner's own progressive ROC AUC (River's, as the worker exports it) at the end
    #: of the stream, over every score met with its label since the learner started.
    worker_auc: float


@dataclass(slots=True, frozen=True)
class AbandonmentComparison:
    """The threshold chosen on tuning, and rule and model on tuning and held-out."""

    threshold: float
    tuning: StreamComparison
    holdout: StreamComparison

    @property
    def model_beats_rule(self) -> bool:
        """Whether the model's held-out F1 over every cart session is above the rule's."""
        return self.holdout.every.model.f1 > self.holdout.every.rule.f1


@dataclass(slots=True)
class _Cart:
    """What the replay learns of one session while it runs."""

    ended_ts_ms: int
    had_cart: bool = False
    # Whether the state held a cart after the session's last event.
    has_cart: bool = False
    purchased: bool = False
    bot: bool = False
    rule_ts_ms: int | None = None
    stall_ts_ms: int | None = None
    scores: list[tuple[int, float]] = field(default_factory=list)


class _Partition:
    """One ``clicks`` partition as the worker runs it (``PartitionRun``), and its carts."""

    def __init__(self, learner: PartitionLearner) -> None:
        self.learner = learner
        self.run = PartitionRun(learner.base, learner, on_outcome=self._outcome)
        self.sessions: dict[tuple[str, str], _Cart] = {}
        self.events = 0

    def event(self, click: ClickEvent) -> None:
        self.events += 1
        key = (click.customer_id, click.session_id)
        cart = self.sessions.get(key)
        if cart is None:
            cart = self.sessions[key] = _Cart(click.ts_ms)
        cart.ended_ts_ms = max(cart.ended_ts_ms, click.ts_ms)
        cart.purchased = cart.purchased or click.type == "purchase"
        # A replay of old events: each arrives at its own time.
        outcome = self.run.event(click, arrival_ms=click.ts_ms)
        learner = self.learner
        for name, score in learner.scores:
            if name == "abandonment":  # only the event's own session is scored
                cart.scores.append((click.ts_ms, score))
        learner.scores.clear()
        if outcome.duplicate or outcome.late or outcome.state is None:
            return
        for session in outcome.state.sessions:
            if session.session_id == click.session_id:
                cart.has_cart = session.has_cart
                cart.had_cart = cart.had_cart or session.has_cart
                cart.bot = session.bot

    def close(self) -> None:
        """Move the watermark past every silence and session timeout."""
        watermark_ms = self.run.clock.newest_ts_ms + _CLOSE_AFTER_MS
        watermark_ms -= self.learner.base.time.allowed_lateness_ms
        self.run.fire(watermark_ms, watermark_ms)
        self.learner.scores.clear()

    def _outcome(self, customer_id: str, _before: CustomerState | None, outcome: Outcome) -> None:
        for intervention in outcome.interventions:
            cart = self.sessions.get((customer_id, intervention["session_id"]))
            if cart is None:
                continue
            signals, fired_ts_ms = intervention["signals"], _fired_ts_ms(intervention)
            if REASON in signals and cart.rule_ts_ms is None:
                cart.rule_ts_ms = fired_ts_ms
            if STALL in signals and cart.stall_ts_ms is None:
                cart.stall_ts_ms = fired_ts_ms


def _fired_ts_ms(intervention: Mapping[str, Any]) -> int:
    ts_ms: int = intervention.get("fired_ts", intervention["event_ts"])
    return ts_ms


def replay_cart_sessions(
    events: Iterable[Event], learner: PartitionLearner
) -> tuple[list[CartSession], int]:
    """Replay ``events`` (arrival order) through a fresh partition that ``learner`` learns
    on, then close it; its cart sessions (by customer, then session) and its event count.

    Examples
    --------
    >>> def e(n, type, ms, **f):
    ...     return {"event_id": f"e{n}", "customer_id": "c1", "session_id": "s1",
    ...             "type": type, "ts": 1_767_225_600_000 + ms, **f}
    >>> events = [e(1, "add_to_cart", 0, product_id="p1", value=40.0),
    ...           e(2, "checkout_step", 20_000, step="cart", value=40.0),
    ...           e(3, "session_end", 60_000)]
    >>> sessions, n = replay_cart_sessions(events, PartitionLearner(PartitionModels(), Rules()))
    >>> s = sessions[0]
    >>> n, s.abandoned, s.rule_ts_ms - s.ended_ts_ms, s.scores[0][1]
    (3, True, 0, 0.5)
    """
    partition = _Partition(learner)
    for raw in events:
        partition.event(validate_event(raw))
    partition.close()
    found = [
        CartSession(
            customer_id,
            session_id,
            abandoned=not cart.purchased and cart.has_cart,
            purchased=cart.purchased,
            ended_ts_ms=cart.ended_ts_ms,
            rule_ts_ms=cart.rule_ts_ms,
            stall_ts_ms=cart.stall_ts_ms,
            scores=tuple(cart.scores),
        )
        for (customer_id, session_id), cart in sorted(partition.sessions.items())
        if cart.had_cart and not cart.bot
    ]
    return found, partition.events


def choose_threshold(sessions: Sequence[CartSession]) -> float:
    """The score threshold with the best F1 on ``sessions`` (the highest one on a tie).

    Only the scores given are candidates: a session is flagged when any of its
    scores reaches the threshold. ``NothingScored`` (a ValueError) without any score.

    Examples
    --------
    >>> def s(abandoned, *scores):
    ...     return CartSession("c", "s", abandoned, not abandoned, 0, None, None,
    ...                        tuple((0, x) for x in scores))
    >>> choose_threshold([s(True, 0.9), s(True, 0.4, 0.7), s(False, 0.6), s(False, 0.2)])
    0.7
    """
    peaks = sorted({max(score for _, score in s.scores) for s in sessions if s.scores})
    if not peaks:
        raise NothingScored("no cart session was scored: there is no threshold to choose")
    best = max(peaks, key=lambda t: (_detect(sessions, lambda s: s.model_ts_ms(t)).f1, t))
    return float(best)


def roc_auc(labels: Sequence[bool], scores: Sequence[float]) -> float | None:
    """Exact ROC AUC (ties count half), or None without both classes.

    Examples
    --------
    >>> roc_auc([True, False, True, False], [0.9, 0.3, 0.5, 0.5])
    0.875
    """
    positives = [s for y, s in zip(labels, scores, strict=True) if y]
    negatives = sorted(s for y, s in zip(labels, scores, strict=True) if not y)
    if not positives or not negatives:
        return None
    wins = 0.0
    for p in positives:
        below = bisect_left(negatives, p)
        wins += below + (bisect_right(negatives, p) - below) / 2
    return wins / (len(positives) * len(negatives))


# The policy that lets every signal speak (each reason still once per session).
_EVERY_DECISION = PolicyRules(
    reason_cooldown_ms=0, any_cooldown_ms=0, session_cap=1_000, daily_cap=1_000,
    quiet_after_purchase_ms=0, holdout_share=0.0,
)  # fmt: skip


def compare(
    tuning: Sequence[Sequence[Event]], holdout: Sequence[Sequence[Event]]
) -> AbandonmentComparison:
    """Replay the tuning streams then the held-out ones through one learner (the default
    models and rules); choose the threshold on tuning alone, and measure rule and model
    on both. Detectors are compared, not the policy: no cooldown or cap holds the rule back."""
    learner = PartitionLearner(PartitionModels(), Rules(policy=_EVERY_DECISION))
    tuning_sessions, tuning_events = _replay_all(tuning, learner)
    threshold = choose_threshold(tuning_sessions)
    tuning_auc = learner.models.auc("abandonment")
    holdout_sessions, holdout_events = _replay_all(holdout, learner)
    holdout_auc = learner.models.auc("abandonment")
    return AbandonmentComparison(
        threshold=threshold,
        tuning=_stream("tuning", tuning_sessions, tuning_events, threshold, tuning_auc),
        holdout=_stream("holdout", holdout_sessions, holdout_events, threshold, holdout_auc),
    )


def simulated_streams(
    customers: int = 300,
    days: float = 3.0,
    tuning_seeds: Sequence[int] = _TUNING_SEEDS,
    holdout_seed: int = _HOLDOUT_SEED,
) -> tuple[list[list[dict[str, Any]]], list[list[dict[str, Any]]]]:
    """The tuning streams (one per seed, variant ``tuning``) and the held-out stream
    (variant ``holdout``), each starting the midnight a full day after the last ended.

    Examples
    --------
    >>> tuning, [holdout] = simulated_streams(customers=3, days=1.0, tuning_seeds=(1, 2))
    >>> len(tuning), {e["customer_id"].split("-")[0] for e in holdout}
    (2, {'c1000'})
    >>> max(e["ts"] for e in tuning[0]) < min(e["ts"] for e in tuning[1])
    True
    """
    start_ms = DEFAULT_START_MS
    streams: list[list[dict[str, Any]]] = []
    for variant, seed in [*(("tuning", s) for s in tuning_seeds), ("holdout", holdout_seed)]:
        config = SimulationConfig(customers=customers, days=days, seed=seed, variant=variant,
                                  start_ms=start_ms)  # fmt: skip
        result = simulate(config)
        streams.append(result.events)
        start_ms = (max(label.ended_ts for label in result.labels) // _DAY_MS + 2) * _DAY_MS
    return streams[:-1], streams[-1:]


def without_checkout(stream: Iterable[Event]) -> list[Event]:
    """The stream as a shop that sends cart changes and purchases but no checkout steps or
    payments would send it.

    Examples
    --------
    >>> [e["type"] for e in without_checkout([{"type": "add_to_cart"},
    ...     {"type": "checkout_step"}, {"type": "payment_failed"}, {"type": "purchase"}])]
    ['add_to_cart', 'purchase']
    """
    return [event for event in stream if event["type"] not in _CHECKOUT_TYPES]


def markdown_section(
    customers: int = 300,
    days: float = 3.0,
    tuning_seeds: Sequence[int] = _TUNING_SEEDS,
    holdout_seed: int = _HOLDOUT_SEED,
) -> str:
    """The section "Abandonment: learned score vs rule" for these simulated sets, then the
    same for them without checkout steps or payments (``without_checkout``); a set too
    small for the model to score any tuning session gets a line that says so.

    Examples
    --------
    >>> print(markdown_section(customers=1, days=0.1, tuning_seeds=()))  # nothing to tune on
    ## Abandonment: learned score vs rule
    <BLANKLINE>
    No comparison: no cart session was scored: there is no threshold to choose.
    <BLANKLINE>
    """
    return compare_and_render(*simulated_streams(customers, days, tuning_seeds, holdout_seed))


def compare_and_render(
    tuning: Sequence[Sequence[Event]], holdout: Sequence[Sequence[Event]]
) -> str:
    """The section for these streams, and the paragraph for them without checkout steps or
    payments; each says so when there is nothing to compare."""
    try:
        section = render_markdown(compare(tuning, holdout))
    except NothingScored as exc:
        return f"{_TITLE}\n\nNo comparison: {exc}.\n"
    try:
        cart_only = compare([without_checkout(s) for s in tuning],
                            [without_checkout(s) for s in holdout])  # fmt: skip
    except NothingScored as exc:
        return f"{section}\nWithout checkout steps or payments, no comparison: {exc}.\n"
    return section + render_cart_only(cart_only)


def render_cart_only(result: AbandonmentComparison) -> str:
    """A paragraph on the comparison of streams without checkout steps or payments."""
    tuning, holdout = result.tuning, result.holdout
    return (
        "\nWithout checkout steps or payments (the same streams, as a shop that tracks only "
        "cart changes and purchases would send them: the model then scores cart changes, "
        "and `checkout_stall` cannot fire), the learner's own progressive ROC AUC is "
        f"{tuning.worker_auc:.3f} on tuning and {holdout.worker_auc:.3f} on held-out; over "
        f"the held-out scored cart sessions, {_num(holdout.auc_last, 3)} from each one's last "
        f"score and {_num(holdout.auc_first, 3)} from its first. On held-out, F1 over every "
        f"cart session: model {holdout.every.model.f1:.3f} (threshold "
        f"{result.threshold:.3f}, from tuning), rule {holdout.every.rule.f1:.3f}.\n"
    )


def _replay_all(
    streams: Sequence[Sequence[Event]], learner: PartitionLearner
) -> tuple[list[CartSession], int]:
    sessions: list[CartSession] = []
    events = 0
    for stream in streams:
        found, n = replay_cart_sessions(stream, learner)
        sessions += found
        events += n
    return sessions, events


def _stream(
    name: str, sessions: Sequence[CartSession], events: int, threshold: float, worker_auc: float
) -> StreamComparison:
    scored = [s for s in sessions if s.scores]
    abandoned = [s.abandoned for s in scored]
    return StreamComparison(
        name=name,
        events=events,
        every=_predictors(sessions, threshold),
        scored=_predictors(scored, threshold),
        auc_last=roc_auc(abandoned, [s.scores[-1][1] for s in scored]),
        auc_first=roc_auc(abandoned, [s.scores[0][1] for s in scored]),
        worker_auc=worker_auc,
    )


def _predictors(sessions: Sequence[CartSession], threshold: float) -> Predictors:
    return Predictors(
        rule=_detect(sessions, lambda s: s.rule_ts_ms),
        rule_or_stall=_detect(sessions, lambda s: s.rules_ts_ms),
        model=_detect(sessions, lambda s: s.model_ts_ms(threshold)),
    )


def _detect(
    sessions: Sequence[CartSession], flag: Callable[[CartSession], int | None]
) -> Detection:
    flagged = 0
    leads_s: list[float] = []
    for s in sessions:
        ts = flag(s)
        if ts is None:
            continue
        flagged += 1
        if s.abandoned:
            leads_s.append((s.ended_ts_ms - ts) / 1000)
    return Detection(
        sessions=len(sessions),
        abandoned=sum(s.abandoned for s in sessions),
        flagged=flagged,
        flagged_abandoned=len(leads_s),
        lead_p50_s=float(median(leads_s)) if leads_s else None,
    )


def render_markdown(result: AbandonmentComparison) -> str:
    """The report section "Abandonment: learned score vs rule"."""
    lines = [
        _TITLE,
        "",
        "Replayed in process through one `clicks` partition as the worker runs it "
        "(`app/tools/abandonment_comparison.py`), the tuning streams then the held-out one, "
        "the model learning progressively (each score given before its session's outcome is "
        "learned). "
        f"Cart sessions of shoppers (crawlers left out). Model threshold {result.threshold:.3f}, "
        "chosen on tuning (best F1) and kept for held-out. *rule*: `cart_abandonment_risk`; "
        "*rule or stall*: it or `checkout_stall`, which it leaves a stalled checkout to. Lead: "
        "the session's last event minus the first flag, median over the abandoned sessions "
        "flagged, in seconds (negative: after the last event).",
        "",
        "| stream | sessions | predictor | cart sessions | abandoned | flagged | precision "
        "| recall | F1 | lead p50 s |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for stream in (result.tuning, result.holdout):
        for population, predictors in (("every", stream.every), ("scored", stream.scored)):
            for predictor, d in (
                ("rule", predictors.rule),
                ("rule or stall", predictors.rule_or_stall),
                ("model", predictors.model),
            ):
                lines.append(
                    f"| {stream.name} | {population} | {predictor} | {d.sessions} | {d.abandoned} "
                    f"| {d.flagged} | {_pct(d.precision)} | {_pct(d.recall)} | {d.f1:.3f} "
                    f"| {_num(d.lead_p50_s)} |"
                )
    lines.append("")
    for stream in (result.tuning, result.holdout):
        lines.append(
            f"- {stream.name}: {stream.events} events. The model's ROC AUC over the scored "
            f"cart sessions (progressive): {_num(stream.auc_last, 3)} from each session's last "
            f"score, {_num(stream.auc_first, 3)} from its first; the learner's own over every "
            f"score given (River, cumulative, as the worker exports it): {stream.worker_auc:.3f}."
        )
    holdout = result.holdout.every
    verdict = "beats" if result.model_beats_rule else "does not beat"
    lines += [
        "",
        f"On held-out the model {verdict} the rule (F1 over every cart session: model "
        f"{holdout.model.f1:.3f}, rule {holdout.rule.f1:.3f}).",
        "",
    ]
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m app.tools.abandonment_comparison``: print the markdown section."""
    parser = argparse.ArgumentParser(
        prog="python -m app.tools.abandonment_comparison",
        description="Print the learned abandonment score against the rule, as markdown.",
    )
    parser.add_argument("--customers", type=int, default=300, help="customers per seed")
    parser.add_argument("--days", type=float, default=3.0, help="days of traffic per seed")
    parser.add_argument("--seeds", default=",".join(map(str, _TUNING_SEEDS)),
                        help="comma-separated seeds of the tuning streams")  # fmt: skip
    parser.add_argument("--holdout-seed", type=int, default=_HOLDOUT_SEED,
                        help="seed of the held-out stream (variant holdout)")  # fmt: skip
    args = parser.parse_args(argv)
    seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
    print(markdown_section(args.customers, args.days, seeds, args.holdout_seed))


if __name__ == "__main__":
    main()
