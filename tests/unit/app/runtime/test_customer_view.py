"""Contract §4: the document of ``GET /v1/customers/{customer_id}``."""

from __future__ import annotations

import orjson

from app.decide.policy import PolicyRules
from app.detect.pipeline import Rules, process_event
from app.detect.state import new_state
from app.runtime.customer_view import customer_document
from tables.customer_state import CustomerState, encode_state
from tests.factories import T0_MS, click

CONTRACT_KEYS = {
    "customer_id",
    "session",
    "profile",
    "segment",
    "scores",
    "signals",
    "interventions",
}


def run(events: list) -> CustomerState:
    state = None
    # No overall cooldown: the busy customer's rage click speaks right after the failure.
    rules = Rules(policy=PolicyRules(any_cooldown_ms=0))
    for event in events:
        state = process_event(state, event, rules, 0, T0_MS + 99).state
    assert state is not None
    return state


def busy_state() -> CustomerState:
    return run(
        [
            click(type="page_view", page="/", session_id="s0", ts_ms=T0_MS - 3_600_000),
            click(type="add_to_cart", product_id="sku-1", value=12.5, ts_ms=T0_MS),
            click(type="payment_failed", error="declined", ts_ms=T0_MS + 1),
            *[click(element="#pay", x=1, y=2, ts_ms=T0_MS + 10 + i) for i in range(3)],
        ]
    )


def test_document_has_the_contract_keys() -> None:
    assert set(customer_document(busy_state())) >= CONTRACT_KEYS


def test_document_of_a_busy_customer() -> None:
    state = busy_state()

    doc = customer_document(state)

    assert doc["customer_id"] == "c1"
    assert doc["segment"] == "returning"
    profile = doc["profile"]
    assert (profile["first_seen_ts_ms"], profile["last_seen_ts_ms"]) == (
        T0_MS - 3_600_000,
        T0_MS + 12,
    )
    assert (profile["visits"], profile["events"], profile["purchases"]) == (2, 6, 0)
    assert doc["session"]["session_id"] == "s1"
    assert [s["session_id"] for s in doc["sessions"]] == ["s1"]  # s0 timed out
    assert doc["session"]["cart_value"] == 12.5
    assert doc["session"]["product_id"] == "sku-1"
    assert list(doc["session"]["fired_reasons"]) == ["payment_failure", "rage_click"]
    assert doc["session"]["recent"][0] == {
        "ts_ms": T0_MS,
        "type": "add_to_cart",
        "element": None,
        "x": None,
        "y": None,
        "flags": 0,
    }
    assert set(doc["scores"]) == {"payment_failure", "rage_click"}
    assert [s["name"] for s in doc["signals"]] == ["rage_click", "payment_failure"]
    assert {"name", "score", "ts_ms", "event_id"} <= set(doc["signals"][0])
    assert [i["reason"] for i in doc["interventions"]] == ["rage_click", "payment_failure"]
    assert doc["interventions"] == list(state.interventions)


def test_document_lists_every_live_session() -> None:
    state = run([click(session_id="tab-a"), click(session_id="tab-b", ts_ms=T0_MS + 1)])

    doc = customer_document(state)

    assert [s["session_id"] for s in doc["sessions"]] == ["tab-a", "tab-b"]
    assert doc["session"]["session_id"] == "tab-b"


def test_document_is_json() -> None:
    doc = customer_document(busy_state())

    assert orjson.loads(orjson.dumps(doc)) == orjson.loads(orjson.dumps(doc, option=0))
    assert orjson.loads(orjson.dumps(doc))["customer_id"] == "c1"


def test_document_without_a_live_session() -> None:
    state = run([click(), click(type="session_end", ts_ms=T0_MS + 1)])

    doc = customer_document(state)

    assert doc["session"] is None
    assert doc["sessions"] == []
    assert doc["profile"]["visits"] == 1


def test_document_of_a_fresh_state() -> None:
    doc = customer_document(new_state(click(ts_ms=5)))

    assert doc["session"] is None
    assert doc["profile"]["visits"] == 0
    assert (doc["scores"], doc["signals"], doc["interventions"]) == ({}, [], [])
    assert doc["segment"] == "new"


def test_changing_the_document_leaves_the_state_alone() -> None:
    state = busy_state()
    before = encode_state(state)

    doc = customer_document(state)
    doc["scores"]["x"] = 1.0
    doc["interventions"].clear()
    doc["signals"].clear()
    doc["session"]["recent"].clear()
    doc["profile"]["visits"] = 99

    assert encode_state(state) == before
