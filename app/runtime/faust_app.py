"""The Faust application: one ``create_app(settings)`` builds topics, tables, agents and views."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import TYPE_CHECKING, Any, cast

import faust
import redis.asyncio as aioredis
from faust.types import TP, TransportT
from prometheus_client import CollectorRegistry

from app import speedups
from app.deliver.delivery import Delivery, yield_to_sender
from app.deliver.redis_sink import RedisSink
from app.deliver.sse import InterventionHub
from app.deliver.webhooks import WebhookService
from app.detect.pipeline import Rules
from app.detect.signals import CATALOGUE
from app.feedback import FeedbackStore
from app.ingest.failures import failed_event_record
from app.runtime.catch_up import CatchUp, follow_catch_up
from app.runtime.compat import (
    DirectQueue,
    NudgeflowTransport,
    fetch_position,
    memory_store_maps,
    raw_producer,
)
from app.runtime.event_time import EventTime, fire_idle_partitions
from app.runtime.garbage_collection import (
    CollectorPauses,
    collect_everything,
    freeze_survivors,
    set_young_threshold,
)
from app.runtime.learning import ModelMetricsExport
from app.runtime.metrics import Metrics
from app.runtime.ops_metrics import OpsMetricsExport
from app.runtime.topics import CLICKS, CLICKS_FAILED, CUSTOMER_TABLE, INTERVENTIONS, MODELS_TABLE
from config import Settings
from tables.customer_to_state import CustomerStore, declare_customer_table
from tables.partition_models import Checkpoint, ModelStore, Snapshot, declare_models_table

if TYPE_CHECKING:
    from faust.tables.manager import TableManager

    from tables.customer_state import CustomerState

__all__ = ["NudgeflowApp", "create_app"]

log = logging.getLogger(__name__)

# Customers the expiry sweep visits per tick: ~5 ms of work under the batch lock.
_SWEEP_CHUNK = 5_000
# The most changed customers a commit waits for while the worker is behind: ~10 MB of
# records, built at once (Kafka Streams flushes its record cache at 10 MB by default), as
# many as a commit every 0.5 s took while 100 000 customers' visits were drained.
_COMMIT_WAITS_FOR_CHANGED_MAX = 10_000


class NudgeflowApp(faust.App):
    """A Faust app carrying nudgeflow's settings, metrics, topics and delivery channels."""

    settings: Settings
    metrics: Metrics
    registry: CollectorRegistry
    rules: Rules
    max_future_skew_ms: int
    event_time: EventTime
    clicks_topic: faust.TopicT
    # Messages of these topics bypass Faust's events (app.runtime.compat.streams).
    clicks_queue: DirectQueue
    direct_queues: dict[str, DirectQueue]
    # How far the clicks partitions taken over are from their end at the assignment.
    catch_up: CatchUp
    customer_to_state: faust.Table[str, CustomerState | bytes | None]
    customers: CustomerStore
    partition_models: faust.Table[str, bytes]
    # The online models of the owned partitions; None with learning turned off.
    models: ModelStore | None
    model_metrics: ModelMetricsExport
    ops_metrics: OpsMetricsExport
    delivery: Delivery
    # The one reader of the interventions stream behind every open SSE stream.
    sse_hub: InterventionHub
    feedback: FeedbackStore
    # POSTs interventions to the webhook URLs; None when none are set.
    webhooks: WebhookService | None
    # Catches the Redis stream up from ``interventions`` (what the fast path missed).
    redis_sink: RedisSink
    # Held by the agent while a batch is folded, delivered and acked, and by
    # ``before_commit`` to take the changed states: a commit never sees a state ahead
    # of the acked offsets.
    batch_lock: asyncio.Lock
    # One commit writes its states at a time (see ``before_commit``).
    changelog_lock: asyncio.Lock
    # Read by app.runtime.compat's transport.
    fetch_max_wait_ms: int
    tansu_compat: bool
    collector_pauses: CollectorPauses

    async def on_started(self) -> None:
        # Fetch the metadata of every topic the worker writes to before it reports
        # ready, rather than on the first record sent to each.
        producer = raw_producer(self)
        for topic in (CLICKS, CLICKS_FAILED, INTERVENTIONS,
                      self.customer_to_state.changelog_topic.get_topic_name(),
                      self.partition_models.changelog_topic.get_topic_name()):  # fmt: skip
            await producer.partitions_for(topic)
        self.collector_pauses.install()
        compiled, stale = speedups.loaded()
        log.info("hot path: %d modules compiled (app.speedups)", len(compiled))
        if stale:
            log.warning("changed since the build, so run as Python: %s", ", ".join(stale))
        # From the start: an app.timer would wait for the first table recovery (/metrics
        # itself is served from then on; later recoveries show as they go).
        self.add_future(self.ops_metrics.run())
        set_young_threshold(self.settings.gc_young_threshold)
        # Faust's consumer runs in a thread of its own: each fetch it hands over waits for
        # the interpreter while the agent works, up to this long (latency benchmark).
        sys.setswitchinterval(self.settings.gil_switch_interval_ms / 1000)
        if self.settings.gc_freeze_interval_s:
            self.freeze_survivors()  # the start-up heap (imports, the app) lives as long as we do
        # Consumer groups of their own: they need not wait for the tables' recovery.
        self.add_dependency(self.redis_sink)
        await self.redis_sink.maybe_start()
        if self.webhooks is not None:
            self.add_dependency(self.webhooks)
            await self.webhooks.maybe_start()
        await super().on_started()

    def is_ready(self) -> tuple[bool, dict[str, Any]]:
        """Partitions assigned, no rebalance under way, table recovery finished, and every
        ``clicks`` partition taken over processed up to its end at the assignment
        (``app.runtime.catch_up``; until then ``catch_up_remaining_records`` counts what is
        left, null while the end offsets are being read).

        The detail also says whether Redis takes the interventions' copy and how far
        that copy is behind Kafka: a degradation, not a reason to stop taking traffic.
        """
        try:
            assigned = len(self.consumer.assignment())
        except Exception:  # consumer not started yet
            assigned = 0
        # ``TableManagerT`` does not declare ``recovery``; the app's is a ``TableManager``.
        recovered = cast("TableManager", self.tables).recovery.completed.is_set()
        remaining = self.catch_up.remaining()
        detail = {"assigned_partitions": assigned, "rebalancing": self.rebalancing,
                  "tables_recovered": recovered, "caught_up": remaining == 0,
                  "catch_up_remaining_records": remaining,
                  **self.redis_sink.health()}  # fmt: skip
        return assigned > 0 and recovered and not self.rebalancing and remaining == 0, detail

    def count_interventions(self, interventions: list[dict[str, Any]]) -> None:
        """Count sent interventions and their delay since their rule held."""
        metrics = self.metrics
        now_s = time.time()
        for intervention in interventions:
            metrics.interventions.labels(intervention["kind"], intervention["reason"]).inc()
            fired_ms = intervention.get("fired_ts", intervention["event_ts"])
            metrics.event_to_intervention.observe(max(0.0, now_s - fired_ms / 1000))
        metrics.timers_pending.set(self.event_time.pending())

    def freeze_survivors(self) -> None:
        """Freeze what survived out of the garbage collector's scans (garbage_collection)."""
        freeze_survivors()
        self.metrics.gc_freezes.inc()

    async def keep_failed(
        self,
        *,
        reason: str,
        error: str,
        payload: object,
        source: str,
        origin: dict[str, Any],
        key: bytes | None = None,
    ) -> asyncio.Future[Any]:
        """Count a rejected event and put it on ``clicks-failed``; returns the delivery future."""
        self.metrics.events_rejected.labels(reason=reason).inc()
        record = failed_event_record(
            reason=reason, error=error, payload=payload, source=source,
            received_ts_ms=int(time.time() * 1000), origin=origin,
        )  # fmt: skip
        return cast(
            "asyncio.Future[Any]", await raw_producer(self).send(CLICKS_FAILED, record, key=key)
        )

    def commit_can_wait(self, since_commit_s: float) -> bool:
        """Whether the commit timer may let this tick pass: while the worker is behind (a
        full batch of events waits for the agent, on the broker or fetched), until
        ``broker_commit_interval_behind_s`` has passed since the last commit.

        A commit writes every customer changed since the one before, once: while a
        backlog drains, each customer has several events a second, and a longer
        interval folds them into one write. A crash or a rebalance then folds up to that
        interval's events again; live traffic, which does not wait, commits as often as
        ever. A commit never waits for more than ``_COMMIT_WAITS_FOR_CHANGED_MAX``
        changed customers: their records are all built before any is sent.
        """
        settings = self.settings
        if since_commit_s >= settings.broker_commit_interval_behind_s:
            return False
        if self.customers.changed_count() >= _COMMIT_WAITS_FOR_CHANGED_MAX:
            return False
        return self.clicks_waiting() >= settings.batch_max_events

    async def wait_for_changelog(self) -> None:
        """Hold the agent while a commit is writing and more customers than one may carry
        have changed again since it began.

        A commit of a worker behind can take seconds on a slow broker, and the agent goes
        on meanwhile: draining 100 000 customers' visits, it changed up to 48 000 more by
        the next commit, whose records are all built at once. Waiting keeps a commit to
        about ``_COMMIT_WAITS_FOR_CHANGED_MAX`` customers; a backlog of fewer customers
        than that never waits.
        """
        while (
            self.customers.changed_count() > _COMMIT_WAITS_FOR_CHANGED_MAX
            and self.changelog_lock.locked()
        ):
            async with self.changelog_lock:
                pass

    def clicks_waiting(self) -> int:
        """Events of the owned ``clicks`` partitions not processed yet: in the agent's queue
        or the batch it holds, and after the consumer's position (fetched, or still on the
        broker, as its last fetch answer counted them)."""
        waiting = self.clicks_queue.size()
        for tp in self.consumer.assignment():
            if tp.topic != CLICKS:
                continue
            try:
                highwater, _asked_ms, position = fetch_position(self, tp)
            except Exception:  # revoked meanwhile, or the consumer is restarting
                continue
            if highwater is not None and position is not None:
                waiting += max(0, highwater - position)
        return waiting

    async def before_commit(self) -> None:
        """Put every changed customer state on the changelog, and the checkpoints of the
        partition models that changed, before offsets are committed.

        The states are taken between two batches, when every intervention they record
        has been handed to the producer, and those sends are awaited first: a state
        that says a reason fired, and its event seen, never reaches the changelog
        ahead of the intervention, so a crash in between cannot lose it (the restarted
        worker would drop the event as a duplicate). The models are pickled at the
        same moment, so they hold exactly the events those states hold: after a crash
        the next owner learns what it folds again, once. Then the pickles are
        compressed and the states encoded while the agent goes on; commits write one
        after another, so a customer's records stay in order. The state batches are
        handed to the producer once all are encoded, and the checkpoints right behind
        them with nothing in between, so they leave in one request (the producer sends
        one batch per partition in a request): a crash puts the whole commit on the
        broker or none of it, unless a partition's states fill more than one batch.
        """
        started = time.perf_counter()
        async with self.changelog_lock:
            producer = raw_producer(self)
            snapshots: list[Snapshot] = []
            async with self.batch_lock:
                # The producer's sender needs a few turns of the loop to put the last
                # batch's interventions on the wire: taken first, the snapshots below
                # would hold them back for their milliseconds.
                await yield_to_sender()
                changed = self.customers.take_changed()
                sent = self.delivery.take_unconfirmed()
                if self.models is not None:
                    snapshots = self.models.take_snapshots()
            # A failed send is counted and logged by the delivery; it cannot be retried here.
            await asyncio.gather(*sent, return_exceptions=True)
            self.metrics.changelog_writes.inc(len(changed))
            taken = {key: (partition, state is None) for key, (partition, state) in changed.items()}
            try:
                checkpoints: list[Checkpoint] = []
                if self.models is not None:
                    checkpoints = await self.models.seal(snapshots)
                for checkpoint in checkpoints:
                    self.metrics.model_checkpoint.observe(checkpoint.seconds)
                    self.metrics.model_checkpoint_bytes.set(len(checkpoint.data))
                written = await self.customers.write_changelog(producer, changed)
                if self.models is not None:
                    written += await self.models.write(producer, checkpoints)
                await asyncio.gather(*written)  # a failed write must stop the commit
            except BaseException:
                self.customers.keep_changed(taken)  # written at the next commit instead
                if self.models is not None:
                    self.models.take_again(snapshots)
                raise
        self.metrics.commit.observe(time.perf_counter() - started)

    def _new_transport(self) -> TransportT:
        return NudgeflowTransport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> TransportT:
        return NudgeflowTransport(self.conf.broker_producer, self)

    async def on_stop(self) -> None:
        await self.sse_hub.stop()  # open streams end before the web server waits on them
        self.collector_pauses.uninstall()
        if self.webhooks is not None:  # its last commit and dead letters need the producer
            await self.webhooks.stop()
        await self.redis_sink.stop()
        await super().on_stop()
        await self.delivery.close()


