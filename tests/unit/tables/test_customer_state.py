"""The versioned changelog codec of ``CustomerState``."""

from __future__ import annotations

import copy
from array import array
from dataclasses import fields

import orjson
import pytest

from app.detect.pipeline import Rules, process_event
from app.detect.state import new_state
from tables.customer_state import (
    V3_SESSION_FIELDS,
    V4_PROFILE_FIELDS,
    V4_SESSION_FIELDS,
    V5_PROFILE_FIELDS,
    V5_SESSION_FIELDS,
    V5_SUMMARY_FIELDS,
    CustomerProfile,
    CustomerState,
    RecentEvent,
    SessionState,
    SessionSummary,
    SignalRecord,
    decode_state,
    encode_state,
)
from tests.factories import T0_MS, click


def rich_state() -> CustomerState:
    """A state built by the pipeline: a past visit, two live tabs, every summary, signals."""
    state = None
    for event in [
        click(type="page_view", session_id="s0", page="/", ts_ms=T0_MS - 3_600_000),
        click(type="purchase", session_id="s0", value=10.0, ts_ms=T0_MS - 3_500_000),
        click(type="product_view", product_id="sku-1", value=19.99, ts_ms=T0_MS - 10),
        click(type="add_to_cart", product_id="sku-1", value=19.99, ts_ms=T0_MS),
        click(type="search", query="boots", results=0, session_id="tab", ts_ms=T0_MS),
        click(type="checkout_step", step="payment", page="/checkout", ts_ms=T0_MS + 1),
        click(type="form_focus", field="card", props={"form": "pay"}, ts_ms=T0_MS + 1),
        click(type="form_error", field="card", props={"form": "pay"}, ts_ms=T0_MS + 1),
        click(type="payment_attempt", error="declined", ts_ms=T0_MS + 2),
        click(type="payment_failed", error="declined", ts_ms=T0_MS + 3),
        *[click(element="#pay", x=10.5, y=-3, ts_ms=T0_MS + 10 + i) for i in range(3)],
        click(type="scroll", scroll_pct=50.0, ts_ms=T0_MS + 5),
    ]:
        state = process_event(state, event, Rules(), 0, T0_MS + 99).state
    assert state is not None
    assert len(state.sessions) == 2
    session = state.sessions[-1]
    assert session.recent and session.steps and session.products and session.form_errors
    assert state.signals and state.interventions and state.ended_sessions
    return state


HAND_BUILT = CustomerState(
    customer_id="ü-☕",
    profile=CustomerProfile(first_seen_ts_ms=0, last_seen_ts_ms=2**53, visits=3, events=9),
    sessions=(
        SessionState(
            session_id="s",
            started_ts_ms=1,
            last_ts_ms=2,
            event_count=2,
            last_event_id="e2",
            page="/a",
            product_id=None,
            step="cart",
            cart_value=0.1 + 0.2,
            recent=[RecentEvent(1, "click", "#x", 1, 2.5, 3), RecentEvent(2, "error")],
            failed_payment_attempts=1,
            fired_reasons=("rage_click",),
            product_views=("p1", "p1"),
            summary=SessionSummary(
                steps=((1, "cart"), (2, "shipping")),
                cart_flips=(("p1", 1), ("p1", -1)),
                searches=((1, 0, 12345),),
                error_ts=(2,),
            ),
        ),
    ),
    segment="returning",
    seen_event_digests=array("Q", [1, 2**64 - 1]),
    seen_session_ids=("s",),
    ended_sessions=(("s0", 0),),
    rewarded=("review",),
    signals=(SignalRecord("rage_click", 0.7, 1, "e1"),),
    interventions=({"intervention_id": "x", "context": {"cart_value": 1.5}, "signals": {}},),
)


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(rich_state(), id="pipeline"),
        pytest.param(HAND_BUILT, id="hand-built"),
        pytest.param(new_state(click()), id="fresh"),
        pytest.param(CustomerState("c", CustomerProfile(1, 2)), id="minimal"),
    ],
)
def test_round_trip(state: CustomerState) -> None:
    decoded = decode_state(encode_state(state))

    assert decoded == state
    assert encode_state(decoded) == encode_state(state)


