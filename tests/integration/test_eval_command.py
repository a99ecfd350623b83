"""``nudgeflow eval`` end to end, at a tiny size, on its own embedded stack."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_eval_writes_the_quality_table(tmp_path):
    out = tmp_path / "QUALITY.md"
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "eval", "--seeds", "7", "--holdout-seed", "8",
         "--customers", "40", "--days", "1", "--out", str(out)],
        capture_output=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    report = out.read_text()
    assert "## Comparison seeds 7" in report and "## Held-out seed 8" in report
    rage = next(line for line in report.splitlines() if line.startswith("| rage_clicker |"))
    caught_pct = rage.split("|")[5].strip()
    assert caught_pct != "-" and int(caught_pct) >= 80  # the rage-click detector works end to end
