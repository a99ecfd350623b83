"""Failover under kill -9: two workers in one group, one dies mid-replay (issue 12).

Two ``nudgeflow worker``s with ``nudgeflow up``'s broker timings (session timeout 6 s,
heartbeat 0.25 s) share the ``clicks`` partitions on the embedded broker while a replay of
labelled simulated traffic runs; one of them is killed with SIGKILL at a random moment.
The survivor must own every partition, its tables recovered, within the session timeout
plus the join and the changelog recovery (``_TAKEOVER_LIMIT_S``); each run prints that time
and when the survivor was also caught up (ready: the partitions it took over processed up
to their end at the assignment, however much of the replay was waiting). What the pair
leaves behind must be what one uninterrupted worker leaves for the same traffic:

- every customer's final state on the table's changelog (every field but the wall-clock
  ``emitted_ts`` of the interventions it records, the partition models' evidence on them
  included; see ``_comparable``);
- the group's commits at the end of every ``clicks`` partition (no event lost);
- every expected intervention id on ``interventions`` (at least once: at-least-once),
  none that run does not have, and each at most once on the Redis stream.

"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.runtime.testing import Services, WorkerProcess, start_worker, worker_env
from app.tools.simulator import SimulationConfig
from tests.integration import crash_replay as crash
from tests.integration.clients import simulated_replay

pytestmark = pytest.mark.integration

# ~40 k events: a few seconds of work for two workers on 2 cores, so the kill lands
# while the replay still runs.
_TRAFFIC = SimulationConfig(customers=300, days=1.0, seed=31)
_CLOSE_AFTER_MS = 43_200_000  # half a day on: the last customers' silences fire too
_RUNS = 3
# nudgeflow up's broker timings (app/local/up.py): the failover they give is the one to prove.
_SESSION_TIMEOUT_S = 6.0
_UP_SETTINGS = {"broker_session_timeout_s": "6", "broker_heartbeat_interval_s": "0.25"}
# The session timeout (give or take a heartbeat interval: Tansu notices the dead member at
# the survivor's first heartbeat after it ran out), then a join (Tansu answers it after half
# the session timeout: 9 s so far), then the recovery of the dead worker's changelog
# partitions (well under 1 s here): the target is 10 s (9.1-9.5 s measured); 3 s
# are left for recovery on a loaded machine. The catch-up that follows depends on the
# backlog, not on the takeover: it is printed, not bounded.
_TAKEOVER_LIMIT_S = 1.5 * _SESSION_TIMEOUT_S + 3.0


@pytest.fixture(scope="module")
def traffic() -> list[bytes]:
    return simulated_replay(_TRAFFIC, _CLOSE_AFTER_MS)


@pytest.fixture(scope="module")
async def reference(
    traffic: list[bytes], tmp_path_factory: pytest.TempPathFactory
) -> crash.Reference:
    """What one uninterrupted worker leaves behind for ``traffic``, on a stack of its own."""
    root = tmp_path_factory.mktemp("failover-reference")
    return await crash.reference_run(traffic, root, **_UP_SETTINGS)


@pytest.fixture
async def pair(private_stack: Services, tmp_path: Path) -> AsyncIterator[list[WorkerProcess]]:
    """Two workers started at the same moment (one join, no rebalance in between)."""
    await crash.declare(private_stack)

    def start(name: str) -> WorkerProcess:
        env = worker_env(private_stack, tmp_path / name, **_UP_SETTINGS)
        return start_worker(env, tmp_path / name / "worker.log")

    started = await asyncio.gather(
        *(asyncio.to_thread(start, name) for name in ("worker-a", "worker-b")),
        return_exceptions=True,
    )
    workers = [w for w in started if isinstance(w, WorkerProcess)]
    try:
        for outcome in started:
            if isinstance(outcome, BaseException):
                raise outcome
        yield workers
    finally:
        for worker in workers:
            worker.stop()


@pytest.mark.parametrize("run", range(_RUNS))
async def test_the_survivor_takes_over_and_ends_where_one_worker_would(
    run: int, traffic: list[bytes], reference: crash.Reference, private_stack: Services,
    pair: list[WorkerProcess],
) -> None:  # fmt: skip
    draw = random.Random(f"failover-{run}")
    share, victim_index = draw.uniform(0.2, 0.8), draw.randrange(2)
    victim, survivor = pair[victim_index], pair[1 - victim_index]
    await _both_ready(pair)
    replaying = asyncio.create_task(crash.produce(private_stack, traffic))
    try:
        counted = await crash.wait_for_progress(private_stack, pair, int(len(traffic) * share))
        victim.stop(signal.SIGKILL)
        killed = time.monotonic()
        committed_at_kill = sum((await crash.committed(private_stack)).values())
        takeover_s, caught_up_s, owed = await _takeover_s(
            survivor, reference.partitions_held, killed
        )
    finally:
        await replaying
    assert committed_at_kill < len(traffic), "the kill came after the work was done"
    behind = await crash.finish(private_stack, survivor)
    delivered = await crash.delivered(private_stack)
    states = await crash.final_states(private_stack)

    expected = set(reference.delivered.kafka)
    about = {**reference.delivered.about, **delivered.about}
    differing = sorted(
        customer for customer in reference.states.keys() | states.keys()
        if _comparable(reference.states.get(customer)) != _comparable(states.get(customer))
    )  # fmt: skip
    report = (
        f"run {run}: SIGKILL of worker {'ab'[victim_index]} at {share:.0%} of {len(traffic)} "
        f"events ({counted:.0f} counted, {committed_at_kill} committed); the survivor owned "
        f"all {reference.partitions_held} partitions {takeover_s:.1f} s later and was caught "
        f"up {caught_up_s:.1f} s after the kill ({owed} records to process then); "
        f"{len(expected)} interventions expected; "
        f"{crash.summary('kafka', delivered.kafka, expected, about)}; "
        f"{crash.summary('redis', delivered.redis, expected, about)}; "
        f"{len(differing)} of {len(reference.states)} final states differ {differing[:5]}; "
        f"commits fell short of the end by {behind or 0}"
    )
    print(report)
    assert takeover_s <= _TAKEOVER_LIMIT_S, f"slow takeover: {report}"
    assert expected <= set(delivered.kafka), f"lost nudge on Kafka: {report}"
    assert set(delivered.kafka) <= expected, f"ghost nudge on Kafka: {report}"
    assert expected <= set(delivered.redis), f"lost nudge on Redis: {report}"
    assert set(delivered.redis) <= expected, f"ghost nudge on Redis: {report}"
    assert max(delivered.redis.values()) == 1, f"repeated on Redis: {report}"
    assert not behind, f"commits stalled after recovery: {report}"
    assert not differing, (
        f"final states differ from one worker's: {report}; the first: "
        f"{_difference(reference.states.get(differing[0]), states.get(differing[0]))}"
    )


def _comparable(state: dict[str, Any] | None) -> Any:
    """A changelog state without what depends on the wall clock.

    Everything a state holds follows from its customer's events in offset order (event
    time, never the clock): the profile, live sessions, remembered event digests, signals,
    segment, the ``clicks`` offset it includes, and the interventions it records with
    their ids, reasons, rule scores, context and the partition models' evidence
    (``session_anomaly``, ``abandonment_risk``, the answer ``variant``: the models are
    checkpointed with the states of each commit, so the survivor's learn exactly the
    events it folds again). Left out: ``emitted_ts``, when the worker sent an
    intervention (a re-processing after a crash moves it).
    """
    if state is None:
        return None
    interventions = [
        {k: v for k, v in intervention.items() if k != "emitted_ts"}
        for intervention in state["interventions"]
    ]
    return {**state, "interventions": interventions}


def _difference(expected: dict[str, Any] | None, found: dict[str, Any] | None) -> str:
    """The top-level fields in which two comparable states differ, with both values."""
    if expected is None or found is None:
        return f"one run has no state: {expected} / {found}"
    a, b = _comparable(expected), _comparable(found)
    return "; ".join(f"{k}: {a.get(k)} / {b.get(k)}" for k in a.keys() | b.keys()
                     if a.get(k) != b.get(k))  # fmt: skip


async def _both_ready(workers: list[WorkerProcess]) -> None:
    """Wait until both workers hold partitions and are ready (their join settled)."""
    deadline = time.monotonic() + 30.0
    while not all([await crash.partitions_held(worker) for worker in workers]):
        assert time.monotonic() < deadline, "the pair never settled"
        await asyncio.sleep(0.05)


async def _takeover_s(
    survivor: WorkerProcess, partitions: int, killed: float
) -> tuple[float, float, int]:
    """Seconds from the kill until ``survivor`` holds all ``partitions`` with its tables
    recovered, and until it is ready (caught up as well); and the records its catch-up
    had left to process when it held them."""
    owned_s: float | None = None
    owed: int | None = None
    while (seconds := time.monotonic() - killed) < 60.0:
        status, readiness = await crash.readiness(survivor)
        held = readiness["assigned_partitions"] >= partitions and readiness["tables_recovered"]
        if held and not readiness["rebalancing"]:  # what readiness was before the catch-up
            owned_s = owned_s or seconds
            owed = readiness["catch_up_remaining_records"] if owed is None else owed
            if status == 200:
                return owned_s, seconds, owed or 0
        await asyncio.sleep(0.05)
    raise AssertionError(f"no takeover in 60 s:\n{survivor.log_tail()}")
