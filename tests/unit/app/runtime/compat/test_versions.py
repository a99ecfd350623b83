"""The start-up check of the library versions the compatibility layer was tested with."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.runtime.compat.versions import (
    TESTED_VERSIONS,
    UnsupportedLibrary,
    check_library_versions,
    untested,
)

_TESTED = {name: low for name, (low, _) in TESTED_VERSIONS.items()}


@pytest.mark.parametrize(
    ("aiokafka", "problem"),
    [
        ("0.14.0", None),
        ("0.14.7", None),
        ("0.14.1.post1", None),
        ("0.13.9", "aiokafka 0.13.9 (tested: >=0.14.0,<0.15)"),
        ("0.15.0rc1", "aiokafka 0.15.0rc1 (tested: >=0.14.0,<0.15)"),
        ("1.0", "aiokafka 1.0 (tested: >=0.14.0,<0.15)"),
        (None, "aiokafka not installed (tested: >=0.14.0,<0.15)"),
    ],
)
def test_versions_outside_the_tested_range_are_named(aiokafka, problem):
    assert untested({**_TESTED, "aiokafka": aiokafka}) == ([problem] if problem else [])


def test_an_untested_version_refuses_with_what_to_do():
    with pytest.raises(UnsupportedLibrary) as raised:
        check_library_versions({**_TESTED, "mode-streaming": "0.8.0"}.get)
    message = str(raised.value)
    assert "mode-streaming 0.8.0 (tested: >=0.7.1,<0.8)" in message
    assert "pip install 'faust-streaming>=0.15.3,<0.16' 'aiokafka>=0.14.0,<0.15'" in message


def test_this_environment_is_a_tested_one():
    check_library_versions()


def test_pyproject_pins_the_tested_ranges():
    pyproject = (Path(__file__).parents[5] / "pyproject.toml").read_text()
    for name, (low, high) in TESTED_VERSIONS.items():
        pin = re.search(rf'"{name}>=([\d.]+),<([\d.]+)"', pyproject)
        assert pin is not None, name
        # pip may install nothing older than we tested, and nothing we did not test.
        assert untested({**_TESTED, name: pin.group(1)}) == [], name
        assert pin.group(1).split(".")[:2] == low.split(".")[:2], name
        assert pin.group(2) == high, name


def test_a_worker_on_an_untested_version_stops_with_one_line():
    # The real command, with aiokafka's installed version reported as an untested one.
    script = (
        "from importlib import metadata\n"
        "real = metadata.version\n"
        "metadata.version = lambda name: '0.99.0' if name == 'aiokafka' else real(name)\n"
        "from app.cli import main\n"
        "main(['worker'])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("nudgeflow: ") and "aiokafka 0.99.0" in lines[0]
