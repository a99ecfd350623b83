"""``nudgeflow simulate``: write a simulated shop's events, and their labels, as JSONL."""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from rich.table import Table

from app.errors import ConfigError
from app.tools.simulator.config import DEFAULT_MIX, DEFAULT_START_MS, SimulationConfig, parse_mix
from app.tools.simulator.generate import SimulationResult, simulate
from app.tools.simulator.variants import VARIANTS
from app.tools.terminal import print_table

__all__ = ["add_parser", "run"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``simulate`` subcommand to the ``nudgeflow`` parser's subparsers.

    Examples
    --------
    >>> parser = argparse.ArgumentParser(prog="nudgeflow")
    >>> add_parser(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["simulate", "--customers", "5", "--mix", "rage_clicker=1"])
    >>> args.command, args.customers, args.days, args.mix, args.variant, args.out
    ('simulate', 5, 7.0, {'rage_clicker': 1.0}, 'tuning', None)
    """
    default_mix = ", ".join(f"{name}={weight:g}" for name, weight in DEFAULT_MIX.items())
    parser = subparsers.add_parser(
        "simulate",
        help="write simulated shop sessions as click events (JSONL), with ground-truth labels",
        description=(
            "Simulate customers visiting a generated shop over some days and write their click "
            "events (contract v1, one JSON object a line) in the order a collector would "
            "receive them: a little late, some out of order or far too late, a few twice, "
            "half the sessions without session_end. Labels are in event time. The same "
            "options and seed always give the same bytes."
        ),
    )
    parser.add_argument("--customers", type=int, default=1000, help="customers (default 1000)")
    parser.add_argument(
        "--days", type=float, default=7.0, help="days the sessions are spread over (default 7)"
    )
    parser.add_argument(
        "--sessions-per-customer",
        type=float,
        default=3.0,
        help="mean visits per customer, 1 + Poisson (default 3)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--variant",
        choices=tuple(VARIANTS),
        default="tuning",
        help=(
            "parameter profile: think times, look-alikes, faults, story mix (default tuning). "
            "holdout is for checking a change, never for tuning one"
        ),
    )
    parser.add_argument(
        "--mix",
        type=_mix,
        default=None,
        metavar="STORY=WEIGHT,...",
        help=(
            "relative weight per story; stories left out do not occur. Weights are shares "
            "of sessions (churn_risk, bot: of customers). Default: the variant's; "
            f"tuning's is {default_mix}"
        ),
    )
    parser.add_argument(
        "--start",
        type=_iso_to_ms,
        default=DEFAULT_START_MS,
        metavar="ISO-8601",
        help="event time of the start, with offset (default 2026-01-01T00:00:00Z)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, metavar="FILE", help="events file (default stdout)"
    )
    parser.add_argument(
        "--labels", type=Path, default=None, metavar="FILE", help="write one label a session here"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``nudgeflow simulate`` with parsed arguments; returns the exit status.

    Events go to ``args.out`` (or stdout), labels to ``args.labels`` if given, and
    a summary per story to stderr.
    """
    try:
        config = SimulationConfig(
            customers=args.customers,
            days=args.days,
            sessions_per_customer=args.sessions_per_customer,
            seed=args.seed,
            variant=args.variant,
            mix=args.mix,
            start_ms=args.start,
        )
    except ConfigError as exc:
        print(f"nudgeflow simulate: {exc}", file=sys.stderr)
        return 2
    result = simulate(config)
    try:
        if args.labels is not None:
            with args.labels.open("wb") as labels:
                _write_jsonl(labels, (label.as_dict() for label in result.labels))
        if args.out is None:
            _write_jsonl(sys.stdout.buffer, result.events)
            sys.stdout.flush()
        else:
            with args.out.open("wb") as out:
                _write_jsonl(out, result.events)
    except BrokenPipeError:
        # The reader stopped early (`| head`): not an error. Point stdout at devnull so
        # the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        print(f"nudgeflow simulate: {exc}", file=sys.stderr)
        return 1
    _print_summary(result)
    return 0


def _mix(text: str) -> dict[str, float]:
    try:
        return parse_mix(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _iso_to_ms(text: str) -> int:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"needs a UTC offset or 'Z': {text!r}")
    return (when - _EPOCH) // _ONE_MS


def _write_jsonl(out: BinaryIO, rows: Iterable[dict[str, Any]]) -> None:
    out.writelines(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE) for row in rows)


def _print_summary(result: SimulationResult) -> None:
    sessions = Counter(label.story for label in result.labels)
    friction = Counter(label.story for label in result.labels if label.friction)
    events = Counter[str]()
    for label in result.labels:
        events[label.story] += label.events
    table = Table("story", "sessions", "with friction", "events", title="nudgeflow simulate")
    for story in sorted(sessions, key=lambda s: -sessions[s]):
        table.add_row(story, str(sessions[story]), str(friction[story]), str(events[story]))
    customers = len({label.customer_id for label in result.labels})
    table.add_row(
        f"all ({customers} customers)",
        str(len(result.labels)),
        str(friction.total()),
        str(events.total()),
    )
    table.caption = f"{len(result.events)} lines: {len(result.events) - events.total()} retries"
    print_table(table)
