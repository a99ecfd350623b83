"""Watch a running worker from a thread: say when it is ready, and print each intervention.

Readiness is the worker's own ``/readyz``; interventions are read from the Redis
stream a chatbot reads (``nudgeflow:interventions``), from where it ended when the
watch began, so none is missed between two reads.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import urllib.error
import urllib.request
from typing import TextIO, cast

import orjson
import redis
from redis.exceptions import RedisError

from app.local.screen import intervention_line, printable, ready_line
from app.runtime.topics import REDIS_INTERVENTIONS_STREAM

__all__ = ["Watcher"]

_POLL_S = 0.1
# Past this, say once that the worker is still not ready, and where to look.
_SLOW_START_S = 60.0
_BLOCK_MS = 500
_RETRY_S = 1.0

_StreamReply = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]


class Watcher:
    """A daemon thread: the ready line once ``/readyz`` answers 200, then one line per
    intervention on the Redis stream, until ``stop()``."""

    def __init__(
        self,
        web_url: str,
        redis_url: str,
        out: TextIO,
        err: TextIO,
        *,
        demo: bool,
        log_path: str | None,
        started_s: float,
    ) -> None:
        self._web_url = web_url
        self._out = out
        self._err = err
        self._demo = demo
        self._log_path = log_path
        self._started_s = started_s
        self._stopping = threading.Event()
        self._redis = redis.Redis.from_url(redis_url, socket_timeout=5.0)
        # Read now, before the worker starts: everything after it is printed.
        self._last_id = self._stream_end()
        self._thread = threading.Thread(target=self._run, name="nudgeflow-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (within about half a second) and close the Redis client."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        self._redis.close()

    def _run(self) -> None:
        if self._wait_ready():
            self._follow()

    def _wait_ready(self) -> bool:
        warned = False
        while not self._stopping.is_set():
            if self._ready():
                elapsed_s = time.monotonic() - self._started_s
                self._say(self._out, ready_line(elapsed_s, self._web_url, self._demo))
                return True
            if not warned and time.monotonic() - self._started_s > _SLOW_START_S:
                where = f"; see {self._log_path}" if self._log_path else ""
                self._say(self._err, f"nudgeflow: not ready after {_SLOW_START_S:.0f} s{where}")
                warned = True
            self._stopping.wait(_POLL_S)
        return False

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self._web_url}/readyz", timeout=1.0) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def _follow(self) -> None:
        away = False
        while not self._stopping.is_set():
            try:
                replies = cast(
                    "_StreamReply",
                    self._redis.xread(
                        {REDIS_INTERVENTIONS_STREAM: self._last_id}, block=_BLOCK_MS, count=100
                    ),
                )
            except (RedisError, OSError) as exc:
                if self._stopping.is_set():
                    return
                if not away:
                    self._say(self._err, f"nudgeflow: warning: cannot read interventions from "
                              f"Redis ({printable(exc, 120)}); retrying")  # fmt: skip
                    away = True
                self._stopping.wait(_RETRY_S)
                continue
            if away:
                self._say(self._err, "nudgeflow: Redis is back; interventions show below")
                away = False
            for _, entries in replies:
                for entry_id, fields in entries:
                    self._last_id = entry_id
                    self._say(self._out, _line(fields))

    def _stream_end(self) -> bytes:
        try:
            newest = cast(
                "list[tuple[bytes, dict[bytes, bytes]]]",
                self._redis.xrevrange(REDIS_INTERVENTIONS_STREAM, count=1),
            )
        except (RedisError, OSError):
            return b"0-0"
        return newest[0][0] if newest else b"0-0"

    @staticmethod
    def _say(stream: TextIO, line: str) -> None:
        stream.write(line + "\n")
        stream.flush()


def _line(fields: dict[bytes, bytes]) -> str:
    try:
        intervention = orjson.loads(fields.get(b"data", b""))
    except orjson.JSONDecodeError:
        return "(an intervention on the Redis stream that is not JSON)"
    if not isinstance(intervention, dict):
        return "(an intervention on the Redis stream that is not a JSON object)"
    return intervention_line(intervention, dt.datetime.now().astimezone().tzinfo)