def test_round_trip_keeps_the_types() -> None:
    decoded = decode_state(encode_state(HAND_BUILT))

    assert decoded.session is not None
    assert all(isinstance(e, RecentEvent) for e in decoded.session.recent)
    assert all(isinstance(s, SignalRecord) for s in decoded.signals)
    assert isinstance(decoded.profile, CustomerProfile)
    assert isinstance(decoded.session.cart_value, float)
    assert decoded.session.cart_value == 0.1 + 0.2
    assert decoded.session.steps == ((1, "cart"), (2, "shipping"))
    assert decoded.session.products == (("p1", 2, 1, 1),)
    assert isinstance(decoded.session.summary, SessionSummary)
    assert isinstance(decoded.ended_sessions[0], tuple)


def test_decoded_state_does_not_share_lists_with_the_original() -> None:
    state = rich_state()
    before = copy.deepcopy(state)

    decoded = decode_state(encode_state(state))
    assert decoded.session is not None
    decoded.session.recent.clear()
    del decoded.seen_event_digests[:]
    decoded.seen_event_digests.append(0)
    decoded.interventions[0].clear()

    assert state == before


def test_encoded_form_is_versioned_json() -> None:
    raw = orjson.loads(encode_state(HAND_BUILT))

    assert raw["v"] == 5
    assert raw["s"][0] == "ü-☕"


def test_version_5_fields_are_the_dataclasses_fields() -> None:
    # Version 5 writes fields by position: a field added, dropped or moved needs a new
    # version (and this version's reader kept), or old records would be misread.
    assert tuple(f.name for f in fields(CustomerProfile)) == V5_PROFILE_FIELDS
    assert (
        tuple(f.name for f in fields(SessionState) if f.name not in ("recent", "summary"))
        == V5_SESSION_FIELDS
    )
    assert tuple(f.name for f in fields(SessionSummary)) == V5_SUMMARY_FIELDS


def test_version_4_is_read_as_version_5_with_no_automated_visits() -> None:
    # Version 4 is version 5 without the profile's bot_visits.
    state = copy.deepcopy(HAND_BUILT)
    state.profile.bot_visits = 2
    raw = orjson.loads(encode_state(state))
    raw["v"] = 4
    del raw["s"][1][-1]
    assert len(raw["s"][1]) == len(V4_PROFILE_FIELDS)

    read = decode_state(orjson.dumps(raw))

    assert read.profile.bot_visits == 0
    read.profile.bot_visits = 2
    assert read == state


def test_version_3_is_read_as_version_5_with_no_cart_items() -> None:
    # Version 3 is version 4 without the sessions' cart_items.
    raw = orjson.loads(encode_state(HAND_BUILT))
    raw["v"] = 3
    del raw["s"][1][len(V4_PROFILE_FIELDS) :]
    for session in raw["s"][2]:
        del session[V4_SESSION_FIELDS.index("cart_items")]
    assert len(raw["s"][2][0]) == len(V3_SESSION_FIELDS) + 2

    state = decode_state(orjson.dumps(raw))

    assert state == HAND_BUILT
    assert state.session is not None and state.session.cart_items == 0


