"""The record of a running ``nudgeflow up`` that the other commands read."""

from __future__ import annotations

import os
import subprocess
import sys

from app.local.record import RECORD_NAME, UpRecord, read_running, remove_record, write_record


def record(pid: int | None = None, **fields: object) -> UpRecord:
    values = {"web_url": "http://127.0.0.1:7000", "broker_url": "kafka://127.0.0.1:7001",
              "redis_url": "redis://127.0.0.1:7002/0", "log_path": "d/worker.log"}  # fmt: skip
    values.update(fields)
    return UpRecord(os.getpid() if pid is None else pid, **values)  # type: ignore[arg-type]


def _finished_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_round_trip(tmp_path):
    written = record(demo=True)
    write_record(tmp_path / "new", written)  # creates the directory
    assert read_running(tmp_path / "new") == written
    assert written.collector_url == "http://127.0.0.1:7000/v1/events"


def test_a_record_of_a_process_that_is_gone_is_ignored(tmp_path):
    write_record(tmp_path, record(pid=_finished_pid()))
    assert read_running(tmp_path) is None


def test_no_record_or_a_broken_one_reads_as_none(tmp_path):
    assert read_running(tmp_path) is None
    (tmp_path / RECORD_NAME).write_text("{not json")
    assert read_running(tmp_path) is None
    (tmp_path / RECORD_NAME).write_text('{"pid": 1}')  # fields missing
    assert read_running(tmp_path) is None
    (tmp_path / RECORD_NAME).write_text('{"pid": 0, "web_url": "", "broker_url": "", '
                                        '"redis_url": "", "log_path": ""}')  # fmt: skip
    assert read_running(tmp_path) is None


def test_remove_leaves_another_processes_record(tmp_path):
    write_record(tmp_path, record())
    remove_record(tmp_path, os.getpid() + 1)
    assert read_running(tmp_path) is not None
    remove_record(tmp_path, os.getpid())
    assert not (tmp_path / RECORD_NAME).exists()
    remove_record(tmp_path, os.getpid())  # already gone: fine


def test_written_whole_with_no_partial_file_left(tmp_path):
    write_record(tmp_path, record())
    assert [p.name for p in tmp_path.iterdir()] == [RECORD_NAME]
