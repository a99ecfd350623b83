"""A partition replayed in memory takes the worker's steps, in the worker's order."""

from __future__ import annotations

from typing import Any

import pytest

from app.detect.learning import PartitionLearner
from app.detect.models.partition import PartitionModels
from app.detect.partition_run import PartitionRun
from app.detect.pipeline import Outcome, Rules
from tables.customer_state import CustomerState
from tests.factories import T0_MS, click

STALL_MS = Rules().thresholds.checkout_stall_ms
LATENESS_MS = Rules().time.allowed_lateness_ms


class Recorded(PartitionRun):
    """A run that keeps every intervention its hook is shown."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(on_outcome=self.record, **kwargs)
        self.sent: list[dict[str, Any]] = []

    def record(self, _key: str, _before: CustomerState | None, outcome: Outcome) -> None:
        self.sent.extend(outcome.interventions)


def at_payment(run: PartitionRun, ts_ms: int) -> None:
    cart = click(type="add_to_cart", value=30.0, product_id="p", ts_ms=ts_ms)
    payment = click(type="checkout_step", step="payment", value=30.0, ts_ms=ts_ms)
    for event in (cart, payment):
        run.event(event, arrival_ms=event.ts_ms)


def test_a_silence_fires_from_a_later_event_of_the_partition() -> None:
    run = Recorded()
    at_payment(run, T0_MS)
    other = click(customer_id="other", type="page_view", ts_ms=T0_MS + STALL_MS + LATENESS_MS)

    run.event(other, arrival_ms=other.ts_ms)

    assert [(i["reason"], i["fired_ts"]) for i in run.sent] == [
        ("checkout_stall", T0_MS + STALL_MS)
    ]


def test_a_timer_that_came_up_before_its_moved_due_time_is_armed_again() -> None:
    run = Recorded()
    at_payment(run, T0_MS)
    later = click(type="page_view", page="/checkout/payment", ts_ms=T0_MS + 30_000)
    run.event(later, arrival_ms=later.ts_ms)

    run.fire(T0_MS + STALL_MS + 1, T0_MS + STALL_MS + 1)
    assert run.sent == []
    run.fire(T0_MS + 30_000 + STALL_MS, T0_MS + 30_000 + STALL_MS)

    assert [i["reason"] for i in run.sent] == ["checkout_stall"]


def test_a_duplicate_is_not_shown_to_the_hook_nor_learned() -> None:
    learner = PartitionLearner(PartitionModels(), Rules())
    run = Recorded(learner=learner)
    burst = [click(element="#pay", ts_ms=T0_MS + 200 * i) for i in range(3)]
    for event in burst:
        run.event(event, arrival_ms=event.ts_ms)

    outcome = run.event(burst[-1], arrival_ms=burst[-1].ts_ms)

    assert outcome.duplicate
    assert [i["reason"] for i in run.sent] == ["rage_click"]
    assert learner.models.offset == 2, "the duplicate's offset was not included"


@pytest.mark.parametrize("already", [-1, 41])
def test_a_learner_carried_over_continues_its_offsets(already: int) -> None:
    learner = PartitionLearner(PartitionModels(), Rules())
    learner.models.offset = already
    run = PartitionRun(learner=learner)

    run.event(click(ts_ms=T0_MS), arrival_ms=T0_MS)

    assert learner.models.offset == already + 1
