"""``nudgeflow interventions``: print interventions from the Redis stream, as JSON lines.

What a chatbot would receive (contract §2): the newest ``--count`` entries of
``nudgeflow:interventions``, oldest first, then with ``--follow`` each new one.
The command line (``app.cli``) says which Redis: ``--redis-url``, else the one a
running ``nudgeflow up`` records, else the settings'.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import TextIO, cast
from urllib.parse import urlsplit, urlunsplit

from redis.exceptions import RedisError

from app.runtime.topics import REDIS_INTERVENTIONS_STREAM

__all__ = ["add_parser", "redacted", "run"]

_BLOCK_MS = 1000


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``interventions`` command to the ``nudgeflow`` command line."""
    parser = subparsers.add_parser(
        "interventions",
        help="print interventions from the Redis stream (JSON lines)",
        description="Print the newest interventions of the Redis stream "
        f"{REDIS_INTERVENTIONS_STREAM}, oldest first, one JSON object a line; with --follow, "
        "keep printing new ones. Reads the Redis of --redis-url, else of the nudgeflow up "
        "running on this data directory, else NUDGEFLOW_REDIS_URL.",
    )
    parser.add_argument("--follow", "-f", action="store_true", help="keep waiting for new ones")
    parser.add_argument(
        "--count", type=_count, default=20, metavar="N", help="how many recent ones to print"
    )
    parser.add_argument(
        "--redis-url",
        metavar="URL",
        help="redis://host:port/db to read (default: the running nudgeflow up's, else the "
        "settings')",
    )


def run(
    redis_url: str, count: int, follow: bool, *, hint: str = "", out: TextIO = sys.stdout
) -> int:
    """Print the interventions; 1 with one line on stderr (ending in ``hint``) when Redis
    cannot be read."""
    try:
        asyncio.run(_print(redis_url, count, follow, out))
    except (RedisError, OSError) as exc:
        if isinstance(exc, BrokenPipeError):
            # The reader stopped early (`| head`): point stdout at devnull for the final flush.
            os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
            return 0
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"nudgeflow interventions: cannot read Redis at {redacted(redis_url)}: "
              f"{reason}{hint}", file=sys.stderr)  # fmt: skip
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number, 0 or more, got {text!r}")
    return value


def redacted(url: str) -> str:
    """``url`` without its password, fit to print.

    Examples
    --------
    >>> redacted("redis://:s3cret@cache:6379/0"), redacted("redis://u:pw@h/1")
    ('redis://:***@cache:6379/0', 'redis://u:***@h/1')
    >>> redacted("redis://127.0.0.1:6379/0")
    'redis://127.0.0.1:6379/0'
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


async def _print(redis_url: str, count: int, follow: bool, out: TextIO) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url, socket_connect_timeout=5.0)
    try:
        # redis types stream replies loosely; without decode_responses they hold bytes.
        entries = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]",
            await client.xrevrange(REDIS_INTERVENTIONS_STREAM, count=count),
        )
        # An empty stream: every later entry comes after 0-0 ("$" would miss those added
        # between two reads).
        last_id = entries[0][0] if entries else b"0-0"
        for _, fields in reversed(entries):
            _write(out, fields)
        while follow:
            replies = cast(
                "list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]",
                await client.xread({REDIS_INTERVENTIONS_STREAM: last_id}, block=_BLOCK_MS),
            )
            for _, stream_entries in replies:
                for entry_id, fields in stream_entries:
                    last_id = entry_id
                    _write(out, fields)
    finally:
        await client.aclose()


def _write(out: TextIO, fields: dict[bytes, bytes]) -> None:
    out.write(fields.get(b"data", b"").decode(errors="replace") + "\n")
    out.flush()
