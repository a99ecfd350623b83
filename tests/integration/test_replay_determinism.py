"""A replay of the same events fires the same interventions, with the same ids, at any speed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from app.runtime.embedded import EmbeddedStack, free_port
from app.runtime.testing import Services
from app.tools.replay import replay
from app.tools.replay_pacing import Pacing
from app.tools.simulator import SimulationConfig
from tests.integration.clients import events_counted, read_topic, simulated_replay

pytestmark = pytest.mark.integration


async def test_fast_and_throttled_replays_fire_the_same_interventions(
    private_stack, worker_factory, tmp_path: Path
):
    # Closing traffic half a day later: the stalls of the replay's last customers fire too.
    lines = simulated_replay(SimulationConfig(customers=50, days=1.0, seed=11), 43_200_000)

    other = EmbeddedStack.start(free_port(), free_port(), tmp_path / "other-stack")
    try:
        throttled_stack = Services(other.broker_url, other.redis_url, embedded=True)
        fast = await _run(private_stack, worker_factory, lines, Pacing())
        started = time.monotonic()
        throttled = await _run(throttled_stack, worker_factory, lines, Pacing(rate_per_s=1500))
        assert time.monotonic() - started > len(lines) / 1500 * 0.8  # it really was throttled
    finally:
        other.stop()

    assert fast == throttled
    reasons = {reason for _, _, reason, _ in fast}
    assert len(fast) >= 10 and "checkout_stall" in reasons  # timers are in the comparison


async def _run(services, worker_factory, lines, pacing):
    worker = worker_factory(services)
    summary = await replay(lines, services.broker_url, pacing)
    assert summary.sent == len(lines)
    deadline = time.monotonic() + 120
    while await events_counted(worker.web_url) < summary.sent:
        assert time.monotonic() < deadline, "the worker did not process the replay"
        await asyncio.sleep(0.3)
    found = await read_topic(services.bootstrap, "interventions", lambda v: True, want=10**9,
                             timeout_s=6)  # fmt: skip
    # Stopped here, while its broker still runs: a worker whose broker is gone takes the
    # whole stop timeout to give up.
    worker.stop()
    return sorted(
        {(i["intervention_id"], i["session_id"], i["reason"], i["event_id"]) for i in found}
    )
