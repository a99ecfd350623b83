"""The README's settings table names every setting, and nothing that is not one."""

from __future__ import annotations

import re
from pathlib import Path

from config import Settings

README = Path(__file__).resolve().parents[3] / "README.md"


def test_readme_lists_every_setting_and_no_other() -> None:
    documented = set(re.findall(r"^\| `(NUDGEFLOW_[A-Z0-9_]+)` \|", README.read_text(), re.M))
    expected = {f"NUDGEFLOW_{name.upper()}" for name in Settings.model_fields}
    assert documented == expected
