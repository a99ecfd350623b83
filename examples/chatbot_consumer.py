"""An example chatbot service: it takes nudgeflow's interventions from the Redis stream and
reports back that each was delivered.

- Reads ``nudgeflow:interventions`` (contract §2) with a **consumer group**, so several
  copies of the service share the work and each entry goes to one of them
  (``XGROUP CREATE … MKSTREAM``, ``XREADGROUP``). An entry is acknowledged (``XACK``)
  only once it is handled.
- After a crash, entries a consumer read but never acknowledged stay *pending*; any
  consumer of the group takes over those idle longer than ``--claim-idle-s``
  (``XAUTOCLAIM``), and a restarted consumer first finishes its own.
- Redis copies of an intervention can repeat (after a worker crash), so it **dedupes on
  ``intervention_id``**: ``SET <group>:seen:<id> handling:<consumer> NX PX …`` claims the
  id before handling, for half the claim idle time (so an entry taken over after a crash
  finds the claim expired: give every consumer of a group the same ``--claim-idle-s``);
  once handled the key says ``done`` for a day (``EX``). A copy whose id is claimed or
  done is acknowledged and skipped; a failed handling gives the id back and leaves the
  entry pending.
- **Handles** an intervention with a pluggable ``handler`` (here: print it), then posts
  feedback, ``POST /v1/feedback`` with outcome ``delivered`` (contract §3).

Run it beside ``make run``::

    python examples/chatbot_consumer.py --redis-url redis://localhost:6379/0 \\
        --group chatbot --consumer bot-1 --nudgeflow-url http://localhost:6066
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

STREAM = "nudgeflow:interventions"
#: A copy of an intervention seen within this long is a duplicate.
SEEN_TTL_S = 86_400
BATCH = 10
BLOCK_MS = 2_000

log = logging.getLogger("chatbot_consumer")

Intervention = dict[str, Any]
Handler = Callable[[Intervention], Awaitable[None]]


async def print_intervention(intervention: Intervention) -> None:
    """The example's handler: a real service would open a chat with the customer here."""
    print(f"[{intervention['kind']}] {intervention['customer_id']}: "
          f"{intervention['explanation']} ({intervention['reason']}, "
          f"id {intervention['intervention_id']})", flush=True)  # fmt: skip


