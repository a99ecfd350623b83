"""``nudgeflow eval`` end to end, at a tiny size, on its own embedded stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

COMMITTED = Path(__file__).parents[2] / "benchmarks" / "QUALITY.md"


def test_a_trial_run_writes_where_asked_and_leaves_the_committed_report(tmp_path: Path) -> None:
    committed = COMMITTED.read_bytes()
    out = tmp_path / "QUALITY.md"
    result = subprocess.run(
        [sys.executable, "-m", "app", "eval", "--seeds", "7", "--holdout-seed", "8",
         "--customers", "40", "--days", "1", "--out", str(out)],
        capture_output=True, timeout=300, cwd=COMMITTED.parents[1],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    # Into a pipe the printed tables go out whole: every header on the header line.
    printed = result.stderr.decode()
    header = next(line for line in printed.splitlines() if "story" in line and "sessions" in line)
    assert "interventions / 1k events" in header and "any nudge on clean %" in header
    assert COMMITTED.read_bytes() == committed
    report = out.read_text()
    assert "## Comparison: seeds 7, variant tuning" in report
    assert "## Held-out: seed 8, variant holdout" in report
    assert report.count("Targets: caught ≥ 90 %") == 2 and "**Warning:**" not in report
    assert "## Abandonment: learned score vs rule" in report
    rage = next(line for line in report.splitlines() if line.startswith("| rage_clicker |"))
    caught_pct = rage.split("|")[5].strip()
    assert caught_pct != "-" and int(caught_pct) >= 80  # the rage-click detector works end to end
