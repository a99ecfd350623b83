"""``nudgeflow eval``: simulate, replay through a real worker, score the interventions.

Starts the embedded stack and a worker (or uses a running deployment), sends the
simulated events of each seed straight to ``clicks`` in the order a collector
would receive them, waits until the worker has processed them, reads
``interventions`` and scores them against the labels (``app.tools.evaluation``).
The comparison set (seeds 1, 2, 3 of the ``tuning`` variant) is the number to
compare changes by; the held-out set (seed 1000 of the ``holdout`` variant, with
other think times, look-alikes, faults and mix) checks that a change was not
tuned to that sample, and is never tuned on.

The report (and the printout) also carries the learned abandonment score against
the ``cart_abandonment_risk`` rule on the same seeds, variants and sizes
(``app.tools.abandonment_comparison``: in process, no worker, ~11 s for the
default sets), measured after the worker stopped.

A run counts only what it caused, so it can share a deployment with live traffic
or an earlier run: every customer, session and event id carries a tag of its own,
and only interventions written after the run started, for the run's sessions,
are read. Event time runs forward across the whole run, a day between seeds,
and ends before the wall clock (the collector refuses events from the future).
Timers follow each partition's event-time watermark, so after each seed one
event per ``clicks`` partition, half a day later, moves it past every silence.
A deployment that has already seen later event times (live traffic, or a run in
the last few weeks) would close sessions and fire silences early: the run says
so, and its numbers are then not comparable.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import re
import secrets
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from rich.console import Console
from rich.table import Table

from app.runtime.topics import CLICKS, INTERVENTIONS, bootstrap_servers
from app.tools.abandonment_comparison import markdown_section
from app.tools.evaluation import (
    COLUMNS,
    StoryQuality,
    evaluate,
    evaluate_lookalikes,
    render_lookalikes,
    render_markdown,
    render_targets,
)
from app.tools.replay import replay
from app.tools.replay_pacing import Pacing, event_ts_ms
from app.tools.simulator import LOOKALIKES, VARIANTS, SimulationConfig, simulate
from app.tools.simulator.variants import Variant
from app.tools.terminal import print_table
from app.tools.uplift_check import markdown_section as uplift_section

__all__ = ["add_parser", "run"]

_SEED_SET = (1, 2, 3)
_HOLDOUT_SEED = 1000
#: The committed report; written only with ``--write``.
QUALITY_REPORT = Path("benchmarks/QUALITY.md")
_COUNTERS = ("events_processed", "events_duplicate", "events_rejected")
_DAY_MS = 86_400_000
# After a seed's last event: far past every silence rule (30 min at most).
_TICK_AFTER_MS = _DAY_MS // 2
# Reading the interventions: stop after this long without a new one, once caught up.
_QUIET_S = 2.0


@dataclass(slots=True, frozen=True)
class _Deployment:
    broker_url: str
    web_url: str


@dataclass(slots=True, frozen=True)
class _Part:
    """One scored set: its title in the report, its variant and seeds."""

    title: str
    variant: str
    seeds: tuple[int, ...]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``nudgeflow eval``.

    Examples
    --------
    >>> parser = argparse.ArgumentParser(prog="nudgeflow")
    >>> add_parser(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["eval", "--seeds", "7", "--customers", "40"])
    >>> args.seeds, args.holdout_seed, args.customers, args.write, args.out
    ('7', 1000, 40, False, None)
    """
    parser = subparsers.add_parser(
        "eval",
        help="score interventions on simulated shoppers",
        description=(
            "Replay simulated shoppers through a worker and score its interventions: a "
            "comparison set (variant tuning) and a held-out set (variant holdout, never "
            "tuned on). Prints the tables; writes a report only with --write or --out."
        ),
    )
    parser.add_argument("--seeds", default=",".join(map(str, _SEED_SET)),
                        help="comma-separated seeds of the comparison set (tuning)")  # fmt: skip
    parser.add_argument("--holdout-seed", type=int, default=_HOLDOUT_SEED,
                        help="seed of the held-out set (variant holdout)")  # fmt: skip
    parser.add_argument("--customers", type=int, default=300, help="customers per seed")
    parser.add_argument("--days", type=float, default=3.0, help="days of traffic per seed")
    parser.add_argument("--broker", help="use this broker (kafka://…) instead of starting a "
                        "fresh embedded stack (a running nudgeflow up is used only when named "
                        "here: data it holds can make the numbers incomparable)")  # fmt: skip
    parser.add_argument("--web", help="the worker's URL (http://…), with --broker")
    parser.add_argument("--no-learning", action="store_true",
                        help="start the worker with its online models off")  # fmt: skip
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--write", action="store_true",
                       help=f"write the committed report, {QUALITY_REPORT}")  # fmt: skip
    where.add_argument("--out", type=Path, metavar="FILE", help="write the report here")


