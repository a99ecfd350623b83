"""Hypothesis strategies for ``POST /v1/events`` bodies, from nearly valid to hostile.

Shared by the pure fuzzing of ``parse_event_batch`` and the fuzzing of a running worker.
"""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import strategies as st

from app.ingest.events import EVENT_TYPES

__all__ = ["event_bodies", "hostile_bodies", "raw_json_texts"]

_NOW_MS = int(time.time() * 1000)
_FIELDS = ("event_id", "customer_id", "session_id", "type", "ts", "page", "product_id",
           "element", "x", "y", "scroll_pct", "field", "step", "value", "query", "results",
           "error", "props")  # fmt: skip

# Strings that trip parsers and renderers: zero-width and bidi marks, NUL, combining
# marks, a BOM, full-width and homoglyph lookalikes, emoji with joiners, long ones.
_TRICKY_TEXT = st.sampled_from([
    "", " ", "\u0000", "\u200b", "\u202e", "\ufeff", "e\u0301" * 40, "\u0441lick",
    "\uff43\uff4c\uff49\uff43\uff4b",
    "\U0001f469\u200d\U0001f4bb", "\\", '"', "'; DROP TABLE clicks; --", "<script>",
    "\ud7ff", "\ue000", "\U0010ffff", "a" * 64, "a" * 65, "a" * 128, "a" * 129,
    "x" * 2049, "é" * 64, "é" * 65, "1970-01-01T00:00:00Z", "2024-05-01T12:00:00+02:00",
    "2024-05-01T12:00:00", "9999-12-31T23:59:59.999999+00:00", "0001-01-01T00:00:00+14:00",
])  # fmt: skip
_NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -0.0, 2**63 - 1, 2**63, -(2**63), 1e308, -1e308, 5e-324,
                     _NOW_MS, _NOW_MS + 10**9, 946_684_799_999, 100.0000001]),
)  # fmt: skip
_SCALARS = st.one_of(st.none(), st.booleans(), _NUMBERS, st.text(max_size=40), _TRICKY_TEXT)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=10,
)


@st.composite
def _nearly_valid_event(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with a few fields replaced, removed or added."""
    event: dict[str, Any] = {
        "event_id": f"fz-{draw(st.integers(0, 10**12))}",
        "customer_id": draw(st.sampled_from(["fz-c1", "fz-c2", "fz-ü", "fz-\U0001f600"])),
        "session_id": "fz-s1",
        "type": draw(st.sampled_from(sorted(EVENT_TYPES))),
        "ts": _NOW_MS - draw(st.integers(0, 3_600_000)),
    }
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(_FIELDS))
        action = draw(st.sampled_from(["replace", "delete", "props"]))
        if action == "delete":
            event.pop(name, None)
        elif action == "props":
            event["props"] = draw(_JSON if draw(st.booleans()) else _big_props())
        else:
            event[name] = draw(_JSON)
    if draw(st.booleans()):
        event[draw(st.text(max_size=10))] = draw(_JSON)  # unknown fields are ignored
    return event


def _big_props() -> st.SearchStrategy[dict[str, Any]]:
    # Around the 4 KiB limit, as JSON.
    return st.integers(4000, 4100).map(lambda n: {"k": "v" * (n - 8)})


def event_bodies() -> st.SearchStrategy[bytes]:
    """Bodies of well-formed JSON: one event, a batch, or something else entirely."""
    events = st.one_of(_nearly_valid_event(), _JSON)
    return st.one_of(
        _nearly_valid_event(),
        st.lists(events, min_size=0, max_size=12).map(lambda e: {"events": e}),
        st.integers(498, 503).map(lambda n: {"events": [{"event_id": "fz"}] * n}),
        _JSON,
        st.dictionaries(st.just("events"), _JSON),
    ).map(_dumps)


def _dumps(value: object) -> bytes:
    # The standard library writes integers of any size (orjson stops at 64 bits).
    return json.dumps(value, ensure_ascii=False).encode()


def raw_json_texts() -> st.SearchStrategy[bytes]:
    """Texts that are not JSON as orjson reads it, or JSON at its edges: NaN, Infinity,
    duplicate keys, lone surrogates, deep nesting, invalid UTF-8, huge numbers."""
    event = b'{"event_id":"fz-raw","customer_id":"fz-c1","session_id":"s","type":"click",'
    return st.one_of(
        st.sampled_from([
            b"", b" ", b"null", b"{}", b"[]", b'""', b"NaN", b"Infinity", b"-Infinity",
            event + b'"ts":NaN}', event + b'"ts":Infinity}', event + b'"x":1e400,"ts":1}',
            event + b'"ts":1,"ts":' + str(_NOW_MS).encode() + b"}",  # duplicate keys: last wins
            event + b'"ts":' + str(_NOW_MS).encode() + b',"page":"\\ud800"}',  # lone surrogate
            event + b'"ts":' + str(_NOW_MS).encode() + b',"page":"\\udfff\\ud800"}',
            event + b'"ts":' + str(_NOW_MS).encode() + b',"page":"\xed\xa0\x80"}',
            event + b'"ts":' + str(_NOW_MS).encode() + b',"page":"\xff\xfe"}',
            event + b'"ts":' + str(_NOW_MS).encode() + b',"x":' + b"9" * 5000 + b"}",
            b"\xef\xbb\xbf" + event + b'"ts":' + str(_NOW_MS).encode() + b"}",  # a BOM
            b"[" * 100_000 + b"]" * 100_000,
            b'{"events":' + b"[" * 5_000 + b"]" * 5_000 + b"}",
            b'{"props":' + b'{"a":' * 2_000 + b"1" + b"}" * 2_001,
            b'{"events": [' + b"1," * 50_000 + b"1]}",
            b"\x00" * 64, b"\xff" * 64, b'{"a":"' + b"\\u0000" * 1000 + b'"}',
            b"{'single': 'quotes'}", b'{"trailing": 1,}', b"// comment\n{}",
        ]),
        st.binary(max_size=300),
        st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    )  # fmt: skip


def hostile_bodies() -> st.SearchStrategy[bytes]:
    """Every kind of body above."""
    return st.one_of(event_bodies(), raw_json_texts())
