"""``nudgeflow eval``: its options, where it writes, its timeline and its watermark ticks.

The run itself needs a broker and a worker: ``tests/integration/test_eval_command.py``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner

from app.ingest.events import validate_event
from app.tools import eval_command
from app.tools.abandonment_comparison import markdown_section
from app.tools.eval_command import (
    QUALITY_REPORT,
    _first_start_ms,
    _next_start_ms,
    _Part,
    _report,
    _report_path,
    _section,
    _ticks,
    add_parser,
    run,
)
from app.tools.evaluation import evaluate
from app.tools.simulator import SimulationConfig, simulate

DAY_MS = 86_400_000
NOW_MS = 1_796_000_000_000  # 2026-12-01 and a bit


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nudgeflow")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["eval", *argv])


def test_defaults() -> None:
    args = parse()
    assert (args.seeds, args.holdout_seed, args.customers, args.days) == ("1,2,3", 1000, 300, 3.0)
    assert (args.broker, args.web, args.write, args.out) == (None, None, False, None)


@pytest.mark.parametrize(
    ("argv", "written"),
    [
        ([], None),  # a trial run only prints
        (["--customers", "40", "--days", "1"], None),
        (["--write"], QUALITY_REPORT),
        (["--out", "elsewhere/q.md"], Path("elsewhere/q.md")),
    ],
)
def test_only_write_touches_the_committed_report(argv: list[str], written: Path | None) -> None:
    assert _report_path(parse(*argv)) == written
    assert Path("benchmarks/QUALITY.md") == QUALITY_REPORT


def test_write_and_out_do_not_go_together(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--write", "--out", "q.md")
    assert "not allowed with argument" in capsys.readouterr().err


def test_broker_needs_web() -> None:
    with pytest.raises(SystemExit, match="give --broker and --web together"):
        run(parse("--broker", "kafka://localhost:9092"))


def test_the_makefile_writes_the_committed_report() -> None:
    makefile = (Path(__file__).parents[4] / "Makefile").read_text()
    (line,) = [line for line in makefile.splitlines() if "nudgeflow eval" in line]
    assert "--write" in line


@pytest.mark.parametrize(("seeds", "days"), [(4, 3.0), (2, 1.0), (1, 0.5), (3, 7.0)])
def test_event_time_runs_forward_across_the_run_and_ends_before_now(
    seeds: int, days: float
) -> None:
    start_ms = _first_start_ms(NOW_MS, seeds, days)
    assert start_ms % DAY_MS == 0
    last_end_ms = 0
    for seed in range(seeds):
        result = simulate(SimulationConfig(customers=30, days=days, seed=seed, start_ms=start_ms))
        first_ms = min(e["ts"] for e in result.events)
        end_ms = max(label.ended_ts for label in result.labels)
        assert first_ms > last_end_ms + DAY_MS // 2  # after the previous seed and its ticks
        last_end_ms = end_ms
        start_ms = _next_start_ms(end_ms)
        assert start_ms >= end_ms + DAY_MS and start_ms % DAY_MS == 0
    assert last_end_ms + DAY_MS // 2 < NOW_MS


@pytest.mark.parametrize("partitions", [[0], [0, 1, 2, 3], list(range(12))])
def test_one_tick_lands_on_each_partition(partitions: list[int]) -> None:
    ticks = _ticks("ev1234-", 7, 1_790_000_000_000, partitions)
    partitioner = DefaultPartitioner()
    landed = [partitioner(t["customer_id"].encode(), partitions, partitions) for t in ticks]
    assert sorted(landed) == partitions
    for tick in ticks:
        validate_event(tick)
        assert tick["ts"] == 1_790_000_000_000
        assert tick["customer_id"].startswith("ev1234-") and tick["event_id"].startswith("ev1234-")
    assert len({t["event_id"] for t in ticks}) == len(ticks)


def test_the_report_states_the_targets_and_both_variants() -> None:
    result = simulate(SimulationConfig(customers=10, days=1, seed=1))
    labels = [label.as_dict() for label in result.labels]
    part = _Part("Held-out: seed 1, variant holdout", "holdout", (1,))
    section = _section(part, evaluate(labels, []), labels, [])
    report = _report(parse("--customers", "10"), (part,), [section])
    assert "## Held-out: seed 1, variant holdout" in report
    assert "Targets: caught ≥ 90 %: 0.0 % FAIL; assist on clean ≤ 3 %: 0.0 % PASS" in report
    assert "| parameter | tuning | holdout |" in report
    assert "| look-alike filter_toggle | 0% | 15% |" in report


def test_the_report_and_the_printout_carry_the_abandonment_comparison(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The worker's part stands in (it is ``tests/integration/test_eval_end_to_end.py``'s);
    the comparison runs for real on the run's seeds and sizes."""

    @contextmanager
    def no_deployment(*_args: object, **_kwargs: object) -> Iterator[None]:
        yield None

    async def no_interventions(
        _deployment: object, parts: tuple[_Part, ...], *_args: object
    ) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]], None]:
        return {part.title: [] for part in parts}, [], None

    monkeypatch.setattr(eval_command, "_deployment", no_deployment)
    monkeypatch.setattr(eval_command, "_replay_and_read", no_interventions)
    out = tmp_path / "QUALITY.md"
    argv = ("--seeds", "7", "--holdout-seed", "8", "--customers", "40", "--days", "1")

    assert run(parse(*argv, "--out", str(out))) == 0

    expected = markdown_section(customers=40, days=1.0, tuning_seeds=(7,), holdout_seed=8)
    assert "| holdout | every | model |" in expected
    report = out.read_text()
    assert expected in report
    assert report.index("## Held-out: seed 8") < report.index(expected)
    assert report.index(expected) < report.index("## The two variants")
    assert "On held-out the model" in capsys.readouterr().err