# HAND_BUILT as version 2 wrote it (the release before positional fields).
_V2_HAND_BUILT = (
    '{"v":2,"s":{"customer_id":"ü-☕","profile":{"first_seen_ts_ms":0,'
    '"last_seen_ts_ms":9007199254740992,"visits":3,"events":9,"purchases":0,'
    '"last_purchase_ts_ms":0,"revenue":0.0,"late_events":0,"last_visit_ts_ms":0,'
    '"gap_mean_ms":0.0,"gap_var_ms2":0.0,"visit_events_mean":0.0,"last_visit_events":0,'
    '"pace_mean_ms":0.0,"pace_var_ms2":0.0,"last_pace_ratio":0.0},"sessions":[{'
    '"session_id":"s","started_ts_ms":1,"last_ts_ms":2,"event_count":2,"last_event_id":"e2",'
    '"page":"/a","product_id":null,"step":"cart","cart_value":0.30000000000000004,'
    '"purchased":false,"failed_payment_attempts":1,"fired_reasons":["rage_click"],'
    '"bot":false,"fast_gaps":0,"product_views":["p1","p1"],"product_view_ts_ms":0,'
    '"recent":[[1,"click","#x",1,2.5,3],[2,"error",null,null,null,0]],'
    '"steps":[[1,"cart"],[2,"shipping"]],"cart_flips":[["p1",1],["p1",-1]],'
    '"searches":[[1,0,12345]],"error_ts":[2],"summary":true}],"segment":"returning",'
    '"seen_event_digests":"0100000000000000ffffffffffffffff","seen_session_ids":["s"],'
    '"ended_sessions":[["s0",0]],"rewarded":["review"],"signals":[{"name":"rage_click",'
    '"score":0.7,"ts_ms":1,"event_id":"e1"}],"interventions":[{"intervention_id":"x",'
    '"context":{"cart_value":1.5},"signals":{}}],"clicks_offset":-1}}'
)


def test_version_2_is_read_as_version_5() -> None:
    state = decode_state(_V2_HAND_BUILT.encode())

    assert state == HAND_BUILT
    assert decode_state(encode_state(state)) == state


def test_version_5_is_smaller_than_version_2() -> None:
    assert len(encode_state(HAND_BUILT)) < len(_V2_HAND_BUILT.encode()) / 2


def test_version_1_is_read_as_version_4() -> None:
    v1 = {
        "v": 1,
        "s": {
            "customer_id": "c1",
            "profile": {
                "first_seen_ts_ms": 1,
                "last_seen_ts_ms": 9,
                "visits": 2,
                "events": 5,
                "purchases": 0,
            },
            "session": {
                "session_id": "s2",
                "started_ts_ms": 5,
                "last_ts_ms": 9,
                "event_count": 3,
                "page": "/p",
                "product_id": None,
                "step": "cart",
                "cart_value": 4.0,
                "recent": [[9, "click", "#a", 1.0, 2.0, None, None]],
                "failed_payment_attempts": 0,
                "fired_reasons": ["rage_click"],
            },
            "segment": "returning",
            "seen_event_digests": "",
            "seen_session_ids": ["s1", "s2"],
            "ended_session_ids": ["s1"],
            "signals": [],
            "interventions": [],
        },
    }

    state = decode_state(orjson.dumps(v1))

    assert [s.session_id for s in state.sessions] == ["s2"]
    assert state.sessions[0].recent == [RecentEvent(9, "click", "#a", 1.0, 2.0)]
    assert state.sessions[0].fired_reasons == ("rage_click",)
    assert state.ended_sessions == (("s1", 9),)
    assert decode_state(encode_state(state)) == state


@pytest.mark.parametrize("version", [0, 6, "5", None])
def test_unknown_version_raises_value_error(version: object) -> None:
    raw = orjson.loads(encode_state(HAND_BUILT))
    raw["v"] = version

    with pytest.raises(ValueError, match="not a customer state of version 1 to 5"):
        decode_state(orjson.dumps(raw))


def test_missing_version_raises_value_error() -> None:
    raw = orjson.loads(encode_state(HAND_BUILT))
    del raw["v"]

    with pytest.raises(ValueError, match="not a customer state of version 1 to 5 \\(found None\\)"):
        decode_state(orjson.dumps(raw))


def test_a_profile_field_a_later_version_dropped_is_ignored_and_new_ones_default() -> None:
    raw = orjson.loads(_V2_HAND_BUILT)
    raw["s"]["profile"]["last_gap_ms"] = 86_400_000  # written before the browsing pace
    del raw["s"]["profile"]["pace_mean_ms"]

    decoded = decode_state(orjson.dumps(raw))

    assert decoded.profile.pace_mean_ms == 0.0
    assert decoded.profile.visits == HAND_BUILT.profile.visits
