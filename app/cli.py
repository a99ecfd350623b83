"""The ``nudgeflow`` command: ``up`` (embedded stack), ``worker``, ``interventions``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from pydantic import ValidationError

from app.errors import NudgeflowError
from app.tools import eval_command, replay
from app.tools.simulator import command as simulate_command
from config import Settings

__all__ = ["main"]

# Tansu holds every JoinGroup for half the session timeout (it never answers early),
# so the session timeout sets how long a worker takes to join: 6 s joins in ~3 s and
# still tolerates a 6 s stall of the event loop. See the README.
_EMBEDDED_SESSION_TIMEOUT_S = 6.0
_EMBEDDED_HEARTBEAT_S = 1.0


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``nudgeflow`` console script."""
    parser = argparse.ArgumentParser(prog="nudgeflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser(
        "up", help="run the embedded stack (broker, Redis, worker) in the foreground"
    )
    up.add_argument("--web-port", type=int, default=None, help="HTTP port (default 6066)")
    up.add_argument("--broker-port", type=int, default=9092, help="Kafka-protocol port")
    up.add_argument("--redis-port", type=int, default=6379, help="Redis port")
    sub.add_parser("worker", help="run one worker against the configured broker and Redis")
    simulate_command.add_parser(sub)
    replay.add_parser(sub)
    eval_command.add_parser(sub)
    tail = sub.add_parser("interventions", help="print interventions from the Redis stream")
    tail.add_argument("--follow", "-f", action="store_true", help="keep waiting for new ones")
    tail.add_argument("--count", type=int, default=20, help="how many recent ones to print")
    args = parser.parse_args(argv)
    # These talk only to the endpoints they are given: no deployment settings.
    if args.command == "simulate":
        sys.exit(simulate_command.run(args))
    if args.command == "replay":
        sys.exit(replay.run(args))
    if args.command == "eval":
        sys.exit(eval_command.run(args))

    try:
        settings = Settings()
    except ValidationError as exc:
        sys.exit(f"nudgeflow: bad settings:\n{exc}")
    try:
        if args.command == "up":
            _up(settings, args.web_port, args.broker_port, args.redis_port)
        elif args.command == "worker":
            _run_worker(settings)
        else:
            asyncio.run(_print_interventions(settings, args.count, args.follow))
    except NudgeflowError as exc:
        sys.exit(f"nudgeflow: {exc}")


def _up(settings: Settings, web_port: int | None, broker_port: int, redis_port: int) -> None:
    from app.runtime.embedded import EmbeddedStack

    stack = EmbeddedStack.start(broker_port, redis_port, Path(settings.data_dir) / "embedded")
    try:
        # Embedded defaults apply unless the environment chose otherwise.
        embedded_defaults = {
            "broker_flavour": "tansu",
            "broker_session_timeout_s": _EMBEDDED_SESSION_TIMEOUT_S,
            "broker_heartbeat_interval_s": _EMBEDDED_HEARTBEAT_S,
        }
        chosen = settings.model_dump(include=settings.model_fields_set)
        settings = Settings.model_validate(
            {
                **{k: v for k, v in embedded_defaults.items() if k not in chosen},
                **chosen,
                "broker": stack.broker_url,
                "redis_url": stack.redis_url,
                "web_host": "127.0.0.1",
                "web_port": web_port if web_port is not None else settings.web_port,
            }
        )
        print(
            f"nudgeflow up\n"
            f"  collector  http://127.0.0.1:{settings.web_port}/v1/events\n"
            f"  broker     {stack.broker_url}\n"
            f"  redis      {stack.redis_url}\n"
            f"  stop with Ctrl-C",
            flush=True,
        )
        _run_worker(settings)
    finally:
        stack.stop()


def _run_worker(settings: Settings) -> None:
    import faust

    from app.runtime.faust_app import create_app
    from app.runtime.topics import declare_topics, topic_specs

    asyncio.run(
        declare_topics(
            settings.broker,
            topic_specs(settings.app_id, settings.topic_partitions),
            settings.topic_replication_factor,
        )
    )
    asyncio.set_event_loop(asyncio.new_event_loop())
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level.upper(), quiet=True)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise


async def _print_interventions(settings: Settings, count: int, follow: bool) -> None:
    import redis.asyncio as aioredis

    from app.runtime.topics import REDIS_INTERVENTIONS_STREAM

    client = aioredis.from_url(settings.redis_url.get_secret_value())
    try:
        # redis types stream replies loosely; without decode_responses they hold bytes.
        entries = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]",
            await client.xrevrange(REDIS_INTERVENTIONS_STREAM, count=count),
        )
        last_id = entries[0][0] if entries else b"$"
        for _, fields in reversed(entries):
            print(fields[b"data"].decode(), flush=True)
        while follow:
            replies = cast(
                "list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]",
                await client.xread({REDIS_INTERVENTIONS_STREAM: last_id}, block=1000),
            )
            for _, stream_entries in replies:
                for entry_id, fields in stream_entries:
                    last_id = entry_id
                    print(fields[b"data"].decode(), flush=True)
    finally:
        await client.aclose()


if __name__ == "__main__":
    main()
