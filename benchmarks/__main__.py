"""``python -m benchmarks [--only name,...] [--scale 0.01..1] [--out benchmarks/RESULTS.md]``.

``python -m benchmarks soak [--minutes 20] [--out …]`` runs the soak alone and replaces
only its rows and section of the report.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from benchmarks import BENCHMARKS, bench_scaleout, bench_soak, write_report
from benchmarks._report import Outcome, Row, replace_section


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen benchmarks, print the summary, write the report; 1 if any failed."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["soak"]:
        return _soak(argv)
    args = _parse(argv)
    outcomes = {name: _run(name, i, len(args.only), args.scale)
                for i, name in enumerate(args.only, 1)}  # fmt: skip
    throughput, scaleout = outcomes.get("throughput"), outcomes.get("scaleout")
    if throughput and throughput.result and scaleout and scaleout.result:
        bench_scaleout.compare(scaleout.result, throughput.result)
    command = shlex.join([_python(), "-m", "benchmarks", *argv])
    rows = write_report(outcomes, BENCHMARKS, args.out, command)
    _print(rows)
    print(f"wrote {args.out}", flush=True)
    return 1 if any(o.error for o in outcomes.values()) else 0


def _soak(argv: Sequence[str]) -> int:
    """The soak alone, for ``--minutes``; its rows and section replace those in ``--out``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks soak",
                                     description=bench_soak.__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("--minutes", type=_minutes, default=bench_soak.FULL_MINUTES,
                        help="how long to soak (default %(default)g)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "RESULTS.md",
                        help="the report to update (default benchmarks/RESULTS.md)")  # fmt: skip
    args = parser.parse_args(argv[1:])
    print(f"soak for {args.minutes:g} minutes ...", flush=True)
    outcome = _run(
        "soak", 1, 1, 1.0, lambda _, workdir: bench_soak.run_minutes(args.minutes, workdir)
    )
    command = shlex.join([_python(), "-m", "benchmarks", *argv])
    rows = replace_section("soak", outcome, BENCHMARKS["soak"], args.out, command)
    _print(rows)
    print(f"updated {args.out}", flush=True)
    return 1 if outcome.error else 0


def _run(
    name: str,
    number: int,
    count: int,
    scale: float,
    run: Callable[[float, Path], dict[str, Any]] | None = None,
) -> Outcome:
    print(f"[{number}/{count}] {name} (scale {scale:g}) ...", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"nudgeflow-bench-{name}-"))
    load = os.getloadavg()
    started = time.monotonic()
    result, error = None, None
    try:
        result = (run or BENCHMARKS[name].run)(scale, workdir)
    except Exception as exc:  # one broken benchmark must not hide the others' figures
        traceback.print_exc()
        error = f"{type(exc).__name__}: {exc}"
        print(f"    failed; logs kept in {workdir}", file=sys.stderr, flush=True)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.monotonic() - started
    print(f"    {seconds:.0f} s", flush=True)
    return Outcome(result, error, load, seconds)


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--only", type=_names, default=list(BENCHMARKS),
        help=f"comma-separated benchmarks to run (default: all of {','.join(BENCHMARKS)})",
    )  # fmt: skip
    parser.add_argument(
        "--scale", type=_scale, default=1.0,
        help="fraction of the full size and duration, 0 < scale <= 1 (default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "RESULTS.md",
        help="the report; plots are written next to it (default benchmarks/RESULTS.md)",
    )  # fmt: skip
    return parser.parse_args(argv)


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown benchmark(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(BENCHMARKS)}"
        )
    return [n for n in BENCHMARKS if n in names]


def _scale(text: str) -> float:
    scale = float(text)
    if not 0 < scale <= 1:
        raise argparse.ArgumentTypeError(f"scale must be in (0, 1], got {text}")
    return scale


def _minutes(text: str) -> float:
    minutes = float(text)
    if not 0 < minutes <= 24 * 60:
        raise argparse.ArgumentTypeError(f"minutes must be in (0, 1440], got {text}")
    return minutes


def _python() -> str:
    """The interpreter as the user would type it: relative to here when inside it."""
    executable = Path(sys.executable)
    try:
        return str(executable.relative_to(Path.cwd()))
    except ValueError:
        return executable.name


def _print(rows: list[Row]) -> None:
    table = Table(title="nudgeflow benchmarks")
    for column in ("benchmark", "figure", "value", "target", "result"):
        table.add_column(column)
    styles = {"PASS": "green", "FAIL": "red", "ERROR": "bold red"}
    for row in rows:
        result = f"[{styles[row.result]}]{row.result}[/]" if row.result in styles else row.result
        table.add_row(*map(escape, (row.benchmark, row.figure, row.value, row.target)), result)
    Console().print(table)


if __name__ == "__main__":
    sys.exit(main())
