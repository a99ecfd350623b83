"""The runbook's replay of ``clicks-failed``: ``deploy/failed_events.py`` exports the events of a
reason since a time, and ``nudgeflow replay`` sends them to a worker, which takes them."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from app.ingest.failures import failed_event_record
from tests.deploy.promql import DEPLOY
from tests.integration.clients import event, get, produce, unique, wait_for_customer

pytestmark = pytest.mark.integration


async def test_failed_events_of_a_reason_are_exported_and_replayed(
    services, worker, tmp_path: Path
):
    customer, other = unique("replayed"), unique("not-replayed")
    now_ms = int(time.time() * 1000)
    since = datetime.fromtimestamp((now_ms - 60_000) / 1000, UTC).isoformat()
    kept = [event(customer, "page_view", page=f"/p/{n}") for n in range(3)]

    def failed(reason: str, payload: object, received_ms: int = now_ms) -> tuple[bytes, bytes]:
        record = failed_event_record(reason=reason, error="…", payload=payload, source="kafka",
                                     received_ts_ms=received_ms)  # fmt: skip
        return customer.encode(), record

    await produce(services.bootstrap, "clicks-failed", [
        failed("internal_error", orjson.dumps(kept[0])),  # read from clicks: kept as text
        failed("internal_error", orjson.dumps(kept[1])),
        failed("internal_error", kept[2]),  # from the collector: kept decoded
        failed("invalid_field", event(other, "page_view")),  # another reason
        failed("internal_error", event(other, "page_view"), received_ms=now_ms - 3_600_000),
        failed("internal_error", b"\xff\xfe"),  # not replayable
    ])  # fmt: skip

    exported = subprocess.run(
        [sys.executable, str(DEPLOY / "failed_events.py"), services.broker_url,
         "--reason", "internal_error", "--since", since],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr.decode()
    events = [orjson.loads(line) for line in exported.stdout.splitlines()]
    assert not [e for e in events if e["customer_id"] == other]
    assert sorted(e["event_id"] for e in events if e["customer_id"] == customer) == sorted(
        e["event_id"] for e in kept
    )
    assert b"not replayable" in exported.stderr

    assert (await get(f"{worker.web_url}/v1/customers/{customer}"))[0] == 404
    jsonl = tmp_path / "failed.jsonl"
    jsonl.write_bytes(
        b"".join(orjson.dumps(e) + b"\n" for e in events if e["customer_id"] == customer)
    )
    replayed = subprocess.run(
        [sys.executable, "-m", "app", "replay", str(jsonl), "--to", worker.web_url],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert replayed.returncode == 0, replayed.stdout.decode() + replayed.stderr.decode()
    assert b"accepted 3, rejected 0" in replayed.stdout, replayed.stdout.decode()
    state = await wait_for_customer(worker.web_url, customer)
    assert state["customer_id"] == customer
