"""What an on-call asks of a worker's consumer: lag and commits per partition, rebalances, owned
partitions, table recovery, the catch-up after a takeover, readiness and the customer states
decoded, as Prometheus metrics.

Read from Faust's consumer and recovery once a second (``OpsMetricsExport.run``), never
per event: the agent's hot path pays nothing for them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, cast

from faust.types import TP

from app.runtime.compat.faust_transport import committed_offset, fetch_position
from app.runtime.topics import CLICKS, FEEDBACK

if TYPE_CHECKING:
    from faust.tables.manager import TableManager

    from app.runtime.faust_app import NudgeflowApp

__all__ = ["LAG_TOPICS", "OpsMetricsExport", "consumer_lag"]

log = logging.getLogger(__name__)

#: The topics the agents consume; changelog partitions show in the recovery metric.
LAG_TOPICS = (CLICKS, FEEDBACK)
# A scrape every 15 s sees values at most a second old; a tick reads a few dozen offsets.
_INTERVAL_S = 1.0


def consumer_lag(highwater: int | None, committed: int | None) -> int | None:
    """Records on a partition after the committed offset; None while it is unknown.

    ``committed`` is the next offset to read (Kafka's meaning), so a worker that has
    committed everything has lag 0, as ``kafka-consumer-groups.sh --describe`` shows it.
    Without a commit the lag is unknown (the group may never have read the partition,
    or the worker is between a rebalance and its seek), except on an empty partition.

    Examples
    --------
    >>> consumer_lag(120, 100), consumer_lag(100, 100), consumer_lag(0, None)
    (20, 0, 0)
    >>> consumer_lag(None, 5), consumer_lag(7, None)
    (None, None)
    """
    if highwater is None:
        return None
    if committed is None:
        return 0 if highwater == 0 else None
    return max(0, highwater - committed)


class OpsMetricsExport:
    """Sets the consumer and recovery gauges of ``app.metrics`` and counts rebalances."""

    def __init__(self, app: NudgeflowApp) -> None:
        self.app = app
        # (topic, partition) label values set at the last tick, to drop revoked ones.
        self._lag_labels: set[tuple[str, str]] = set()
        # The customer store's decode count at the last tick.
        self._decodes = 0
        app.metrics.ready.set(0)
        app.metrics.assigned_partitions.set(0)
        app.on_partitions_assigned.connect(self._count_rebalance)  # type: ignore[arg-type]

    def _count_rebalance(self, sender: object, assigned: set[TP], **kwargs: object) -> None:
        self.app.metrics.rebalances.inc()

    async def run(self) -> None:
        """Export every second until cancelled."""
        while True:
            try:
                self.export()
            except Exception:  # a metric must never stop the worker; say so, try again
                log.exception("exporting the consumer metrics failed")
            await asyncio.sleep(_INTERVAL_S)

    def export(self) -> None:
        """Read the consumer and the recovery once and set the gauges."""
        app, metrics = self.app, self.app.metrics
        try:
            assignment = set(app.consumer.assignment())
        except Exception:  # the consumer is not started yet
            assignment = set()
        lag_labels: set[tuple[str, str]] = set()
        for tp in sorted(tp for tp in assignment if tp.topic in LAG_TOPICS):
            try:
                highwater, _, _ = fetch_position(app, tp)
            except Exception:  # revoked by the consumer's thread since the assignment was read
                continue
            committed = committed_offset(app, tp)
            lag = consumer_lag(highwater, committed)
            if lag is not None:
                labels = (tp.topic, str(tp.partition))
                metrics.consumer_lag.labels(*labels).set(lag)
                metrics.consumer_committed.labels(*labels).set(committed or 0)
                lag_labels.add(labels)
        for labels in self._lag_labels - lag_labels:  # revoked: another worker reports it
            metrics.consumer_lag.remove(*labels)
            metrics.consumer_committed.remove(*labels)
        self._lag_labels = lag_labels
        metrics.assigned_partitions.set(sum(tp.topic == CLICKS for tp in assignment))
        decodes = app.customers.decodes
        metrics.state_decodes.inc(decodes - self._decodes)
        self._decodes = decodes
        self._export_recovery()
        ready, detail = app.is_ready()
        metrics.ready.set(int(ready))
        if detail["catch_up_remaining_records"] is not None:  # None: the ends are being read
            metrics.catch_up_remaining.set(detail["catch_up_remaining_records"])

    def _export_recovery(self) -> None:
        tables = cast("TableManager", self.app.tables)
        recovery = tables.recovery
        remaining: dict[str, int] = {}
        names: dict[str, str] = {}
        for table in tables.values():
            names[cast(Any, table).changelog_topic.get_topic_name()] = table.name
            remaining[table.name] = 0
        # ``completed`` is set once, at the first recovery; ``in_recovery`` at each one.
        if recovery.in_recovery or not recovery.completed.is_set():
            for tp, records in recovery.active_remaining().items():
                name = names.get(tp.topic)
                if name is not None:
                    remaining[name] += max(0, records)
        for name, records in remaining.items():
            self.app.metrics.table_recovery_remaining.labels(table=name).set(records)
