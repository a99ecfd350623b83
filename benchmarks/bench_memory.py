"""Memory: the worker's resident memory per active customer.

One worker, idle and ready, then one short visit (page view, product view and half
the time a scroll) for each of ~100 000 distinct customers, produced straight to
``clicks``. RSS (``psutil``) is read before the first event and once all are
processed; the difference over the customers is what one customer's live state
costs, table store, Python objects and allocator slack included. Twice: with the
settings' default of states held decoded (the most recently written; the others
encoded), and with every state decoded.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from benchmarks._common import (
    EventFactory,
    bench_worker_env,
    embedded_stack,
    produce_events,
    running_workers,
    scaled,
    scrape,
    watch_progress,
    web_url,
)
from benchmarks._report import Row, num, verdict
from config.settings import Settings

__all__ = ["TARGET_BYTES_PER_CUSTOMER", "details", "run", "summary"]

TARGET_BYTES_PER_CUSTOMER = 2048
# The workers' default (they do not see this process's NUDGEFLOW_ variables).
_DEFAULT_DECODED_MAX: int = Settings.model_fields["decoded_states_max"].default


def run(scale: float, workdir: Path) -> dict[str, Any]:
    """Grow one worker to ~100 000 x ``scale`` customers; bytes of RSS per customer, with
    the default share of states decoded and with all of them."""
    customers = int(scaled(100_000, scale, 2_000))
    result = asyncio.run(_run(customers, workdir / "default", decoded_max=None))
    result["all_decoded"] = asyncio.run(_run(customers, workdir / "decoded", customers))
    return result


async def _run(customers: int, workdir: Path, decoded_max: int | None) -> dict[str, Any]:
    events = EventFactory(seed=4, customers=customers).visits(
        customers, ts_ms=int(time.time() * 1000) - 60_000
    )
    async with embedded_stack(workdir) as stack:
        services = stack.services
        env = bench_worker_env(services, workdir)
        if decoded_max is not None:
            env["NUDGEFLOW_DECODED_STATES_MAX"] = str(decoded_max)
        url = web_url(env)
        async with running_workers([env]) as [worker]:
            process = psutil.Process(worker.process.pid)
            await asyncio.sleep(2.0)  # let start-up allocations settle
            rss_before = process.memory_info().rss
            watching = asyncio.create_task(
                watch_progress([url], len(events), timeout_s=max(60.0, len(events) / 1_000))
            )
            try:
                await produce_events(services.bootstrap, events)
                progress = await watching
            finally:
                watching.cancel()
            await asyncio.sleep(1.0)
            rss_after = process.memory_info().rss
            async with aiohttp.ClientSession() as session:
                active = (await scrape(session, url)).total("nudgeflow_active_customers")
    per_customer = (rss_after - rss_before) / customers
    return {
        "customers": customers,
        "decoded_max": decoded_max or _DEFAULT_DECODED_MAX,
        "events": len(events),
        "handled": progress.handled,
        "complete": progress.complete,
        "active_customers": active,
        "rss_before_bytes": rss_before,
        "rss_after_bytes": rss_after,
        "bytes_per_customer": per_customer,
        "target_bytes_per_customer": TARGET_BYTES_PER_CUSTOMER,
        "passed": progress.complete and per_customer <= TARGET_BYTES_PER_CUSTOMER,
    }


def summary(result: dict[str, Any]) -> list[Row]:
    customers, decoded = num(result["customers"]), num(result["decoded_max"])
    return [
        Row("memory", f"worker RSS per active customer ({customers} customers, {decoded} of "
            "their states decoded)", f"{num(result['bytes_per_customer'])} B", "≤ 2 KiB",
            verdict(result["passed"])),
        Row("memory", "worker RSS per active customer, every state decoded",
            f"{num(result['all_decoded']['bytes_per_customer'])} B", "—", "—"),
    ]  # fmt: skip


def details(result: dict[str, Any]) -> str:
    mib = 1024 * 1024
    runs = [result, result["all_decoded"]]
    incomplete = "".join(
        f"\n**Only {num(r['handled'])} of {num(r['events'])} events were handled before the "
        "time-out.**\n"
        for r in runs
        if not r["complete"]
    )
    rows = "\n".join(
        f"| {label} | {r['rss_before_bytes'] / mib:.1f} MiB | {r['rss_after_bytes'] / mib:.1f} MiB "
        f"| {num(r['active_customers'])} | {num(r['bytes_per_customer'])} B |"
        for label, r in zip(
            [f"default: {num(result['decoded_max'])} decoded", "every state decoded"], runs,
            strict=True,
        )
    )  # fmt: skip
    return f"""\
One worker; {num(result["events"])} events, one short visit for each of
{num(result["customers"])} distinct customers, produced to `clicks` once the worker is ready.
Twice, each on a fresh stack: with `NUDGEFLOW_DECODED_STATES_MAX` at its default (the most
recently written states are held as Python objects, the others encoded as on the changelog
and decoded when their customer's next event or timer reads them), and with every state
decoded.
{incomplete}
| states held decoded | RSS ready, idle | RSS, all processed | active customers | per customer |
|---|---|---|---|---|
{rows}

Target: ≤ 2 KiB per active customer, with the default settings: **{verdict(result["passed"])}**.
The growth includes everything the worker holds because of these events (table store, Python
objects, allocator slack, consumer and producer buffers not yet returned to the OS), so it is
an upper bound on the state itself.
"""
