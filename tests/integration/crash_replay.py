"""Shared machinery of the crash tests (kill -9 of a lone worker, failover between two).

A replay of labelled simulated traffic goes to ``clicks``; a worker dies with SIGKILL
somewhere in it; what the workers leave behind is read back from the broker and Redis
and compared with one uninterrupted worker's run of the same traffic: the intervention
ids on each channel, the group's committed offsets, the customers' final states on the
table's changelog.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition

from app.runtime.compat import fetch_true_highwaters
from app.runtime.embedded import EmbeddedStack, free_port
from app.runtime.testing import Services, WorkerProcess, start_worker, worker_env
from app.runtime.topics import (
    CLICKS,
    CUSTOMER_TABLE,
    INTERVENTIONS,
    REDIS_INTERVENTIONS_STREAM,
    declare_topics,
    topic_specs,
)
from app.tools.replay import replay
from app.tools.replay_pacing import Pacing
from tables.customer_state import decode_state
from tests.integration.clients import events_counted, get

GROUP = "nudgeflow"  # the workers' default app id: their consumer group
PARTITIONS = 8  # the workers' default ``topic_partitions``
TIMEOUT_S = 120.0
# A worker that has counted no event for this long has stopped for good.
STALLED_S = 10.0
_CHANGELOG = f"{GROUP}-{CUSTOMER_TABLE}-changelog"


@dataclass
class Delivered:
    """Intervention ids as each channel holds them, repeats included."""

    kafka: Counter[str] = field(default_factory=Counter)
    redis: Counter[str] = field(default_factory=Counter)
    # Id → "customer reason event", to name what was lost or invented.
    about: dict[str, str] = field(default_factory=dict)


def summary(
    channel: str, delivered: Counter[str], expected: set[str], about: dict[str, str]
) -> str:
    """Delivered, repeated, lost and invented interventions of one channel, in a line."""
    lost, ghosts = expected - set(delivered), set(delivered) - expected
    repeats = sum(delivered.values()) - len(delivered)
    return (
        f"{channel}: {sum(delivered.values())} delivered, {repeats} repeats, "
        f"{len(lost)} lost {[about[i] for i in sorted(lost)][:5]}, "
        f"{len(ghosts)} ghosts {[about[i] for i in sorted(ghosts)][:5]}"
    )


async def produce(services: Services, lines: list[bytes]) -> None:
    """Declare the topics, then write ``lines`` to ``clicks`` as fast as the broker takes them."""
    await declare(services)
    summary = await replay(lines, services.broker_url, Pacing())
    assert (summary.sent, summary.accepted) == (len(lines), len(lines)), summary.render()


async def declare(services: Services) -> None:
    # Declared first: a topic the broker auto-creates gets Tansu's 4 partitions.
    await declare_topics(services.broker_url, topic_specs(GROUP, PARTITIONS), 1)


async def wait_for_progress(
    services: Services, workers: Iterable[WorkerProcess], events: int
) -> float:
    """Wait until ``workers`` together counted ``events`` and the group committed some
    offsets; the count."""
    workers = list(workers)
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        assert time.monotonic() < deadline, f"no progress:\n{workers[0].log_tail()}"
        counted = sum([await events_counted(worker.web_url) for worker in workers])
        if counted >= events and sum((await committed(services)).values()) > 0:
            return counted
        await asyncio.sleep(0.02)


async def finish(services: Services, worker: WorkerProcess) -> dict[int, int]:
    """Wait until the group's commits reach the end of every ``clicks`` partition (every
    event processed, its interventions acknowledged, its state on the changelog), or
    until the worker has counted no event for a while; then the partitions whose commits
    are short of the end, and by how much."""
    tps = [TopicPartition(CLICKS, p) for p in range(PARTITIONS)]
    ends = await fetch_true_highwaters([services.bootstrap], tps)
    deadline = time.monotonic() + TIMEOUT_S
    counted, moved = -1.0, time.monotonic()
    while (done := await committed(services)) != ends:
        now = time.monotonic()
        assert now < deadline, f"committed {done}, ends {ends}:\n{worker.log_tail()}"
        if (latest := await events_counted(worker.web_url)) != counted:
            counted, moved = latest, now
        elif now - moved > STALLED_S:
            break
        await asyncio.sleep(0.2)
    return {tp.partition: ends[tp] - done[tp] for tp in tps if done[tp] != ends[tp]}


async def committed(
    services: Services, topic: str = CLICKS, group: str = GROUP
) -> dict[TopicPartition, int]:
    """The group's committed offsets of ``topic`` (0 where none), read without joining it."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=services.bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        return {tp: await consumer.committed(tp) or 0 for tp in tps}
    finally:
        await consumer.stop()


