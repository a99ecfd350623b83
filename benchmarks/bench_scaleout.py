"""Scale-out: two workers in one group draining a pre-filled 8-partition ``clicks``.

Both workers start at the same moment, so the group settles on both before most
of the backlog is read; each gets some partitions (``/readyz``). The broker and both
workers share this machine's cores, so the gain over one worker depends on how busy
each of them is: the report gives their CPU use.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks._common import (
    PARTITIONS,
    CpuMeter,
    EventFactory,
    bench_worker_env,
    embedded_stack,
    percentiles,
    produce_events,
    running_workers,
    scaled,
    scrape,
    watch_progress,
    web_url,
)
from benchmarks._report import Row, nproc, num

__all__ = ["WORKERS", "compare", "details", "run", "summary"]

WORKERS = 2
_HISTORY_MS = 3_600_000
# Customer views asked of each worker once the backlog is drained; half live on the other.
_VIEWS = 400


def run(scale: float, workdir: Path) -> dict[str, Any]:
    """Fill ``clicks`` with ~100 000 x ``scale`` events and drain them with two workers."""
    return asyncio.run(_run(scale, workdir))


async def _run(scale: float, workdir: Path) -> dict[str, Any]:
    n = int(scaled(100_000, scale, 2_000))
    start_ts_ms = int(time.time() * 1000) - _HISTORY_MS
    factory = EventFactory(seed=6, customers=10_000)
    events = factory.mixed(n, start_ts_ms, _HISTORY_MS / n)
    viewed = sorted({e["customer_id"] for e in events[: n // 2]})[:_VIEWS]
    async with embedded_stack(workdir) as stack:
        services = stack.services
        await produce_events(services.bootstrap, events)
        del events
        envs = [bench_worker_env(services, workdir, f"worker-{i}") for i in range(WORKERS)]
        urls = [web_url(env) for env in envs]
        watching = asyncio.create_task(watch_progress(urls, n, timeout_s=max(60.0, n / 1_000)))
        try:
            async with running_workers(envs) as started:
                pids = {f"worker {i}": w.process.pid for i, w in enumerate(started)}
                cpu = CpuMeter({**pids, "broker": stack.broker_pid})
                progress = await watching
                draining_cpu = cpu.read()
                workers = await asyncio.gather(*(_worker_figures(url) for url in urls))
                views = await _customer_view_ms(urls, viewed)
        finally:
            watching.cancel()
    for i, figures in enumerate(workers):
        figures["events_per_s"] = progress.worker_rate(i)
    return {
        "events": n,
        "partitions": PARTITIONS,
        "workers": workers,
        "combined_events_per_s": progress.rate(),
        "combined_steady_events_per_s": progress.steady_rate(),
        "handled": progress.handled,
        "complete": progress.complete,
        "all_assigned": all(w["assigned_partitions"] > 0 for w in workers),
        "draining_cpu_percent": draining_cpu,
        "customer_view_ms": views,
    }


async def _customer_view_ms(urls: list[str], customers: list[str]) -> dict[str, float]:
    """``GET /v1/customers/{id}`` of each customer from each worker in turn (one at a time,
    as a chatbot opening a conversation): p50/p99 in ms and how many answered 200."""
    took: list[float] = []
    ok = 0
    async with aiohttp.ClientSession() as session:
        for url in urls:
            for customer in customers:
                started = time.perf_counter()
                async with session.get(f"{url}/v1/customers/{customer}") as response:
                    await response.read()
                    ok += response.status == 200
                took.append((time.perf_counter() - started) * 1000)
    return {**percentiles(took, [50, 99]), "asked": len(took), "ok": ok}


async def _worker_figures(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/readyz") as response:
            ready = await response.json()
        metrics = await scrape(session, url)
    return {
        "assigned_partitions": ready["assigned_partitions"],
        "processed": metrics.total("nudgeflow_events_processed_total"),
        "duplicates": metrics.total("nudgeflow_events_duplicate_total"),
    }


def compare(result: dict[str, Any], throughput: dict[str, Any]) -> None:
    """Add the single worker of the throughput benchmark (same run) to ``result``."""
    result["single_worker_events_per_s"] = throughput["worker_events_per_s"]
    result["single_worker_cpu_percent"] = throughput["draining_cpu_percent"]
    result["combined_to_single"] = (
        result["combined_events_per_s"] / throughput["worker_events_per_s"]
    )


def summary(result: dict[str, Any]) -> list[Row]:
    single = result.get("single_worker_events_per_s")
    versus = f", {result['combined_to_single']:.2f}x one worker" if single else ""
    rows = [
        Row("scale-out", f"{WORKERS} workers, combined events/s",
            f"{num(result['combined_events_per_s'])}{versus}",
            "none (2 cores)"),
    ]  # fmt: skip
    views = result.get("customer_view_ms")
    if views:
        rows.append(Row("scale-out", "customer view p50 / p99, any worker (half forwarded)",
                        f"{views['p50']:.1f} / {views['p99']:.1f} ms", "—"))  # fmt: skip
    return rows


def details(result: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| worker {i} | {w['assigned_partitions']} | {num(w['processed'])} "
        f"| {num(w['duplicates'])} | {num(w['events_per_s'])} |"
        for i, w in enumerate(result["workers"])
    )
    single = result.get("single_worker_events_per_s")
    if single:
        cpu = result["single_worker_cpu_percent"]
        comparison = (
            f"One worker alone drained its backlog at {num(single)} events/s, using "
            f"{cpu['worker']:.0f} % of one core while the broker used {cpu['broker']:.0f} % "
            "(throughput benchmark, same run): two workers reach "
            f"**{result['combined_to_single']:.2f}x** that, with {nproc()} cores for the broker "
            f"and both workers. The partitions ({result['partitions']}) cap the useful workers."
        )
    else:
        comparison = (
            "The throughput benchmark was not part of this run, so there is no single-worker "
            "rate to compare with."
        )
    assigned = (
        "Both workers held partitions at the end."
        if result["all_assigned"]
        else "**Not every worker held partitions at the end.**"
    )
    return f"""\
`clicks` ({result["partitions"]} partitions) is filled with {num(result["events"])} events, then
{len(result["workers"])} workers of one group start together and drain it. {assigned}
"Assigned partitions" is what `/readyz` counts: every partition the worker's consumer holds
(`clicks`, the table's changelog and Faust's leader topic). Duplicates are events a worker saw
again after a rebalance and dropped.

| worker | assigned partitions | processed | duplicates | events/s (own first to last) |
|---|---|---|---|---|
{rows}
| **combined** | | | | **{num(result["combined_events_per_s"])}** \
(middle 80 %: {num(result["combined_steady_events_per_s"])}) |

While they drained (from both being ready to the last event) the CPU use was
{", ".join(f"{name} {v:.0f} %" for name, v in result["draining_cpu_percent"].items())} of
one core (`psutil`).

{comparison}
{_views_text(result.get("customer_view_ms"))}"""


def _views_text(views: dict[str, float] | None) -> str:
    if not views:
        return ""
    return (
        f"\nA chatbot opening a conversation loads the customer view: {views['asked']:.0f} "
        f"`GET /v1/customers/{{id}}` asked one at a time of both workers (each customer lives on "
        f"one, so half the requests are forwarded once to the other) answered in "
        f"p50 {views['p50']:.1f} ms, p99 {views['p99']:.1f} ms ({views['ok']:.0f} answered 200).\n"
    )
