"""Contract §2: the intervention object built from a signal."""

from __future__ import annotations

from typing import Any, get_args

import orjson
import pytest

from app.decide.interventions import Trigger, build_intervention, intervention_id
from app.detect.signals import InterventionKind, Signal
from app.ingest.events import ClickEvent
from tables.customer_state import encode_state
from tests.factories import T0_MS, click, fold

CONTRACT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "intervention_id": str,
    "customer_id": str,
    "session_id": str,
    "kind": str,
    "reason": str,
    "score": (int, float),
    "signals": dict,
    "explanation": str,
    "context": dict,
    "event_id": str,
    "event_ts": int,
    "emitted_ts": int,
}

RAGE = Signal("rage_click", "assist", 0.7, {"clicks": 3.0, "window_ms": 1000.0}, "Clicked.")


def build(
    events: list[ClickEvent],
    signal: Signal = RAGE,
    emitted_ts_ms: int = T0_MS + 7,
    others: list[Signal] | None = None,
) -> dict[str, Any]:
    state = fold(events)
    last = events[-1]
    session = next(s for s in state.sessions if s.session_id == last.session_id)
    trigger = Trigger(last.event_id, last.ts_ms, last.type)
    return build_intervention(state, session, signal, others or [], trigger, emitted_ts_ms)


def test_every_contract_field_has_the_right_type() -> None:
    intervention = build([click(page="/p", product_id="sku", step="cart", value=3.0)])

    assert set(intervention) == set(CONTRACT_FIELDS)
    for name, kind in CONTRACT_FIELDS.items():
        assert isinstance(intervention[name], kind), name
    assert not isinstance(intervention["event_ts"], bool)
    assert intervention["kind"] in get_args(InterventionKind)
    assert all(isinstance(k, str) for k in intervention["signals"])
    assert all(isinstance(v, int | float) for v in intervention["signals"].values())


def test_is_json_and_round_trips() -> None:
    intervention = build([click(page="/p", props={"a": 1})])

    assert orjson.loads(orjson.dumps(intervention)) == intervention


def test_fields_come_from_the_trigger_and_the_signal() -> None:
    event = click(customer_id="cust-9", session_id="sess-3", ts_ms=T0_MS + 42)

    intervention = build([event], emitted_ts_ms=T0_MS + 50)

    assert intervention["customer_id"] == "cust-9"
    assert intervention["session_id"] == "sess-3"
    assert intervention["event_id"] == event.event_id
    assert intervention["event_ts"] == T0_MS + 42
    assert intervention["emitted_ts"] == T0_MS + 50
    assert (intervention["kind"], intervention["reason"]) == ("assist", "rage_click")
    assert intervention["explanation"] == "Clicked."
    assert intervention["signals"] == {"rage_click": 0.7, "clicks": 3.0, "window_ms": 1000.0}
    assert intervention["intervention_id"] == intervention_id(
        "cust-9", "rage_click", event.event_id
    )


@pytest.mark.parametrize("emitted_ts_ms", [0, T0_MS, T0_MS - 5, 2**53])
def test_emitted_ts_is_passed_through(emitted_ts_ms: int) -> None:
    assert build([click()], emitted_ts_ms=emitted_ts_ms)["emitted_ts"] == emitted_ts_ms


# --- intervention_id -------------------------------------------------------------------------


def test_intervention_id_is_deterministic() -> None:
    event = click()

    first = build([event], emitted_ts_ms=1)
    again = build([event], emitted_ts_ms=2)

    assert first["intervention_id"] == again["intervention_id"]
    assert intervention_id("c1", "rage_click", "e7") == intervention_id("c1", "rage_click", "e7")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param(("c1", "rage_click", "e1"), ("c2", "rage_click", "e1"), id="customer"),
        pytest.param(("c1", "rage_click", "e1"), ("c1", "step_loop", "e1"), id="reason"),
        pytest.param(("c1", "rage_click", "e1"), ("c1", "rage_click", "e2"), id="event"),
        pytest.param(("c1", "rage_click", "e12"), ("c1", "rage_click", "e1"), id="prefix"),
        pytest.param(("c1e", "rage_click", "1"), ("c1", "rage_click", "e1"), id="shifted"),
        pytest.param(("ab", "r", "c"), ("a", "r", "bc"), id="boundary"),
    ],
)
def test_intervention_id_differs_per_trigger(
    a: tuple[str, str, str], b: tuple[str, str, str]
) -> None:
    assert intervention_id(*a) != intervention_id(*b)