def create_app(settings: Settings, registry: CollectorRegistry | None = None) -> NudgeflowApp:
    """Build the worker app for ``settings`` (agents and web views included)."""
    s = settings
    app = NudgeflowApp(
        s.app_id,
        broker=s.broker,
        store="memory://",
        autodiscover=False,
        datadir=s.data_dir,
        topic_partitions=s.topic_partitions,
        topic_replication_factor=s.topic_replication_factor,
        topic_allow_declare=True,
        # Nothing runs on the leader alone: no leader topic, one partition less in every fetch.
        topic_disable_leader=True,
        table_standby_replicas=s.table_standby_replicas,
        broker_session_timeout=s.broker_session_timeout_s,
        broker_heartbeat_interval=s.broker_heartbeat_interval_s,
        broker_rebalance_timeout=s.broker_session_timeout_s,
        broker_request_timeout=max(30.0, s.broker_session_timeout_s * 2),
        broker_commit_interval=s.broker_commit_interval_s,
        consumer_auto_offset_reset="earliest",
        producer_linger=0.0,
        # Changelog states go out as whole record batches (tables/customer_to_state.py).
        producer_max_batch_size=512 * 1024,
        stream_buffer_maxsize=s.stream_buffer_maxsize,
        web_enabled=True,
        # Faust's own /table and /router pages would serve raw table values and the
        # assignment beside the contract's API; nudgeflow serves only its own views.
        web_tables_enabled=False,
        web_router_enabled=False,
        web_bind=s.web_bind,
        web_port=s.web_port,
        web_host=s.web_host,
        web_transport=f"tcp://{s.web_bind}:{s.web_port}",
        logging_config=None,
    )
    app.settings = s
    app.fetch_max_wait_ms = s.fetch_max_wait_ms
    app.tansu_compat = s.broker_flavour == "tansu"
    app.registry = registry or CollectorRegistry()
    app.metrics = Metrics.create(app.registry)
    app.metrics.announce_interventions(list(CATALOGUE), models=["rules"])
    app.rules = s.rules
    app.max_future_skew_ms = s.max_future_skew_s * 1000
    app.clicks_topic = app.topic(CLICKS, partitions=s.topic_partitions)
    app.clicks_queue = DirectQueue(app, CLICKS, s.stream_buffer_maxsize)
    app.direct_queues = {CLICKS: app.clicks_queue}
    app.catch_up = follow_catch_up(app)
    app.customer_to_state = declare_customer_table(app, CUSTOMER_TABLE, s.topic_partitions)
    app.customers = CustomerStore(
        app.customer_to_state, memory_store_maps(app.customer_to_state), s.decoded_states_max
    )
    app.partition_models = declare_models_table(app, MODELS_TABLE, s.topic_partitions)
    app.models = (
        ModelStore(app.partition_models, memory_store_maps(app.partition_models), app.rules)
        if s.learning_enabled
        else None
    )
    app.model_metrics = ModelMetricsExport(app.metrics)
    app.ops_metrics = OpsMetricsExport(app)
    if app.models is not None:
        models = app.models
        app.metrics.model_partitions.set_function(lambda: len(models.learners))
    app.event_time = EventTime(
        app.customers,
        app.rules,
        app.models,
        app.metrics,
        app.max_future_skew_ms,
        assigned=lambda: {tp.partition for tp in app.consumer.assignment() if tp.topic == CLICKS},
    )
    app.batch_lock = asyncio.Lock()
    app.changelog_lock = asyncio.Lock()
    app.delivery = Delivery(
        lambda: raw_producer(app),
        aioredis.from_url(s.redis_url.get_secret_value()),
        stream_maxlen=s.redis_stream_maxlen,
        retention_s=s.intervention_retention_days * 86_400,
        metrics=app.metrics,
    )
    app.sse_hub = InterventionHub(app.delivery.redis)
    app.webhooks = (
        WebhookService(s, lambda: raw_producer(app), app.metrics) if s.webhook_urls else None
    )
    app.redis_sink = RedisSink(s, app.delivery.redis, app.metrics, app.delivery.written)
    app.feedback = FeedbackStore(app.delivery.redis, s.intervention_retention_days * 86_400)
    app.metrics.active_customers.set_function(lambda: len(app.customers))
    app.metrics.states_decoded.set_function(app.customers.decoded_count)
    app.collector_pauses = CollectorPauses(app.metrics.gc_pause)
    if s.gc_freeze_interval_s:

        async def _freeze_survivors() -> None:
            app.freeze_survivors()

        app.timer(s.gc_freeze_interval_s, name="gc_freeze_survivors")(_freeze_survivors)
    if s.gc_full_collection_interval_s:
        app.timer(s.gc_full_collection_interval_s, name="gc_collect_everything")(
            _collect_everything
        )

    from agents.process_clicks import attach_process_clicks
    from agents.process_feedback import attach_process_feedback
    from app.runtime.web import attach_views
    from app.shop import attach_shop_views

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    def _rebuild_event_time(sender: object, assigned: set[TP], **kwargs: object) -> None:
        app.event_time.stale = True  # rebuilt from the recovered table before the next batch

    async def _fire_idle_partitions() -> None:
        async with app.batch_lock:
            await fire_idle_partitions(app)
            if app.models is not None:  # the models' counts and scores reach /metrics here
                app.model_metrics.export(app.models.learners)

    async def _sweep_expired() -> None:
        async with app.batch_lock:
            if not app.event_time.stale:
                app.event_time.sweep(_SWEEP_CHUNK)

    app.timer(s.timer_tick_s, name="fire_idle_partitions")(_fire_idle_partitions)
    app.timer(s.expiry_sweep_interval_s, name="sweep_expired")(_sweep_expired)
    attach_process_clicks(app)
    attach_process_feedback(app)
    attach_views(app)
    attach_shop_views(app)
    return app


async def _collect_everything() -> None:
    started = time.perf_counter()
    collected = collect_everything()
    log.info("full garbage collection: %d objects in %.0f ms", collected,
             (time.perf_counter() - started) * 1000)  # fmt: skip
