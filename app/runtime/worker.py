"""Run one Faust worker of nudgeflow in the foreground, until it is stopped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from config import Settings

__all__ = ["run_worker"]


def run_worker(
    settings: Settings,
    *,
    logfile: Path | None = None,
    loghandlers: Sequence[logging.Handler] = (),
) -> int:
    """Declare the topics, then run a worker until SIGINT or SIGTERM; returns its exit status.

    Parameters
    ----------
    settings
        The deployment's settings, validated.
    logfile
        Where the worker's log goes (appended); ``None`` keeps it on standard output.
    loghandlers
        More handlers on the root logger, such as a short summary on the terminal.
    """
    import faust

    from app.runtime.compat import settings_for_broker
    from app.runtime.faust_app import create_app
    from app.runtime.topics import bootstrap_servers, declare_topics, topic_specs

    asyncio.run(
        declare_topics(
            settings.broker,
            topic_specs(settings.app_id, settings.topic_partitions),
            settings.topic_replication_factor,
        )
    )
    # The embedded broker needs the tansu flavour: taken (with a warning) when it is missing.
    settings = asyncio.run(settings_for_broker(settings, bootstrap_servers(settings.broker)))
    asyncio.set_event_loop(asyncio.new_event_loop())
    app = create_app(settings)
    if logfile is not None:
        logfile.parent.mkdir(parents=True, exist_ok=True)
    worker = faust.Worker(
        app,
        loglevel=settings.log_level.upper(),
        logfile=None if logfile is None else str(logfile),
        quiet=True,
        # With a log file, what the process prints is the caller's, not the log's.
        redirect_stdouts=logfile is None,
    )
    worker.loghandlers = [*worker.loghandlers, *loghandlers]
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        if isinstance(exc.code, int):
            return exc.code
        return 0 if exc.code is None else 1
    return 0  # pragma: no cover - execute_from_commandline always exits
