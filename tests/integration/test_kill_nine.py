"""kill -9 mid-replay: no lost nudge, no ghost nudge (issue 10).

A worker is killed with SIGKILL at a random moment while it works through a replay
of labelled simulated traffic, and a new worker finishes the replay on the same
broker. The interventions must be those of one uninterrupted run of the same
traffic: each at least once (at-least-once: a crash may repeat some), and none
that run does not have. The events are months old, so timers follow the data's
watermark and the expected set is fixed (``intervention_id`` hashes customer,
reason and triggering event). Both channels are checked: the ``interventions``
topic and the Redis stream. The new worker must also see every event from the
committed offsets on, and commit to the end of ``clicks``.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition

from app.runtime.compat import fetch_true_highwaters
from app.runtime.embedded import EmbeddedStack, free_port
from app.runtime.testing import Services, WorkerProcess, start_worker, worker_env
from app.runtime.topics import (
    CLICKS,
    INTERVENTIONS,
    REDIS_INTERVENTIONS_STREAM,
    declare_topics,
    topic_specs,
)
from app.tools.replay import replay
from app.tools.replay_pacing import Pacing
from app.tools.simulator import SimulationConfig
from tests.integration.clients import events_counted, simulated_replay

pytestmark = pytest.mark.integration

# ~54 k events: ~6 s of work for one worker on 2 cores, which commits every 0.5 s.
_TRAFFIC = SimulationConfig(customers=400, days=1.0, seed=29)
_CLOSE_AFTER_MS = 43_200_000  # half a day on: the last customers' silences fire too
_RUNS = 3
_GROUP = "nudgeflow"  # the workers' default app id: their consumer group
_PARTITIONS = 8  # the workers' default ``topic_partitions``
_TIMEOUT_S = 120.0
# A worker that has counted no event for this long has stopped for good.
_STALLED_S = 10.0


@dataclass
class _Delivered:
    """Intervention ids as each channel holds them, repeats included."""

    kafka: Counter[str] = field(default_factory=Counter)
    redis: Counter[str] = field(default_factory=Counter)
    # Id → "customer reason event", to name what was lost or invented.
    about: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def traffic() -> list[bytes]:
    return simulated_replay(_TRAFFIC, _CLOSE_AFTER_MS)


@pytest.fixture(scope="module")
async def reference(
    traffic: list[bytes], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[_Delivered]:
    """What one uninterrupted worker delivers for ``traffic``, on a stack of its own."""
    root = tmp_path_factory.mktemp("kill-nine-reference")
    stack = EmbeddedStack.start(free_port(), free_port(), root / "stack")
    worker: WorkerProcess | None = None
    try:
        services = Services(stack.broker_url, stack.redis_url, embedded=True)
        await _produce(services, traffic)
        worker = start_worker(worker_env(services, root), root / "worker.log")
        behind = await _finish(services, worker)
        assert not behind, f"the reference run did not finish: {behind}\n{worker.log_tail()}"
        delivered = await _delivered(services)
    finally:
        if worker is not None:
            worker.stop()
        stack.stop()
    assert len(delivered.kafka) >= 100, "too few interventions to say anything"
    assert set(delivered.redis) == set(delivered.kafka)
    assert max(delivered.kafka.values()) == 1, "repeats without a crash"
    yield delivered


@pytest.mark.parametrize("run", range(_RUNS))
async def test_a_worker_killed_mid_replay_loses_no_nudge_and_invents_none(
    run: int,
    traffic: list[bytes],
    reference: _Delivered,
    private_stack: Services,
    worker_factory: Callable[..., WorkerProcess],
) -> None:
    # The kill moment: a share of the replay counted by the worker, drawn from the run's seed.
    share = random.Random(f"kill-nine-{run}").uniform(0.15, 0.85)
    await _produce(private_stack, traffic)
    first = worker_factory(private_stack)
    ready = time.monotonic()
    counted = await _wait_for_progress(private_stack, first, int(len(traffic) * share))
    first.stop(signal.SIGKILL)
    killed_after_s = time.monotonic() - ready
    committed_at_kill = sum((await _committed(private_stack)).values())
    assert committed_at_kill < len(traffic), "the kill came after the work was done"

    # The dead member holds its partitions until its session times out (worker_env: 4 s);
    # start_worker waits for the rejoin and the changelog recovery.
    second = worker_factory(private_stack)
    behind = await _finish(private_stack, second)
    # Every event from the committed offsets on must reach the agent (processed, dropped
    # as a duplicate or rejected), else its interventions can never be sent.
    owed, counted_after = len(traffic) - committed_at_kill, await events_counted(second.web_url)
    delivered = await _delivered(private_stack)

    expected = set(reference.kafka)
    about = {**reference.about, **delivered.about}
    report = (
        f"run {run}: SIGKILL at {share:.0%} of {len(traffic)} events ({counted:.0f} counted, "
        f"{killed_after_s:.1f} s after ready, {committed_at_kill} committed); "
        f"{len(expected)} interventions expected; "
        f"{_summary('kafka', delivered.kafka, expected, about)}; "
        f"{_summary('redis', delivered.redis, expected, about)}; "
        f"the second worker counted {counted_after:.0f} of the {owed} events from there on, "
        f"its commits fell short of the end by {behind or 0}"
    )
    print(report)
    assert expected <= set(delivered.kafka), f"lost nudge on Kafka: {report}"
    assert set(delivered.kafka) <= expected, f"ghost nudge on Kafka: {report}"
    # The Redis copy holds each intervention once (its index key guards the XADD).
    assert expected <= set(delivered.redis), f"lost nudge on Redis: {report}"
    assert set(delivered.redis) <= expected, f"ghost nudge on Redis: {report}"
    assert max(delivered.redis.values()) == 1, f"repeated on Redis: {report}"
    if behind or counted_after < owed:
        # Known (issue 10): in about one run in three the new worker's commits stall after
        # recovery, as records fetched before Faust's seek to the committed offsets are
        # handed out after it and their jump counts as a gap of done offsets, so the same
        # offsets are acked twice, and some events may not reach the agent
        # (faust-streaming/faust#596). No nudge is lost or invented (checked above).
        pytest.xfail(f"commits stalled or events skipped after recovery: {report}")


def _summary(
    channel: str, delivered: Counter[str], expected: set[str], about: dict[str, str]
) -> str:
    lost, ghosts = expected - set(delivered), set(delivered) - expected
    repeats = sum(delivered.values()) - len(delivered)
    return (
        f"{channel}: {sum(delivered.values())} delivered, {repeats} repeats, "
        f"{len(lost)} lost {[about[i] for i in sorted(lost)][:5]}, "
        f"{len(ghosts)} ghosts {[about[i] for i in sorted(ghosts)][:5]}"
    )


async def _produce(services: Services, lines: list[bytes]) -> None:
    # Declared first: a topic the broker auto-creates gets Tansu's 4 partitions.
    await declare_topics(services.broker_url, topic_specs(_GROUP, _PARTITIONS), 1)
    summary = await replay(lines, services.broker_url, Pacing())
    assert (summary.sent, summary.accepted) == (len(lines), len(lines)), summary.render()


async def _wait_for_progress(services: Services, worker: WorkerProcess, events: int) -> float:
    """Wait until the worker counted ``events`` and committed some offsets; the count."""
    deadline = time.monotonic() + _TIMEOUT_S
    while True:
        assert time.monotonic() < deadline, f"no progress:\n{worker.log_tail()}"
        counted = await events_counted(worker.web_url)
        if counted >= events and sum((await _committed(services)).values()) > 0:
            return counted
        await asyncio.sleep(0.02)


async def _finish(services: Services, worker: WorkerProcess) -> dict[int, int]:
    """Wait until the group's commits reach the end of every ``clicks`` partition (every
    event processed, its interventions acknowledged, its state on the changelog), or
    until the worker has counted no event for a while; then the partitions whose commits
    are short of the end, and by how much."""
    tps = [TopicPartition(CLICKS, p) for p in range(_PARTITIONS)]
    ends = await fetch_true_highwaters([services.bootstrap], tps)
    deadline = time.monotonic() + _TIMEOUT_S
    counted, moved = -1.0, time.monotonic()
    while (committed := await _committed(services)) != ends:
        now = time.monotonic()
        assert now < deadline, f"committed {committed}, ends {ends}:\n{worker.log_tail()}"
        if (latest := await events_counted(worker.web_url)) != counted:
            counted, moved = latest, now
        elif now - moved > _STALLED_S:
            break
        await asyncio.sleep(0.2)
    return {tp.partition: ends[tp] - committed[tp] for tp in tps if committed[tp] != ends[tp]}


async def _committed(services: Services) -> dict[TopicPartition, int]:
    """The group's committed ``clicks`` offsets (0 where none), read without joining it."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=services.bootstrap, group_id=_GROUP, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(CLICKS, p) for p in range(_PARTITIONS)]
        return {tp: await consumer.committed(tp) or 0 for tp in tps}
    finally:
        await consumer.stop()


async def _delivered(services: Services) -> _Delivered:
    """Every intervention on the ``interventions`` topic and on the Redis stream."""
    delivered = _Delivered()

    def count(channel: Counter[str], value: bytes) -> None:
        intervention = orjson.loads(value)
        id_ = intervention["intervention_id"]
        channel[id_] += 1
        delivered.about[id_] = " ".join(intervention[k] for k in ("customer_id", "reason",
                                                                   "event_id"))  # fmt: skip

    tps = [TopicPartition(INTERVENTIONS, p) for p in range(_PARTITIONS)]
    ends = await fetch_true_highwaters([services.bootstrap], tps)
    consumer = AIOKafkaConsumer(bootstrap_servers=services.bootstrap, enable_auto_commit=False,
                                fetch_max_wait_ms=50)  # fmt: skip
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + _TIMEOUT_S
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            assert time.monotonic() < deadline, "could not read interventions to the end"
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    count(delivered.kafka, record.value)
    finally:
        await consumer.stop()
    client = aioredis.from_url(services.redis_url)
    try:
        for _, fields in await client.xrange(REDIS_INTERVENTIONS_STREAM):
            count(delivered.redis, fields[b"data"])
    finally:
        await client.aclose()
    return delivered
