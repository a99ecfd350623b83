"""Where a running ``nudgeflow up`` listens: a small JSON file in its data directory.

``up`` writes it once its servers run and removes it when it stops; a file left by
an ``up`` that was killed names a process that no longer exists, and is ignored.
Commands that read what ``up`` runs (``interventions``, ``replay``) look here.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

__all__ = ["RECORD_NAME", "UpRecord", "read_running", "remove_record", "write_record"]

RECORD_NAME = "up.json"


@dataclass(slots=True, frozen=True)
class UpRecord:
    """The URLs of a running ``nudgeflow up`` (or ``demo``), and the process that runs it."""

    pid: int
    web_url: str
    broker_url: str
    redis_url: str
    log_path: str
    demo: bool = False

    @property
    def collector_url(self) -> str:
        """Where click events go."""
        return f"{self.web_url}/v1/events"


def write_record(data_dir: Path, record: UpRecord) -> Path:
    """Write ``record`` into ``data_dir`` at once (a reader never sees half a file).

    Examples
    --------
    >>> import tempfile
    >>> where = Path(tempfile.mkdtemp())
    >>> record = UpRecord(os.getpid(), "http://127.0.0.1:6066", "kafka://127.0.0.1:9092",
    ...                   "redis://127.0.0.1:6379/0", "worker.log")
    >>> write_record(where, record).name
    'up.json'
    >>> read_running(where) == record
    True
    >>> remove_record(where, os.getpid()); read_running(where) is None
    True
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / RECORD_NAME
    partial = path.with_name(f".{RECORD_NAME}.{os.getpid()}")
    partial.write_bytes(orjson.dumps(asdict(record), option=orjson.OPT_INDENT_2))
    partial.replace(path)
    return path


def read_running(data_dir: Path) -> UpRecord | None:
    """The record of the ``up`` running on ``data_dir``; ``None`` if none runs, or unreadable."""
    try:
        fields = orjson.loads((data_dir / RECORD_NAME).read_bytes())
        record = UpRecord(**fields)
    except (OSError, orjson.JSONDecodeError, TypeError):
        return None
    if not isinstance(record.pid, int) or record.pid <= 0 or not _alive(record.pid):
        return None
    return record


def remove_record(data_dir: Path, pid: int) -> None:
    """Remove the record if process ``pid`` wrote it (another ``up`` may have written since)."""
    path = data_dir / RECORD_NAME
    try:
        fields = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return
    if isinstance(fields, dict) and fields.get("pid") == pid:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True
