"""The worker's warnings and errors on the terminal, one short line each.

The whole log (Faust's start-up, tracebacks) goes to a file; the terminal gets what
needs a person's attention, without tracebacks, and a message that repeats (a
broker away, Redis frozen) at most once a minute.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TextIO

from app.local.screen import printable

__all__ = ["TerminalHandler"]

_LINE_MAX = 160
# Distinct messages remembered for the repeat rule; messages are log templates, so
# few, but a template-less logger must not grow this without bound.
_REMEMBERED_MAX = 1024


class TerminalHandler(logging.Handler):
    """Writes each WARNING or worse as one line to ``stream``; repeats within ``repeat_s`` are
    dropped.

    Examples
    --------
    >>> import io
    >>> out, now = io.StringIO(), [0.0]
    >>> handler = TerminalHandler(out, "worker.log", repeat_s=60, clock=lambda: now[0])
    >>> log = logging.getLogger("example")
    >>> log.addHandler(handler); log.propagate = False
    >>> log.info("chatter")
    >>> log.warning("Redis unavailable: %s", "timeout")
    >>> log.warning("Redis unavailable: %s", "refused")  # the same message, too soon
    >>> now[0] = 61.0
    >>> try:
    ...     raise OSError("boom\\nsecond line")
    ... except OSError:
    ...     log.exception("Agent crashed")
    >>> print(out.getvalue(), end="")
    nudgeflow: warning: Redis unavailable: timeout
    nudgeflow: error: Agent crashed (traceback in worker.log)
    >>> log.removeHandler(handler)
    """

    def __init__(
        self,
        stream: TextIO,
        log_path: str,
        *,
        repeat_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(level=logging.WARNING)
        self._stream = stream
        self._log_path = log_path
        self._repeat_s = repeat_s
        self._clock = clock
        self._last_s: dict[tuple[str, str], float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            key = (record.name, str(record.msg))
            now_s = self._clock()
            last_s = self._last_s.get(key)
            if last_s is not None and now_s - last_s < self._repeat_s:
                return
            if len(self._last_s) >= _REMEMBERED_MAX:
                self._last_s.clear()
            self._last_s[key] = now_s
            lines = record.getMessage().strip().splitlines()
            message = printable(lines[0] if lines else "", _LINE_MAX)
            if record.exc_info:
                message += f" (traceback in {self._log_path})"
            elif len(lines) > 1:
                message += f" (more in {self._log_path})"
            self._stream.write(f"nudgeflow: {record.levelname.lower()}: {message}\n")
            self._stream.flush()
        except Exception:
            self.handleError(record)