def test_intervention_id_cannot_collide_through_the_separator() -> None:
    assert intervention_id("a\x1frage_click", "rage_click", "e") != intervention_id(
        "a", "rage_click", "rage_click\x1fe"
    )


def test_intervention_id_is_32_hex_chars() -> None:
    iid = intervention_id("c1", "rage_click", "e1")

    assert len(iid) == 32
    int(iid, 16)


# --- score -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "shown"),
    [(0.0, 0.0), (1.0, 1.0), (0.7, 0.7), (0.123456, 0.1235), (0.99999, 1.0), (0.8 + 0.05, 0.85)],
)
def test_score_is_rounded_and_in_range(score: float, shown: float) -> None:
    intervention = build([click()], Signal("payment_failure", "assist", score))

    assert intervention["score"] == shown
    assert 0.0 <= intervention["score"] <= 1.0
    assert intervention["signals"]["payment_failure"] == shown


# --- context and evidence ------------------------------------------------------------------


def test_context_describes_where_the_customer_is() -> None:
    events = [
        click(type="page_view", page="/p/sku-1", product_id="sku-1", ts_ms=T0_MS),
        click(type="add_to_cart", product_id="sku-1", value=20.0, ts_ms=T0_MS + 1),
        click(type="checkout_step", step="cart", page="/cart", ts_ms=T0_MS + 2),
    ]

    context = build(events)["context"]

    assert context["page"] == "/cart"
    assert context["product_id"] == "sku-1"
    assert context["step"] == "cart"
    assert (context["cart_value"], context["cart_items"]) == (20.0, 1)
    assert context["session_events"] == 3
    assert context["event_type"] == "checkout_step"
    assert context["segment"] == "new"
    assert None not in context.values()


def test_subject_is_in_the_context() -> None:
    signal = Signal("product_hesitation", "offer", 0.6, subject="sku-9")

    assert build([click()], signal)["context"]["subject"] == "sku-9"


def test_other_reasons_that_fired_are_listed_as_evidence() -> None:
    others = [Signal("error_burst", "assist", 0.654321)]

    signals = build([click()], others=others)["signals"]

    assert signals == {"rage_click": 0.7, "clicks": 3.0, "window_ms": 1000.0, "error_burst": 0.6543}


def test_a_silence_names_the_last_event_and_when_the_rule_held() -> None:
    state = fold([click(type="checkout_step", step="payment", value=9.0, event_id="last")])
    session = state.sessions[0]
    signal = Signal("checkout_stall", "assist", 0.7)

    intervention = build_intervention(
        state,
        session,
        signal,
        [],
        Trigger("last", T0_MS, "silence", T0_MS + 60_000),
        T0_MS + 61_000,
    )

    assert (intervention["event_id"], intervention["event_ts"]) == ("last", T0_MS)
    assert intervention["fired_ts"] == T0_MS + 60_000
    assert intervention["intervention_id"] == intervention_id("c1", "checkout_stall", "last")
    assert "fired_ts" not in build([click()])


def test_does_not_mutate_state_or_signal() -> None:
    state = fold([click(page="/p")])
    evidence = {"clicks": 3.0}
    signal = Signal("rage_click", "assist", 0.7, evidence, "x")
    before = encode_state(state)

    intervention = build_intervention(
        state, state.sessions[0], signal, [], Trigger("e", T0_MS, "click"), T0_MS
    )
    intervention["signals"]["clicks"] = 99.0

    assert encode_state(state) == before
    assert evidence == {"clicks": 3.0}
