"""Health, readiness, metrics and customer state over HTTP (contract §4, §5)."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.clients import (
    get,
    metric_families,
    post,
    rage_clicks,
    read_topic,
    unique,
)

pytestmark = pytest.mark.integration

CONTRACT_METRICS = {
    "nudgeflow_events_received": {"source"},
    "nudgeflow_events_rejected": {"reason"},
    "nudgeflow_events_processed": set(),
    "nudgeflow_interventions": {"kind", "reason"},
    "nudgeflow_interventions_suppressed": {"cause"},
    "nudgeflow_event_to_intervention_seconds": set(),
    "nudgeflow_processing_seconds": set(),
    "nudgeflow_event_lag_seconds": set(),
    "nudgeflow_active_customers": set(),
    "nudgeflow_model_score": {"model"},
}


async def test_health_and_readiness(worker):
    assert (await get(f"{worker.web_url}/healthz"))[0] == 200
    status, body, _ = await get(f"{worker.web_url}/readyz")
    assert status == 200
    assert orjson.loads(body)["tables_recovered"] is True


async def test_every_contract_metric_is_served_with_its_labels(worker, services):
    customer = unique("metrics")
    await post(f"{worker.web_url}/v1/events", {"events": rage_clicks(customer)})
    await read_topic(
        services.bootstrap, "interventions", lambda v: v.get("customer_id") == customer
    )
    status, body, headers = await get(f"{worker.web_url}/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    for name, labels in CONTRACT_METRICS.items():
        assert name in families, name
        samples = families[name].samples
        assert samples, f"{name} has no samples"
        assert all(labels <= set(s.labels) - {"le"} for s in samples), name
    received = {s.labels["source"]: s.value for s in families["nudgeflow_events_received"].samples
                if s.name.endswith("_total")}  # fmt: skip
    assert received["http"] >= 3
    rage = [s for s in families["nudgeflow_interventions"].samples
            if s.labels.get("reason") == "rage_click" and s.name.endswith("_total")]  # fmt: skip
    assert rage[0].value >= 1


async def test_a_scrape_may_ask_for_some_series_only(worker):
    # As Prometheus' own handlers: ``name[]`` restricts the page to those series (a
    # progress probe polled often need not pay for the whole page).
    wanted = ["nudgeflow_events_processed_total", "nudgeflow_processing_seconds_count"]
    query = "&".join(f"name[]={name}" for name in wanted)
    status, body, _ = await get(f"{worker.web_url}/metrics?{query}")
    assert status == 200
    samples = [s for f in text_string_to_metric_families(body.decode()) for s in f.samples]
    assert sorted(s.name for s in samples) == sorted(wanted)


async def test_unknown_customer_is_404(worker):
    status, body, _ = await get(f"{worker.web_url}/v1/customers/{unique('nobody')}")
    assert status == 404 and orjson.loads(body)["error"]


async def test_customer_state_has_the_contract_fields(worker, services):
    customer = unique("state")
    await post(f"{worker.web_url}/v1/events", {"events": rage_clicks(customer)})
    await read_topic(
        services.bootstrap, "interventions", lambda v: v.get("customer_id") == customer
    )
    status, body, _ = await get(f"{worker.web_url}/v1/customers/{customer}")
    state = orjson.loads(body)
    assert status == 200
    assert {
        "customer_id",
        "session",
        "profile",
        "segment",
        "scores",
        "signals",
        "interventions",
    } <= set(state)
    assert state["scores"]["rage_click"] > 0
    assert state["interventions"][0]["reason"] == "rage_click"
    assert state["signals"][0]["name"] == "rage_click"


async def test_changed_states_are_counted_as_changelog_writes(worker, services):
    before = await metric_families(worker.web_url)
    customer = unique("changelog")
    await post(f"{worker.web_url}/v1/events", {"events": rage_clicks(customer)})
    await read_topic(
        services.bootstrap, "interventions", lambda v: v.get("customer_id") == customer
    )
    deadline = asyncio.get_running_loop().time() + 10
    while True:  # the state is written at the next commit, every commit interval
        after = await metric_families(worker.web_url)
        written = (after["nudgeflow_changelog_writes"].samples[0].value
                   - before["nudgeflow_changelog_writes"].samples[0].value)  # fmt: skip
        if written >= 1 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.2)
    assert written >= 1


async def test_the_worker_freezes_survivors_and_times_collector_pauses(
    private_stack, worker_factory
):
    # CPython's young threshold (700): an idle worker then still makes young collections.
    worker = worker_factory(private_stack, gc_freeze_interval_s=0.2, gc_young_threshold=0)
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        families = await metric_families(worker.web_url)
        freezes = families["nudgeflow_gc_freezes"].samples[0].value
        if freezes >= 3 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.2)
    assert freezes >= 3, "at start-up, then every 0.2 s"
    pauses = {s.labels["generation"]: s.value
              for s in families["nudgeflow_gc_pause_seconds"].samples
              if s.name.endswith("_count")}  # fmt: skip
    assert set(pauses) == {"0", "1", "2"} and pauses["0"] > 0
