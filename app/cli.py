"""The ``nudgeflow`` command: run the stack (``up``, ``demo``, ``worker``) and its instruments."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from pydantic import ValidationError

from app.errors import NudgeflowError
from app.tools import eval_command, interventions, replay
from app.tools.simulator import command as simulate_command
from config import Settings

__all__ = ["main"]

_PORT_FLAGS = {"broker": "--broker-port", "redis": "--redis-port", "web server": "--web-port"}


class _HelpFormatter(argparse.HelpFormatter):
    """Adds ``(default: …)`` to each option whose help does not already say its default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            action.option_strings
            and action.default not in (None, False, argparse.SUPPRESS)
            and "default" not in text
        ):
            text += " (default: %(default)s)"
        return text


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``nudgeflow`` console script."""
    args = _parser().parse_args(argv)
    # These talk only to the endpoints they are given (or find a running `up`'s).
    if args.command == "simulate":
        sys.exit(simulate_command.run(args))
    if args.command == "eval":
        sys.exit(eval_command.run(args))
    if args.command == "replay":
        if args.to is None:
            args.to = _running_up_web_url()
        sys.exit(replay.run(args))

    settings = _settings()
    if args.command == "interventions":
        if args.redis_url:
            sys.exit(interventions.run(args.redis_url, args.count, args.follow))
        redis_url, hint = _redis_url(settings)
        sys.exit(interventions.run(redis_url, args.count, args.follow, hint=hint))
    try:
        if args.command in ("up", "demo"):
            sys.exit(_up(settings, args))
        from app.runtime.worker import run_worker

        sys.exit(run_worker(settings))
    except NudgeflowError as exc:
        sys.exit(f"nudgeflow: {exc}{_port_hint(str(exc))}")
    except KeyboardInterrupt:
        sys.exit(130)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nudgeflow",
        formatter_class=_HelpFormatter,
        description="Notice shoppers who hesitate or struggle and tell a chatbot to step in: "
        "run the stack (up, demo, worker) and its instruments.",
        epilog="Each command's options and their defaults: nudgeflow COMMAND --help. Settings "
        "are NUDGEFLOW_* environment variables (see the README).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, what in (
        ("up", "run the embedded stack (broker, Redis, one worker) in the foreground"),
        ("demo", "nudgeflow up plus a demo shop with a chat widget at /demo/"),
    ):
        command = sub.add_parser(name, help=what, description=f"{what[0].upper()}{what[1:]}.")
        command.add_argument("--web-port", type=int, default=None, metavar="N",
                             help="HTTP port of the collector (default: NUDGEFLOW_WEB_PORT, "
                             "else 6066)")  # fmt: skip
        command.add_argument("--broker-port", type=int, default=9092, metavar="N",
                             help="port of the embedded Kafka-protocol broker")  # fmt: skip
        command.add_argument("--redis-port", type=int, default=6379, metavar="N",
                             help="port of the embedded Redis")  # fmt: skip
        command.add_argument("--verbose", "-v", action="store_true",
                             help="the worker's log here, not in the data directory")  # fmt: skip
    sub.add_parser(
        "worker",
        help="run one worker against the broker and Redis the settings name",
        description="Run one worker against NUDGEFLOW_BROKER (default kafka://localhost:9092) "
        "and NUDGEFLOW_REDIS_URL (default redis://localhost:6379/0); start several for "
        "scale-out. Stops cleanly on Ctrl-C or SIGTERM.",
    )
    interventions.add_parser(sub)
    simulate_command.add_parser(sub)
    replay.add_parser(sub)
    eval_command.add_parser(sub)
    for command in sub.choices.values():
        command.formatter_class = _HelpFormatter
    return parser


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        sys.exit(f"nudgeflow: bad settings:\n{exc}")


def _up(settings: Settings, args: argparse.Namespace) -> int:
    from app.local import UpOptions, run_up

    # Until the worker takes SIGTERM over (as Ctrl-C), it stops the start-up cleanly too.
    signal.signal(signal.SIGTERM, _interrupt)
    options = UpOptions(args.web_port, args.broker_port, args.redis_port,
                        demo=args.command == "demo", verbose=args.verbose)  # fmt: skip
    return run_up(settings, options)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _running_up_web_url() -> str | None:
    from app.local import read_running

    try:
        data_dir = Settings().data_dir
    except ValidationError:
        return None
    record = read_running(Path(data_dir))
    return None if record is None else record.web_url


def _redis_url(settings: Settings) -> tuple[str, str]:
    """The running ``up``'s Redis (said on stderr), else the settings'; and a hint for when
    it cannot be read."""
    from app.local import read_running

    record = read_running(Path(settings.data_dir))
    if record is not None:
        what = "demo" if record.demo else "up"
        print(f"reading {record.redis_url} (nudgeflow {what}, pid {record.pid})", file=sys.stderr)
        return record.redis_url, ""
    hint = (
        ""
        if "redis_url" in settings.model_fields_set
        else (
            f" (no nudgeflow up runs on the data directory {settings.data_dir}; "
            "--redis-url names a Redis)"
        )
    )
    return settings.redis_url.get_secret_value(), hint


def _port_hint(message: str) -> str:
    """Which option picks another port, for a port in use.

    Examples
    --------
    >>> _port_hint("cannot start redis: port 6379 is already in use")
    ' (choose another with --redis-port)'
    >>> _port_hint("broker did not listen on port 9092 in 10.0 s")
    ''
    """
    for name, flag in _PORT_FLAGS.items():
        if message.startswith(f"cannot start {name}: ") and "already in use" in message:
            return f" (choose another with {flag})"
    return ""


if __name__ == "__main__":
    main()
