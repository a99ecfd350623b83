"""The Prometheus metrics of contract §5 (and a few more), in one injectable value."""

from __future__ import annotations

from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from app.feedback.feedback import OUTCOMES
from app.runtime.loop_histogram import LoopHistogram

__all__ = [
    "KNOWN_FEEDBACK_REJECT_REASONS",
    "KNOWN_HTTP_REFUSE_REASONS",
    "KNOWN_REJECT_REASONS",
    "KNOWN_SUPPRESS_CAUSES",
    "KNOWN_VARIANT_SKIP_CAUSES",
    "KNOWN_WEBHOOK_OUTCOMES",
    "Metrics",
]

# Latency buckets from 1 ms to 10 s: the target is milliseconds end to end, and the
# tail past a second shows fetch waits or rebalances.
_LATENCY_BUCKETS_S = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
# One event inside the worker takes tens of microseconds; buckets reach 100 ms for stalls.
_PROCESSING_BUCKETS_S = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.1,
)  # fmt: skip
# A young collection takes microseconds; a full one over a big heap, up to seconds.
_GC_PAUSE_BUCKETS_S = (
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
# A webhook receiver answers in milliseconds to a second; the buckets reach 30 s, past
# the default 5 s POST timeout, so a raised timeout still shows where answers fall.
_WEBHOOK_BUCKETS_S = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
_SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


#: Label values shown from the start, so dashboards and ``rate()`` see zeros, not gaps.
KNOWN_REJECT_REASONS = (
    "not_an_object", "missing_field", "invalid_field", "unknown_type", "invalid_json",
    "invalid_body", "too_many_events", "too_large", "internal_error", "ts_too_old",
    "ts_in_future",
)  # fmt: skip
#: Why feedback was refused (``app.feedback``); ``store_unavailable``: Redis failed or hung.
KNOWN_FEEDBACK_REJECT_REASONS = (
    "invalid_json", "not_an_object", "missing_field", "invalid_field", "unknown_outcome",
    "ts_too_old", "ts_in_future", "too_large", "unknown_intervention", "customer_mismatch",
    "store_unavailable", "internal_error",
)  # fmt: skip
#: Why a verdict on a variant (accepted, converted, dismissed) taught no bandit: the bandit
#: of the customer's partition is on another worker, the intervention taught it already,
#: Redis (which says whether it did) failed or hung, or a bug.
KNOWN_VARIANT_SKIP_CAUSES = ("not_owned", "already_learned", "store_unavailable", "internal_error")
#: Why a request was answered before its body was read or used (``app.runtime.guard``):
#: no or a wrong key (401), a publishable key on a route that reads (403), a Content-Type
#: that is not JSON (415), a body that did not arrive in time (408).
KNOWN_HTTP_REFUSE_REASONS = ("unauthorized", "forbidden", "unsupported_media_type", "body_timeout")
#: Causes of decided-but-not-sent interventions (``app.decide.policy``).
KNOWN_SUPPRESS_CAUSES = ("cooldown", "bot")
#: What became of a webhook (``app.deliver.webhooks``), per URL: ``delivered`` (2xx),
#: ``retried`` (a failed try that is tried again), ``failed`` (given up: dead-lettered).
KNOWN_WEBHOOK_OUTCOMES = ("delivered", "retried", "failed")


class Metrics(NamedTuple):
    """Every metric a worker exports; build one with ``Metrics.create``."""

    events_received: Counter
    events_rejected: Counter
    events_processed: Counter
    events_duplicate: Counter
    events_forwarded: Counter
    events_late: Counter
    rate_limited: Counter
    http_refused: Counter
    interventions: Counter
    interventions_suppressed: Counter
    delivery_errors: Counter
    redis_up: Gauge
    redis_caught_up: Counter
    webhook_deliveries: Counter
    webhook_latency: Histogram
    feedback: Counter
    feedback_rejected: Counter
    variant_rewards_skipped: Counter
    event_to_intervention: Histogram
    processing: LoopHistogram
    event_lag: Gauge
    active_customers: Gauge
    states_decoded: Gauge
    state_decodes: Counter
    model_score: LoopHistogram
    gc_pause: Histogram
    gc_freezes: Counter
    timers_pending: Gauge
    timers_fired: Counter
    customers_expired: Counter
    changelog_writes: Counter
    commit: Histogram
    model_learned: Counter
    model_auc: Gauge
    model_log_loss: Gauge
    model_drift: Counter
    model_examples: Gauge
    model_partitions: Gauge
    model_checkpoint: Histogram
    model_checkpoint_bytes: Gauge
    sse_clients: Gauge
    consumer_lag: Gauge
    consumer_committed: Gauge
    rebalances: Counter
    assigned_partitions: Gauge
    table_recovery_remaining: Gauge
    catch_up_remaining: Gauge
    ready: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry, prefix: str = "nudgeflow") -> Metrics:
        """Register the metrics on ``registry`` (tests pass a fresh one).

        Examples
        --------
        >>> m = Metrics.create(CollectorRegistry())
        >>> m.events_processed.inc()
        """
        p = prefix
        metrics = cls(
            events_received=Counter(
                f"{p}_events_received", "Events that reached the collector or the clicks topic.",
                ["source"], registry=registry,
            ),
            events_rejected=Counter(
                f"{p}_events_rejected", "Events refused and written to clicks-failed.",
                ["reason"], registry=registry,
            ),
            events_processed=Counter(
                f"{p}_events_processed", "Events whose customer state was updated.",
                registry=registry,
            ),
            events_duplicate=Counter(
                f"{p}_events_duplicate", "Exact repeats of an event id, dropped.",
                registry=registry,
            ),
            events_forwarded=Counter(
                f"{p}_events_forwarded", "Events found on another clicks partition than their "
                "customer_id's, re-produced to the right one before touching any state.",
                registry=registry,
            ),
            events_late=Counter(
                f"{p}_events_late", "Events accepted beyond the allowed lateness (they trigger "
                "nothing).", registry=registry,
            ),
            rate_limited=Counter(
                f"{p}_rate_limited", "Requests answered 429 by a rate limit: per API key "
                "(scope=key) or per client address (scope=ip).", ["scope"], registry=registry,
            ),
            http_refused=Counter(
                f"{p}_http_refused", "Requests refused before their body was used: unauthorized, "
                "forbidden, unsupported_media_type, body_timeout.", ["reason"], registry=registry,
            ),
            interventions=Counter(
                f"{p}_interventions", "Interventions emitted.", ["kind", "reason"],
                registry=registry,
            ),
            interventions_suppressed=Counter(
                f"{p}_interventions_suppressed", "Interventions decided but not sent.",
                ["cause"], registry=registry,
            ),
            delivery_errors=Counter(
                f"{p}_delivery_errors", "Interventions a delivery channel failed to take.",
                ["channel"], registry=registry,
            ),
            redis_up=Gauge(
                f"{p}_redis_up", "1 while Redis takes the interventions' copy, 0 while it does "
                "not (they wait on Kafka).", registry=registry,
            ),
            redis_caught_up=Counter(
                f"{p}_redis_caught_up", "Interventions the Redis catch-up from Kafka wrote "
                "because the fast path had not.", registry=registry,
            ),
            webhook_deliveries=Counter(
                f"{p}_webhook_deliveries", "Webhook POSTs per intervention and URL: delivered, "
                "retried (a failed try tried again) or failed (dead-lettered).", ["outcome"],
                registry=registry,
            ),
            webhook_latency=Histogram(
                f"{p}_webhook_latency_seconds", "One webhook POST, until its answer or timeout.",
                buckets=_WEBHOOK_BUCKETS_S, registry=registry,
            ),
            feedback=Counter(
                f"{p}_feedback", "Feedback on interventions recorded (HTTP or the "
                "intervention-feedback topic).", ["outcome"], registry=registry,
            ),
            feedback_rejected=Counter(
                f"{p}_feedback_rejected", "Feedback refused (bad body, unknown intervention, "
                "another customer's) or not recorded (Redis unavailable).", ["reason"],
                registry=registry,
            ),
            variant_rewards_skipped=Counter(
                f"{p}_variant_rewards_skipped", "Verdicts on a variant that taught no bandit "
                "(its partition on another worker, taught already, Redis unavailable, a bug).",
                ["cause"], registry=registry,
            ),
            event_to_intervention=Histogram(
                f"{p}_event_to_intervention_seconds",
                "Client event time to intervention emitted.",
                buckets=_LATENCY_BUCKETS_S, registry=registry,
            ),
            processing=LoopHistogram(
                f"{p}_processing_seconds", "One event's time inside the worker.",
                buckets=_PROCESSING_BUCKETS_S, registry=registry,
            ),
            event_lag=Gauge(
                f"{p}_event_lag_seconds", "Now minus event time of the newest processed event.",
                registry=registry,
            ),
            active_customers=Gauge(
                f"{p}_active_customers", "Customers with live state on this worker.",
                registry=registry,
            ),
            states_decoded=Gauge(
                f"{p}_states_decoded",
                "Customer states held decoded (NUDGEFLOW_DECODED_STATES_MAX); the others are "
                "held encoded.", registry=registry,
            ),
            state_decodes=Counter(
                f"{p}_state_decodes", "Reads of a customer state held encoded.",
                registry=registry,
            ),
            model_score=LoopHistogram(
                f"{p}_model_score", "Scores the models give.", ["model"],
                buckets=_SCORE_BUCKETS, registry=registry,
            ),
            gc_pause=Histogram(
                f"{p}_gc_pause_seconds", "Pauses of CPython's cyclic garbage collector.",
                ["generation"], buckets=_GC_PAUSE_BUCKETS_S, registry=registry,
            ),
            gc_freezes=Counter(
                f"{p}_gc_freezes", "Times the survivors were frozen out of the collector's scans.",
                registry=registry,
            ),
            timers_pending=Gauge(
                f"{p}_timers_pending", "Customers with a silence rule due, on this worker.",
                registry=registry,
            ),
            timers_fired=Counter(
                f"{p}_timers_fired", "Timers that came due (a silence rule was checked).",
                registry=registry,
            ),
            customers_expired=Counter(
                f"{p}_customers_expired", "Customers deleted after the TTL without events.",
                registry=registry,
            ),
            changelog_writes=Counter(
                f"{p}_changelog_writes", "Customer states (and tombstones) written to the "
                "table changelog; one per changed customer per commit.", registry=registry,
            ),
            commit=Histogram(
                f"{p}_commit_seconds", "Time a commit takes to put the changed customer "
                "states and model checkpoints on their changelogs, before its offsets are "
                "committed (the agent goes on meanwhile); its count is the commits.",
                buckets=_GC_PAUSE_BUCKETS_S, registry=registry,
            ),
            model_learned=Counter(
                f"{p}_model_learned", "Labelled examples (or baseline values) an online model "
                "has learned, in this process.", ["model"], registry=registry,
            ),
            model_auc=Gauge(
                f"{p}_model_auc", "Progressive-validation ROC AUC (each label scored before it "
                "is learned), over this worker's partitions, weighted by labels.", ["model"],
                registry=registry,
            ),
            model_log_loss=Gauge(
                f"{p}_model_log_loss", "Progressive-validation log loss, over this worker's "
                "partitions, weighted by labels.", ["model"], registry=registry,
            ),
            model_drift=Counter(
                f"{p}_model_drift", "Concept drifts detected (ADWIN on the model's error).",
                ["model"], registry=registry,
            ),
            model_examples=Gauge(
                f"{p}_model_examples", "Examples the models of this worker's partitions hold, "
                "restored checkpoints included.", ["model"], registry=registry,
            ),
            model_partitions=Gauge(
                f"{p}_model_partitions", "Partitions whose models this worker holds (one "
                "owner per partition across the group).", registry=registry,
            ),
            model_checkpoint=Histogram(
                f"{p}_model_checkpoint_seconds", "Time to serialise one partition's models.",
                buckets=_GC_PAUSE_BUCKETS_S, registry=registry,
            ),
            model_checkpoint_bytes=Gauge(
                f"{p}_model_checkpoint_bytes", "Size of the last models checkpoint written.",
                registry=registry,
            ),
            sse_clients=Gauge(
                f"{p}_sse_clients", "Open server-sent event streams of interventions.",
                registry=registry,
            ),
            # The seven below are set every second by app.runtime.ops_metrics, not per event.
            consumer_lag=Gauge(
                f"{p}_consumer_lag_records", "Records after this worker's committed offset "
                "(high watermark minus committed), per owned partition of the agents' topics.",
                ["topic", "partition"], registry=registry,
            ),
            consumer_committed=Gauge(
                f"{p}_consumer_committed_offset", "The offset this worker last committed (the "
                "next it reads), per owned partition of the agents' topics.",
                ["topic", "partition"], registry=registry,
            ),
            rebalances=Counter(
                f"{p}_rebalances", "Consumer group rebalances this worker went through.",
                registry=registry,
            ),
            assigned_partitions=Gauge(
                f"{p}_assigned_partitions", "Partitions of clicks this worker owns.",
                registry=registry,
            ),
            table_recovery_remaining=Gauge(
                f"{p}_table_recovery_remaining_records", "Changelog records this worker still "
                "has to read before its table partitions are recovered (0 once recovered).",
                ["table"], registry=registry,
            ),
            catch_up_remaining=Gauge(
                f"{p}_catch_up_remaining_records", "Records of the clicks partitions this "
                "worker was given that it still has to process, up to their end at the "
                "assignment, before it answers for their customers (0 once caught up).",
                registry=registry,
            ),
            ready=Gauge(
                f"{p}_ready", "1 while /readyz answers 200 (partitions assigned, no rebalance "
                "under way, tables recovered, caught up), else 0.", registry=registry,
            ),
        )  # fmt: skip
        for source in ("http", "kafka"):
            metrics.events_received.labels(source=source)
        for reason in KNOWN_REJECT_REASONS:
            metrics.events_rejected.labels(reason=reason)
        for scope in ("key", "ip"):
            metrics.rate_limited.labels(scope=scope)
        for reason in KNOWN_HTTP_REFUSE_REASONS:
            metrics.http_refused.labels(reason=reason)
        for cause in KNOWN_SUPPRESS_CAUSES:
            metrics.interventions_suppressed.labels(cause=cause)
        for channel in ("kafka", "redis", "uplift"):
            metrics.delivery_errors.labels(channel=channel)
        for outcome in KNOWN_WEBHOOK_OUTCOMES:
            metrics.webhook_deliveries.labels(outcome=outcome)
        for outcome in OUTCOMES:
            metrics.feedback.labels(outcome=outcome)
        for reason in KNOWN_FEEDBACK_REJECT_REASONS:
            metrics.feedback_rejected.labels(reason=reason)
        for cause in KNOWN_VARIANT_SKIP_CAUSES:
            metrics.variant_rewards_skipped.labels(cause=cause)
        for generation in ("0", "1", "2"):
            metrics.gc_pause.labels(generation=generation)
        return metrics

    def announce_interventions(
        self, kinds_and_reasons: list[tuple[str, str]], models: list[str]
    ) -> None:
        """Show zero-valued series for every (kind, reason) and model a worker can emit."""
        for kind, reason in kinds_and_reasons:
            self.interventions.labels(kind=kind, reason=reason)
        for model in models:
            self.model_score.labels(model=model)
