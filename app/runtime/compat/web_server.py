"""Hardening of Faust's aiohttp server, which exposes none of aiohttp's server options.

- Slow headers: aiohttp closes a connection whose next request head is not complete within
  its keep-alive timeout, counted from the connection's opening or its previous answer
  (trickling bytes does not extend it); its default (3 630 s) lets a client that sends a
  header byte now and then hold a connection for an hour. Request bodies have no timeout in
  aiohttp at all: the views read them under ``NUDGEFLOW_HTTP_BODY_TIMEOUT_S``
  (``app.runtime.web``). After an answer given before the body was read (a 401, a 408 ...),
  aiohttp goes on reading the body for its "lingering time" (default 10 s), so the client
  can read the answer: 2 s here, so a trickling client is not kept that long.
- Client addresses: aiohttp logs "Error handling request from <address>" for a malformed
  request or a failed handler; nudgeflow keeps no client address, so the address is taken
  out of that message.
"""

from __future__ import annotations

import logging

from aiohttp.web import AppRunner
from faust.types.web import Web
from faust.web.drivers.aiohttp import Web as AiohttpWeb

__all__ = ["harden_server"]

_AIOHTTP_SERVER_LOGGER = "aiohttp.server"
_LINGERING_TIME_S = 2.0
_WITH_ADDRESS = "Error handling request from %s"


class _WithoutClientAddress(logging.Filter):
    """Drops the client address from aiohttp's request-error messages."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == _WITH_ADDRESS:
            record.msg, record.args = "Error handling request", ()
        return True


_FILTER = _WithoutClientAddress()


def harden_server(web: Web, idle_timeout_s: float) -> None:
    """Close connections that do not send a whole request head within ``idle_timeout_s``
    (of opening, or of the previous answer), and log no client address. Call before the
    server starts."""
    if not isinstance(web, AiohttpWeb):
        raise TypeError(f"the aiohttp web driver is needed, got {type(web).__name__}")
    # Faust builds its runner with access_log=None and no other option; the same runner,
    # with the timeout. The runner is only used once the server starts.
    web._runner = AppRunner(web.web_app, access_log=None, keepalive_timeout=idle_timeout_s,
                            lingering_time=_LINGERING_TIME_S)  # fmt: skip
    logger = logging.getLogger(_AIOHTTP_SERVER_LOGGER)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