def run(args: argparse.Namespace) -> int:
    """Run ``nudgeflow eval``; returns the exit status."""
    seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
    if bool(args.broker) != bool(args.web):
        raise SystemExit("nudgeflow eval: give --broker and --web together, or neither")
    parts = (
        _Part(f"Comparison: seeds {', '.join(map(str, seeds))}, variant tuning", "tuning", seeds),
        _Part(f"Held-out: seed {args.holdout_seed}, variant holdout", "holdout",
              (args.holdout_seed,)),
    )  # fmt: skip
    destination = _report_path(args)
    tag = f"ev{secrets.token_hex(4)}-"
    first_start_ms = _first_start_ms(
        int(time.time() * 1000), sum(len(p.seeds) for p in parts), args.days
    )
    # Reports and their Markdown tables go out whole: the terminal wraps, rich does not.
    console = Console(stderr=True, soft_wrap=True)
    console.print(f"run tag {tag} (in every id of this run)")
    if args.no_learning and args.broker:
        raise SystemExit("nudgeflow eval: --no-learning applies to the worker it starts")
    with _deployment(args.broker, args.web, learning=not args.no_learning) as deployment:
        labels, found, warning = asyncio.run(
            _replay_and_read(deployment, parts, args, tag, first_start_ms, console)
        )
    sections: list[str] = [f"**Warning:** {warning}\n"] if warning else []
    for part in parts:
        rows = evaluate(labels[part.title], found)
        _print(console, part.title, rows)
        console.print(render_targets(rows))
        sections.append(_section(part, rows, labels[part.title], found))
    abandonment = markdown_section(args.customers, args.days, seeds, args.holdout_seed)
    console.print(abandonment, markup=False, highlight=False)
    sections.append(abandonment)
    uplift = uplift_section(args.customers, args.days, args.holdout_seed)
    console.print(uplift, markup=False, highlight=False)
    sections.append(uplift)
    if destination is not None:
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(_report(args, parts, sections))
        console.print(f"wrote {destination}")
    return 0


def _report_path(args: argparse.Namespace) -> Path | None:
    """Where the report goes: ``--out``, the committed report with ``--write``, or nowhere."""
    if args.out is not None:
        return Path(args.out)
    return QUALITY_REPORT if args.write else None