class ChatbotConsumer:
    """One consumer of a consumer group on the interventions stream."""

    def __init__(
        self,
        redis: aioredis.Redis,
        http: aiohttp.ClientSession,
        *,
        group: str,
        consumer: str,
        nudgeflow_url: str,
        handler: Handler = print_intervention,
        claim_idle_s: float = 60.0,
        api_key: str | None = None,
    ) -> None:
        self.redis = redis
        self.http = http
        self.group = group
        self.consumer = consumer
        self.feedback_url = f"{nudgeflow_url.rstrip('/')}/v1/feedback"
        self.handler = handler
        self.claim_idle_ms = int(claim_idle_s * 1000)
        # The claim on an id while it is handled: shorter than the claim idle time, so an
        # entry taken over after a crash finds it expired.
        self.lease_ms = max(1, self.claim_idle_ms // 2)
        self.headers = {"X-Api-Key": api_key} if api_key else {}
        self._claim_cursor = "0-0"

    async def create_group(self) -> None:
        """Create the group (and the stream) unless they exist; new groups start at the end."""
        try:
            await self.redis.xgroup_create(STREAM, self.group, id="$", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self, stop: asyncio.Event) -> None:
        """Handle entries until ``stop`` is set."""
        await self.create_group()
        await self.finish_own_pending()
        while not stop.is_set():
            await self.step()

    async def finish_own_pending(self) -> None:
        """After a restart: the entries this consumer read before and never acknowledged."""
        after = "0"
        while True:
            reply: Any = await self.redis.xreadgroup(
                self.group, self.consumer, {STREAM: after}, count=BATCH
            )
            [[_stream, entries]] = reply
            if not entries:
                return
            for entry_id, fields in entries:
                await self.handle(entry_id, fields)
            after = entries[-1][0]

    async def step(self) -> None:
        """One round: take over entries idle too long at other consumers, read new ones
        (waiting up to ``BLOCK_MS`` when there are none), handle them."""
        claim: Any = await self.redis.xautoclaim(
            STREAM, self.group, self.consumer, min_idle_time=self.claim_idle_ms,
            start_id=self._claim_cursor, count=BATCH,
        )  # fmt: skip
        self._claim_cursor, claimed = claim[0], claim[1]
        entries = [(i, f) for i, f in claimed if i is not None]  # None: trimmed away
        reply: Any = await self.redis.xreadgroup(
            self.group, self.consumer, {STREAM: ">"}, count=BATCH,
            block=None if entries else BLOCK_MS,
        )  # fmt: skip
        for _stream, read in reply or []:
            entries += read
        for entry_id, fields in entries:
            await self.handle(entry_id, fields)

    async def handle(self, entry_id: bytes, fields: dict[bytes, bytes] | None) -> None:
        """Handle one entry once per intervention, post its feedback, acknowledge it."""
        try:
            intervention = orjson.loads((fields or {})[b"data"])
            seen_key = f"{self.group}:seen:{intervention['intervention_id']}"
        except (KeyError, TypeError, orjson.JSONDecodeError):
            log.warning("entry %s is not an intervention: acknowledged, skipped", entry_id)
            await self.redis.xack(STREAM, self.group, entry_id)
            return
        if not await self.claim(seen_key):
            log.info("intervention %s seen before: skipped", intervention["intervention_id"])
            await self.redis.xack(STREAM, self.group, entry_id)
            return
        try:
            await self.handler(intervention)
        except Exception:
            # Left pending: taken over (by any consumer) once idle for the claim time.
            log.exception("intervention %s not handled", intervention["intervention_id"])
            await self.redis.delete(seen_key)
            return
        await self.redis.set(seen_key, "done", ex=SEEN_TTL_S)
        await self.post_feedback(intervention)
        await self.redis.xack(STREAM, self.group, entry_id)

    async def claim(self, seen_key: str) -> bool:
        """Whether this consumer may handle the intervention: no copy was handled, none is
        being handled elsewhere. A claim of its own (from before a restart) is still its."""
        mine = f"handling:{self.consumer}"
        while True:
            if await self.redis.set(seen_key, mine, nx=True, px=self.lease_ms):
                return True
            holder = await self.redis.get(seen_key)
            if holder is not None:  # else it expired just now: try again
                return bool(holder == mine.encode())

    async def post_feedback(self, intervention: Intervention) -> None:
        """Tell nudgeflow the intervention was delivered (contract §3); a failure is logged."""
        body = {"intervention_id": intervention["intervention_id"],
                "customer_id": intervention["customer_id"], "outcome": "delivered",
                "ts": int(time.time() * 1000)}  # fmt: skip
        try:
            async with self.http.post(self.feedback_url, json=body, headers=self.headers) as r:
                if r.status != 202:
                    log.warning("feedback on %s refused: %s %s", body["intervention_id"],
                                r.status, await r.text())  # fmt: skip
        except aiohttp.ClientError as exc:
            log.warning("feedback on %s not sent: %r", body["intervention_id"], exc)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--redis-url", default="redis://localhost:6379/0")
    parser.add_argument("--group", default="chatbot", help="consumer group (one per service)")
    parser.add_argument("--consumer", default=f"{socket.gethostname()}-{os.getpid()}",
                        help="this consumer's name, stable across restarts")  # fmt: skip
    parser.add_argument("--nudgeflow-url", default="http://localhost:6066")
    parser.add_argument("--api-key", help="X-Api-Key for the feedback, where keys are required")
    parser.add_argument("--claim-idle-s", type=float, default=60.0,
                        help="take over others' entries pending longer than this")  # fmt: skip
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    redis = aioredis.from_url(args.redis_url)
    async with aiohttp.ClientSession() as http:
        consumer = ChatbotConsumer(
            redis, http, group=args.group, consumer=args.consumer,
            nudgeflow_url=args.nudgeflow_url, claim_idle_s=args.claim_idle_s,
            api_key=args.api_key,
        )  # fmt: skip
        log.info("consumer %s of group %s on %s", args.consumer, args.group, STREAM)
        try:
            await consumer.run(stop)
        finally:
            await redis.aclose()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(main())
