"""``nudgeflow eval``: simulate, replay through a real worker, score the interventions.

Starts the embedded stack and a worker (or uses a running deployment), sends the
simulated events of each seed straight to ``clicks``, waits until the worker has
processed them, reads ``interventions`` and scores them against the labels
(``app.tools.evaluation``). A fixed seed set is the number to compare changes by; a
held-out seed checks that a change was not tuned to that sample.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.console import Console
from rich.table import Table

from app.runtime.topics import INTERVENTIONS, bootstrap_servers
from app.tools.evaluation import COLUMNS, StoryQuality, evaluate, render_markdown
from app.tools.replay import replay
from app.tools.replay_pacing import Pacing
from app.tools.simulator import SimulationConfig, simulate

__all__ = ["add_parser", "run"]

_SEED_SET = (1, 2, 3)
_HOLDOUT_SEED = 1000
_COUNTERS = ("events_processed", "events_duplicate", "events_rejected")


@dataclass(slots=True, frozen=True)
class _Deployment:
    broker_url: str
    web_url: str


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``nudgeflow eval``."""
    parser = subparsers.add_parser("eval", help="score interventions on simulated shoppers")
    parser.add_argument("--seeds", default=",".join(map(str, _SEED_SET)),
                        help="comma-separated seeds of the comparison set")  # fmt: skip
    parser.add_argument("--holdout-seed", type=int, default=_HOLDOUT_SEED)
    parser.add_argument("--customers", type=int, default=300, help="customers per seed")
    parser.add_argument("--days", type=float, default=3.0, help="days of traffic per seed")
    parser.add_argument("--broker", help="use this broker (kafka://…) instead of starting one")
    parser.add_argument("--web", help="the worker's URL (http://…), with --broker")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/QUALITY.md"))


def run(args: argparse.Namespace) -> int:
    """Run ``nudgeflow eval``; returns the exit status."""
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if bool(args.broker) != bool(args.web):
        raise SystemExit("nudgeflow eval: give --broker and --web together, or neither")
    console = Console(stderr=True, width=120)
    with _deployment(args.broker, args.web) as deployment:
        comparison = asyncio.run(_score(deployment, seeds, args.customers, args.days, console))
        holdout = asyncio.run(
            _score(deployment, [args.holdout_seed], args.customers, args.days, console)
        )
    _print(console, f"seeds {seeds}", comparison)
    _print(console, f"held-out seed {args.holdout_seed}", holdout)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(_report(seeds, args, comparison, holdout))
    console.print(f"wrote {args.out}")
    return 0


@contextmanager
def _deployment(broker: str | None, web: str | None) -> Iterator[_Deployment]:
    if broker and web:
        yield _Deployment(broker, web.rstrip("/"))
        return
    from app.runtime.embedded import EmbeddedStack, free_port
    from app.runtime.testing import Services, start_worker, worker_env

    workdir = Path(tempfile.mkdtemp(prefix="nudgeflow-eval-"))
    stack = EmbeddedStack.start(free_port(), free_port(), workdir / "stack")
    try:
        services = Services(stack.broker_url, stack.redis_url, embedded=True)
        worker = start_worker(worker_env(services, workdir), workdir / "worker.log")
        try:
            yield _Deployment(stack.broker_url, worker.web_url)
        finally:
            worker.stop()
    finally:
        stack.stop()


async def _score(
    deployment: _Deployment, seeds: list[int], customers: int, days: float, console: Console
) -> list[StoryQuality]:
    labels: list[dict[str, Any]] = []
    for seed in seeds:
        result = simulate(SimulationConfig(customers=customers, days=days, seed=seed))
        before = await _processed(deployment.web_url)
        started = time.monotonic()
        summary = await replay(
            (orjson.dumps(event) for event in result.events),
            deployment.broker_url,
            Pacing(),
        )
        await _wait_processed(deployment.web_url, before + summary.sent)
        console.print(f"seed {seed}: {summary.sent} events through the worker in "
                      f"{time.monotonic() - started:.1f} s")  # fmt: skip
        labels.extend(label.as_dict() for label in result.labels)
    sessions = {label["session_id"] for label in labels}
    found = await _read_interventions(deployment.broker_url, sessions)
    return evaluate(labels, found)


async def _processed(web_url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{web_url}/metrics") as response:
        text = await response.text()
    total = 0.0
    for name in _COUNTERS:
        for value in re.findall(rf"^nudgeflow_{name}_total(?:{{[^}}]*}})? (\S+)$", text, re.M):
            total += float(value)
    return int(total)


async def _wait_processed(web_url: str, target: int, timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while await _processed(web_url) < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the worker did not process {target} events in {timeout_s} s")
        await asyncio.sleep(0.2)


async def _read_interventions(broker_url: str, sessions: set[str]) -> list[dict[str, Any]]:
    """Every intervention on the topic for these sessions, once each (by id)."""
    await asyncio.sleep(0.5)  # let the last interventions leave the worker's producer
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker_url),
                                enable_auto_commit=False, fetch_max_wait_ms=50)  # fmt: skip
    await consumer.start()
    found: dict[str, dict[str, Any]] = {}
    try:
        tps = [TopicPartition(INTERVENTIONS, p)
               for p in sorted(consumer.partitions_for_topic(INTERVENTIONS) or ())]  # fmt: skip
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        idle_polls = 0
        while idle_polls < 5:
            batches = await consumer.getmany(timeout_ms=200)
            records = [r for rs in batches.values() for r in rs]
            idle_polls = 0 if records else idle_polls + 1
            for record in records:
                intervention = orjson.loads(record.value)
                if intervention["session_id"] in sessions:
                    found[intervention["intervention_id"]] = intervention
    finally:
        await consumer.stop()
    return list(found.values())


def _print(console: Console, title: str, rows: list[StoryQuality]) -> None:
    table = Table(title=title)
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "story" else "right")
    for row in rows:
        table.add_row(*row.cells())
    console.print(table)


def _report(
    seeds: list[int], args: argparse.Namespace, comparison: list[StoryQuality],
    holdout: list[StoryQuality],
) -> str:  # fmt: skip
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "# Quality of interventions on simulated shoppers\n\n"
        f"Measured {now} with `nudgeflow eval --customers {args.customers} --days {args.days}` "
        f"(comparison seeds {', '.join(map(str, seeds))}; held-out seed {args.holdout_seed}). "
        "Latency is event time from the first event of the friction to the event that "
        "triggered the intervention. A friction session is caught when an intervention came "
        "between the friction's start and the session's end; *right reason* looks at the "
        "first such intervention; a false alarm is any intervention in a clean session.\n\n"
        f"## Comparison seeds {', '.join(map(str, seeds))}\n\n{render_markdown(comparison)}\n"
        f"## Held-out seed {args.holdout_seed}\n\n{render_markdown(holdout)}"
    )