def _first_start_ms(now_ms: int, seeds: int, days: float) -> int:
    """Midnight (UTC) far enough back that every seed, a day apart, ends before ``now_ms``.

    A seed takes ``days`` plus up to a day for visits that run past its end, and
    the next one starts a whole day after that (``_next_start_ms``).
    """
    per_seed_days = math.ceil(days) + 2
    return (now_ms // _DAY_MS - seeds * per_seed_days) * _DAY_MS


def _next_start_ms(end_ms: int) -> int:
    """The next seed's start: the midnight a full day after ``end_ms``."""
    return (end_ms // _DAY_MS + 2) * _DAY_MS


def _ticks(tag: str, seed: int, ts_ms: int, partitions: list[int]) -> list[dict[str, Any]]:
    """One page view per ``clicks`` partition at ``ts_ms``, keyed to land on it.

    Each moves its partition's watermark past the seed's last silences. Their
    customers are the run's own and never scored.
    """
    partitioner = DefaultPartitioner()
    wanted = set(partitions)
    events: list[dict[str, Any]] = []
    for n in range(64 * max(1, len(partitions))):
        customer_id = f"{tag}tick-{n}"
        partition = partitioner(customer_id.encode(), partitions, partitions)
        if partition in wanted:
            wanted.discard(partition)
            events.append({"event_id": f"{tag}tick-{seed}-{n}", "customer_id": customer_id,
                           "session_id": f"{tag}tick-{seed}-{n}", "type": "page_view",
                           "ts": ts_ms, "page": "/"})  # fmt: skip
        if not wanted:
            break
    return events


@contextmanager
def _deployment(broker: str | None, web: str | None, learning: bool) -> Iterator[_Deployment]:
    if broker and web:
        yield _Deployment(broker, web.rstrip("/"))
        return
    from app.runtime.embedded import EmbeddedStack, free_port
    from app.runtime.testing import Services, start_worker, worker_env

    workdir = Path(tempfile.mkdtemp(prefix="nudgeflow-eval-"))
    stack = EmbeddedStack.start(free_port(), free_port(), workdir / "stack")
    try:
        services = Services(stack.broker_url, stack.redis_url, embedded=True)
        env = worker_env(services, workdir, learning_enabled=str(learning).lower())
        worker = start_worker(env, workdir / "worker.log")
        try:
            yield _Deployment(stack.broker_url, worker.web_url)
        finally:
            worker.stop()
    finally:
        stack.stop()


async def _replay_and_read(
    deployment: _Deployment,
    parts: tuple[_Part, ...],
    args: argparse.Namespace,
    tag: str,
    start_ms: int,
    console: Console,
) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]], str | None]:
    """Replay every seed of ``parts`` in turn: the labels per part, the run's
    interventions, and a warning if the deployment had seen later event times."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(deployment.broker_url),
                                enable_auto_commit=False, fetch_max_wait_ms=50)  # fmt: skip
    await consumer.start()
    try:
        await consumer.topics()  # fetches the metadata of every topic
        click_partitions = sorted(consumer.partitions_for_topic(CLICKS) or {0})
        tps = [TopicPartition(INTERVENTIONS, p)
               for p in sorted(consumer.partitions_for_topic(INTERVENTIONS) or {0})]  # fmt: skip
        # Only what this run causes counts: read from where the topic ends now.
        starts = await consumer.end_offsets(tps)
        warning = _later_data_warning(await _newest_event_ms(consumer, click_partitions), start_ms)
        if warning:
            console.print(f"[bold red]warning:[/] {warning}")
        labels: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for part in parts:
            for seed in part.seeds:
                result = simulate(SimulationConfig(
                    customers=args.customers, days=args.days, seed=seed, variant=part.variant,
                    start_ms=start_ms, id_prefix=tag,
                ))  # fmt: skip
                end_ms = max(label.ended_ts for label in result.labels)
                ticks = _ticks(tag, seed, end_ms + _TICK_AFTER_MS, click_partitions)
                lines = [orjson.dumps(e) for e in [*result.events, *ticks]]
                began = time.monotonic()
                before = await _processed(deployment.web_url)
                summary = await replay(lines, deployment.broker_url, Pacing())
                if summary.stopped is not None:
                    raise SystemExit(f"nudgeflow eval: {summary.stopped}")
                await _wait_processed(deployment.web_url, before + summary.sent)
                day = dt.datetime.fromtimestamp(start_ms / 1000, dt.UTC).date()
                took_s = time.monotonic() - began
                console.print(f"{part.variant} seed {seed} (from {day}): {summary.sent} events "
                              f"through the worker in {took_s:.1f} s")  # fmt: skip
                labels[part.title].extend(label.as_dict() for label in result.labels)
                start_ms = _next_start_ms(end_ms)
        sessions = {label["session_id"] for part in labels.values() for label in part}
        found = await _read_interventions(consumer, starts, sessions)
    finally:
        await consumer.stop()
    return labels, found, warning


def _later_data_warning(newest_ms: int | None, start_ms: int) -> str | None:
    """What is wrong when the deployment has seen event times after the run's start.

    Examples
    --------
    >>> _later_data_warning(None, 1_000) is None, _later_data_warning(999, 1_000) is None
    (True, True)
    >>> _later_data_warning(1_767_225_600_000, 1_000)[:57]
    'the deployment has seen event time up to 2026-01-01 00:00'
    """
    if newest_ms is None or newest_ms < start_ms:
        return None
    newest = dt.datetime.fromtimestamp(newest_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M")
    return (
        f"the deployment has seen event time up to {newest} UTC, after this run's start: "
        "its watermarks close this run's sessions and fire its silence rules early, so these "
        "numbers are not comparable. Run on a fresh deployment (no --broker) to compare."
    )


async def _newest_event_ms(consumer: AIOKafkaConsumer, partitions: list[int]) -> int | None:
    """The newest event time among the last records of the ``clicks`` partitions, if any."""
    tps = [TopicPartition(CLICKS, p) for p in partitions]
    ends = await consumer.end_offsets(tps)
    begins = await consumer.beginning_offsets(tps)
    holding = [tp for tp in tps if ends[tp] > begins[tp]]
    if not holding:
        return None
    consumer.assign(holding)
    for tp in holding:
        consumer.seek(tp, ends[tp] - 1)
    newest: int | None = None
    waiting = set(holding)
    deadline = time.monotonic() + 5.0
    while waiting and time.monotonic() < deadline:
        for tp, records in (await consumer.getmany(timeout_ms=200)).items():
            waiting.discard(tp)
            for record in records:
                try:
                    event = orjson.loads(record.value)
                except orjson.JSONDecodeError:
                    continue
                ts_ms = event_ts_ms(event) if isinstance(event, dict) else None
                if ts_ms is not None:
                    newest = ts_ms if newest is None else max(newest, ts_ms)
    return newest


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


async def _read_interventions(
    consumer: AIOKafkaConsumer, starts: dict[TopicPartition, int], sessions: set[str]
) -> list[dict[str, Any]]:
    """The interventions written since ``starts`` for ``sessions``, once each (by id)."""
    await asyncio.sleep(0.5)  # let the last interventions leave the worker's producer
    tps = list(starts)
    consumer.assign(tps)
    for tp, offset in starts.items():
        consumer.seek(tp, offset)
    ends = await consumer.end_offsets(tps)
    found: dict[str, dict[str, Any]] = {}
    quiet_since = time.monotonic()
    while True:
        batches = await consumer.getmany(timeout_ms=200)
        records = [r for rs in batches.values() for r in rs]
        if records:
            quiet_since = time.monotonic()
        for record in records:
            intervention = orjson.loads(record.value)
            if intervention.get("session_id") in sessions:
                found[intervention["intervention_id"]] = intervention
        positions = [await consumer.position(tp) for tp in tps]
        caught_up = all(p >= ends[tp] for p, tp in zip(positions, tps, strict=True))
        if caught_up and time.monotonic() - quiet_since >= _QUIET_S:
            return list(found.values())


def _print(console: Console, title: str, rows: list[StoryQuality]) -> None:
    table = Table(title=title)
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "story" else "right")
    for row in rows:
        table.add_row(*row.cells())
    print_table(table, console=console)


def _section(
    part: _Part,
    rows: list[StoryQuality],
    labels: list[dict[str, Any]],
    found: list[dict[str, Any]],
) -> str:
    lookalikes = render_lookalikes(evaluate_lookalikes(labels, found))
    return (
        f"## {part.title}\n\n{render_markdown(rows)}\n"
        f"Targets: {render_targets(rows)}\n\n"
        f"False alarms on the clean sessions showing each look-alike:\n\n{lookalikes}\n"
    )


def _report(args: argparse.Namespace, parts: tuple[_Part, ...], sections: list[str]) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "# Quality of interventions on simulated shoppers\n\n"
        f"Measured {now} with `nudgeflow eval --customers {args.customers} --days {args.days}`: "
        f"{'; '.join(p.title for p in parts)}. The held-out variant has other think times, "
        "look-alikes, fault rates, clock skews and story mix, and is never tuned on. Events "
        "reach the worker in arrival order: delayed, some out of order or beyond the allowed "
        "lateness, some twice, half the sessions without `session_end`, some customers on "
        "two devices with skewed clocks.\n\n"
        "**Targets, on the held-out set:** at least 90 % of friction sessions caught, at most "
        "3 % of clean sessions given a friction claim (`assist`), at most 10 % given any "
        "intervention.\n\n"
        "A friction session is *caught* when an intervention's trigger event lies between "
        "the friction's first event and the session's end (event time). *p50/p90* is the "
        "event time from the friction's first event to when the first such intervention's "
        "rule held (`fired_ts` for silence rules, else the trigger's time); *right reason* "
        "looks at that first intervention. *Clean* sessions have no friction (crawlers and "
        "second-device sessions included).\n\n" + "\n".join(sections) + "\n" + _variant_table()
    )


def _variant_table() -> str:
    """The parameters of the two variants, side by side."""
    rows = [(name, *(show(v) for v in VARIANTS.values())) for name, show in _VARIANT_ROWS]
    rows += [
        (f"look-alike {name}", *(f"{v.behaviour.lookalike_p[name]:.0%}" for v in VARIANTS.values()))
        for name in LOOKALIKES
    ]
    lines = ["| parameter | " + " | ".join(VARIANTS) + " |", "|---|" + "---:|" * len(VARIANTS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "## The two variants\n\n" + "\n".join(lines) + "\n"


def _think(v: Variant) -> str:
    b = v.behaviour
    medians = f"{b.load_ms:g} / {b.glance_ms:g} / {b.read_ms:g} / {b.field_ms:g}"
    return f"{medians}; {b.think_sigma:g}"


def _held(v: Variant) -> str:
    f = v.faults
    return f"{f.out_of_order_share:.1%} / {f.very_late_share:.1%} / {f.retry_share:.1%}"


def _devices(v: Variant) -> str:
    low, high = v.faults.clock_skew_ms
    return f"{v.faults.two_device_share:.0%}, {low / 1000:+g} to {high / 1000:+g} s"


_VARIANT_ROWS: tuple[tuple[str, Callable[[Variant], str]], ...] = (
    ("think times: load / glance / read / field (median ms); log-spread", _think),
    ("network delay (median ms)", lambda v: f"{v.faults.network_delay_ms:g}"),
    ("out of order / beyond lateness / retried", _held),
    ("sessions that report session_end", lambda v: f"{v.faults.session_end_share:.0%}"),
    ("customers on two devices, clock skew", _devices),
    ("slip per clean session", lambda v: f"{v.behaviour.slip_p:.0%}"),
    (
        "crawler gap (median ms), saying so",
        lambda v: f"{v.behaviour.bot_gap_ms:g}, {v.behaviour.bot_user_agent_share:.0%}",
    ),
    (
        "mix: clean buyer / browser / crawler",
        lambda v: (
            f"{v.mix['clean_buyer']:.0%} / {v.mix['browser_leaves']:.0%} / {v.mix['bot']:.0%}"
        ),
    ),
)
