"""Contract §4: each intervention in the customer view carries its latest ``outcome``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from app.feedback import LatestOutcome
from app.runtime.customer_view import customer_document
from tables.customer_state import CustomerProfile, CustomerState, encode_state
from tests.factories import T0_MS


def intervention(intervention_id: str, reason: str, ts_ms: int) -> dict[str, Any]:
    """An intervention as the state keeps it (the fields the view passes through)."""
    return {"intervention_id": intervention_id, "customer_id": "c1", "session_id": "s1",
            "kind": "assist", "reason": reason, "score": 0.9, "signals": {reason: 0.9},
            "explanation": "…", "context": {}, "event_id": f"e-{intervention_id}",
            "event_ts": ts_ms, "emitted_ts": ts_ms + 5}  # fmt: skip


def state_with_two_interventions() -> CustomerState:
    """Newest first, as the view lists them."""
    state = CustomerState("c1", CustomerProfile(T0_MS, T0_MS + 20))
    newest_first = (
        intervention("i-2", "rage_click", T0_MS + 10),
        intervention("i-1", "payment_failure", T0_MS),
    )
    return replace(state, interventions=newest_first)


def test_an_intervention_with_feedback_shows_its_latest_outcome() -> None:
    state = state_with_two_interventions()
    first, second = (i["intervention_id"] for i in state.interventions)
    outcomes: dict[str, LatestOutcome] = {second: {"outcome": "accepted", "ts": T0_MS + 500}}

    doc = customer_document(state, outcomes=outcomes)

    with_outcome, without = doc["interventions"][1], doc["interventions"][0]
    assert with_outcome["intervention_id"] == second
    assert (with_outcome["outcome"], with_outcome["outcome_ts"]) == ("accepted", T0_MS + 500)
    assert without["intervention_id"] == first
    assert "outcome" not in without and "outcome_ts" not in without
    assert {k: v for k, v in with_outcome.items() if not k.startswith("outcome")} == (
        state.interventions[1]
    )


def test_without_outcomes_the_interventions_are_as_sent() -> None:
    state = state_with_two_interventions()

    for outcomes in (None, {}, {"another-id": LatestOutcome(outcome="shown", ts=T0_MS)}):
        doc = customer_document(state, outcomes=outcomes)
        assert doc["interventions"] == list(state.interventions)
        assert all("outcome" not in i for i in doc["interventions"])


def test_showing_outcomes_leaves_the_state_alone() -> None:
    state = state_with_two_interventions()
    before = encode_state(state)
    outcomes = {i["intervention_id"]: LatestOutcome(outcome="shown", ts=T0_MS)
                for i in state.interventions}  # fmt: skip

    doc = customer_document(state, outcomes=outcomes)
    doc["interventions"][0]["outcome"] = "converted"

    assert encode_state(state) == before
    assert all("outcome" not in i for i in state.interventions)
