"""Fuzzing ``parse_event_batch`` with Hypothesis: 8 000 generated and hostile bodies (the
HTTP fuzzing of a running worker, ``tests/integration/test_collector_http_fuzz.py``, adds its own).

Whatever the body, the collector either refuses it as a whole with a known reason, or
accounts for every event in it: accepted events can be written to Kafka and read back
unchanged, and every other event has a known reason and can be kept on ``clicks-failed``.
"""

from __future__ import annotations

import time

import orjson
from hypothesis import HealthCheck, given, settings

from app.errors import InvalidEvent
from app.ingest.collector import parse_event_batch
from app.ingest.customer_ids import is_pseudonym
from app.ingest.events import decode_event, event_to_wire
from app.ingest.failures import failed_event_record
from app.runtime.metrics import KNOWN_REJECT_REASONS
from tests.hostile_bodies import event_bodies, raw_json_texts

_GENERATED = 3_000
_HOSTILE = 5_000
_SALT = "a-salt-of-at-least-16-characters"


def _fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))  # fmt: skip


def _check(body: bytes, salt: str) -> None:
    received_ms = int(time.time() * 1000)
    try:
        result = parse_event_batch(body, received_ms, 300_000, salt)
    except InvalidEvent as exc:
        assert exc.reason in KNOWN_REJECT_REASONS
        assert str(exc)
        failed_event_record(reason=exc.reason, error=str(exc), payload=body[:1024],
                            source="http", received_ts_ms=received_ms)  # fmt: skip
        return
    decoded = orjson.loads(body)
    sent = len(decoded["events"]) if "events" in decoded else 1
    assert len(result.accepted) + len(result.rejected) == sent
    answer = result.response_body()
    assert (answer["accepted"], answer["rejected"]) == (len(result.accepted), len(result.rejected))
    assert result.status == (202 if result.accepted else 400)
    for event in result.accepted:
        # What the collector writes to Kafka is what the agent reads back.
        assert decode_event(orjson.dumps(event_to_wire(event)), received_ms) == event
        assert not salt or is_pseudonym(event.customer_id)
    for rejection in result.rejected:
        assert rejection.reason in KNOWN_REJECT_REASONS and rejection.error
        failed_event_record(reason=rejection.reason, error=rejection.error,
                            payload=rejection.payload, source="http",
                            received_ts_ms=received_ms)  # fmt: skip
    orjson.dumps(answer)


def test_generated_event_bodies_are_all_accounted_for():
    seen = 0

    @_fuzz(_GENERATED)
    @given(body=event_bodies())
    def run(body: bytes) -> None:
        nonlocal seen
        seen += 1
        _check(body, salt=_SALT if seen % 2 else "")

    run()
    assert seen >= _GENERATED


def test_hostile_texts_are_refused_cleanly():
    seen = 0

    @_fuzz(_HOSTILE)
    @given(body=raw_json_texts())
    def run(body: bytes) -> None:
        nonlocal seen
        seen += 1
        _check(body, salt="")

    run()
    assert seen >= _HOSTILE
