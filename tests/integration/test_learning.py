"""Online models in the worker: they learn from a replay, score, checkpoint, and survive a
restart (contract §5 model metrics)."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.detect.models.partition import PartitionModels
from app.tools.replay import replay
from app.tools.replay_pacing import Pacing
from app.tools.simulator import SimulationConfig
from tests.integration.clients import (
    event,
    metric_families,
    post,
    simulated_replay,
    unique,
    wait_for_customer,
)

pytestmark = pytest.mark.integration

_COUNTED = ("nudgeflow_events_processed", "nudgeflow_events_duplicate", "nudgeflow_events_rejected")


def _value(families, name: str, **labels: str) -> float:
    family = families.get(name)
    if family is None:
        return 0.0
    return sum(
        s.value
        for s in family.samples
        if all(s.labels.get(k) == v for k, v in labels.items())
        and not s.name.endswith(("_bucket", "_created", "_sum"))
    )


async def _replay_all(services, worker, lines) -> None:
    summary = await replay(lines, services.broker_url, Pacing())
    assert summary.sent == len(lines)
    deadline = time.monotonic() + 120
    while True:
        families = await metric_families(worker.web_url)
        if sum(_value(families, name) for name in _COUNTED) >= summary.sent:
            return
        assert time.monotonic() < deadline, "the worker did not process the replay"
        await asyncio.sleep(0.3)


async def _wait_for(worker, check, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while True:
        families = await metric_families(worker.web_url)
        if check(families) or time.monotonic() > deadline:
            return families
        await asyncio.sleep(0.3)


async def _checkpoints_settled(worker):
    """/metrics once no partition has anything left to checkpoint (no new one for 2 s)."""
    written, since = -1.0, time.monotonic()
    deadline = since + 60
    while True:
        families = await metric_families(worker.web_url)
        count = _value(families, "nudgeflow_model_checkpoint_seconds")
        if count != written:
            written, since = count, time.monotonic()
        elif count >= 8 and time.monotonic() - since > 2:
            return families
        assert time.monotonic() < deadline, "checkpoints did not settle"
        await asyncio.sleep(0.3)


def _simulated_lines(seed: int) -> list[bytes]:
    # An hour later every session has timed out, and the models learned how it ended.
    return simulated_replay(SimulationConfig(customers=80, days=1.0, seed=seed), 3_600_000)


async def test_models_learn_score_checkpoint_and_resume_after_a_restart(
    private_stack, worker_factory
):
    worker = worker_factory(private_stack)
    await _replay_all(private_stack, worker, _simulated_lines(seed=21))

    families = await _checkpoints_settled(worker)
    for model in ("abandonment", "anomaly"):
        assert _value(families, "nudgeflow_model_score", model=model) > 0, model
    for model in ("baselines", "abandonment", "anomaly"):
        assert _value(families, "nudgeflow_model_learned", model=model) > 0, model
    assert 0 < _value(families, "nudgeflow_model_auc", model="abandonment") <= 1
    assert _value(families, "nudgeflow_model_log_loss", model="abandonment") > 0
    # Warm models: more than a cold partition's checkpoint.
    cold = len(PartitionModels().to_bytes())
    assert _value(families, "nudgeflow_model_checkpoint_bytes") > cold + 1_000
    assert _value(families, "nudgeflow_model_partitions") == 8
    held = {
        model: _value(families, "nudgeflow_model_examples", model=model)
        for model in ("baselines", "abandonment", "anomaly")
    }

    worker.stop()
    restarted = worker_factory(private_stack)
    families = await _wait_for(
        restarted, lambda f: _value(f, "nudgeflow_model_partitions") == 8, timeout_s=20
    )
    for model, count in held.items():
        # Restored from the checkpoints, written after the last event: not from zero.
        assert _value(families, "nudgeflow_model_examples", model=model) == count, model
        # ... and not counted as learned by the new process.
        assert _value(families, "nudgeflow_model_learned", model=model) == 0

    # The customer view carries the models' scores of a live session with a cart.
    customer = unique("scored")
    cart = [event(customer, "add_to_cart", product_id="p1", value=40.0),
            event(customer, "checkout_step", step="payment", value=40.0)]  # fmt: skip
    assert (await post(f"{restarted.web_url}/v1/events", {"events": cart}))[0] == 202
    state = await wait_for_customer(restarted.web_url, customer,
                                    lambda s: "abandonment_risk" in s["scores"])  # fmt: skip
    assert 0 <= state["scores"]["abandonment_risk"] <= 1
    assert 0 <= state["scores"]["session_anomaly"] <= 1


async def test_learning_can_be_turned_off(private_stack, worker_factory):
    worker = worker_factory(private_stack, learning_enabled="false")
    await _replay_all(private_stack, worker, _simulated_lines(seed=22)[:2000])
    families = await metric_families(worker.web_url)
    assert _value(families, "nudgeflow_model_learned") == 0
    assert _value(families, "nudgeflow_model_score", model="rules") > 0