async def delivered(services: Services) -> Delivered:
    """Every intervention on the ``interventions`` topic and on the Redis stream."""
    found = Delivered()

    def count(channel: Counter[str], value: bytes) -> None:
        intervention = orjson.loads(value)
        id_ = intervention["intervention_id"]
        channel[id_] += 1
        found.about[id_] = " ".join(intervention[k] for k in ("customer_id", "reason",
                                                               "event_id"))  # fmt: skip

    for value in (await _read_to_end(services, INTERVENTIONS)).values():
        for record in value:
            count(found.kafka, record)
    client = aioredis.from_url(services.redis_url)
    try:
        for _, fields in await client.xrange(REDIS_INTERVENTIONS_STREAM):
            count(found.redis, fields[b"data"])
    finally:
        await client.aclose()
    return found


async def final_states(services: Services) -> dict[str, dict[str, Any]]:
    """Each customer's newest state on the table's changelog, as a dict of its fields
    (deleted customers left out)."""
    states: dict[str, bytes | None] = {}
    for key, values in (await _read_to_end(services, _CHANGELOG, keyed=True)).items():
        states[key] = values[-1] if values else None
    return {key: asdict(decode_state(value)) for key, value in states.items() if value is not None}


async def _read_to_end(
    services: Services, topic: str, *, keyed: bool = False
) -> dict[str, list[bytes]]:
    """Every record of ``topic`` from the beginning to its end now: key → values in
    offset order (all under ``""`` unless ``keyed``); a tombstone ends a key's list."""
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    ends = await fetch_true_highwaters([services.bootstrap], tps)
    values: dict[str, list[bytes]] = {}
    consumer = AIOKafkaConsumer(bootstrap_servers=services.bootstrap, enable_auto_commit=False,
                                fetch_max_wait_ms=50)  # fmt: skip
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + TIMEOUT_S
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            assert time.monotonic() < deadline, f"could not read {topic} to the end"
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    key = (record.key or b"").decode() if keyed else ""
                    if record.value is None:
                        values[key] = []
                    else:
                        values.setdefault(key, []).append(record.value)
    finally:
        await consumer.stop()
    return values


@dataclass
class Reference:
    """What one uninterrupted worker leaves behind for a replay."""

    delivered: Delivered
    states: dict[str, dict[str, Any]]
    # Partitions (of every topic it reads) a lone worker holds: what a survivor takes over.
    partitions_held: int


async def reference_run(traffic: list[bytes], root: Path, **settings: str) -> Reference:
    """Replay ``traffic`` through one uninterrupted worker, on a stack of its own."""
    stack = EmbeddedStack.start(free_port(), free_port(), root / "stack")
    worker: WorkerProcess | None = None
    try:
        services = Services(stack.broker_url, stack.redis_url, embedded=True)
        await produce(services, traffic)
        worker = start_worker(worker_env(services, root, **settings), root / "worker.log",
                              caught_up=False)  # fmt: skip
        behind = await finish(services, worker)
        assert not behind, f"the reference run did not finish: {behind}\n{worker.log_tail()}"
        reference = Reference(
            await delivered(services), await final_states(services), await partitions_held(worker)
        )
    finally:
        if worker is not None:
            worker.stop()
        stack.stop()
    found = reference.delivered
    assert len(found.kafka) >= 100, "too few interventions to say anything"
    assert set(found.redis) == set(found.kafka)
    assert max(found.kafka.values()) == 1, "repeats without a crash"
    return reference


async def partitions_held(worker: WorkerProcess) -> int:
    """The partitions ``worker``'s ``/readyz`` says it holds; 0 while it is not ready."""
    status, detail = await readiness(worker)
    return int(detail["assigned_partitions"]) if status == 200 else 0


async def readiness(worker: WorkerProcess) -> tuple[int, dict[str, Any]]:
    """``worker``'s ``/readyz``: the status and the detail."""
    status, body, _ = await get(f"{worker.web_url}/readyz")
    return status, orjson.loads(body)
