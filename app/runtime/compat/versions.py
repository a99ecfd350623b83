"""The library versions the compatibility layer was tested with, checked at start-up.

``app/runtime/compat`` replaces part of Faust's consumer and reads aiokafka's
private state. A release outside the tested ranges may have moved what it relies
on, and would then fail in ways that show only under load or at a rebalance
(lost acks, stalled commits), so a worker refuses to start instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import metadata

from app.errors import NudgeflowError

__all__ = ["TESTED_VERSIONS", "UnsupportedLibrary", "check_library_versions", "untested"]

#: Distribution → (lowest tested, first untested). Keep in step with pyproject.toml.
TESTED_VERSIONS: dict[str, tuple[str, str]] = {
    "faust-streaming": ("0.15.3", "0.16"),
    "aiokafka": ("0.14.0", "0.15"),
    "mode-streaming": ("0.7.1", "0.8"),
}


class UnsupportedLibrary(NudgeflowError):
    """A library the compatibility layer reaches into is outside its tested range."""


def _release(version: str) -> tuple[int, ...]:
    """The numeric release of a version, padded to three (``"0.14rc1"`` → ``(0, 14, 0)``)."""
    parts = []
    for piece in version.split("+")[0].split("."):
        digits = ""
        for char in piece:
            if not char.isdigit():
                break
            digits += char
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) < len(piece):  # a pre-release tail ends the release part
            break
    return tuple(parts + [0] * (3 - len(parts)))


def untested(
    installed: Mapping[str, str | None],
    tested: Mapping[str, tuple[str, str]] = TESTED_VERSIONS,
) -> list[str]:
    """One line per library whose installed version is missing or outside ``tested``.

    Examples
    --------
    >>> untested({"aiokafka": "0.14.2", "faust-streaming": "0.15.3", "mode-streaming": "0.7.1"})
    []
    >>> for line in untested({"aiokafka": "0.15.0", "faust-streaming": "0.15.3"}):
    ...     print(line)
    aiokafka 0.15.0 (tested: >=0.14.0,<0.15)
    mode-streaming not installed (tested: >=0.7.1,<0.8)
    """
    problems = []
    for name, (lowest, first_untested) in tested.items():
        wanted = f">={lowest},<{first_untested}"
        version = installed.get(name)
        if version is None:
            problems.append(f"{name} not installed (tested: {wanted})")
        elif not _release(lowest) <= _release(version) < _release(first_untested):
            problems.append(f"{name} {version} (tested: {wanted})")
    return problems


def _installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def check_library_versions(version_of: Callable[[str], str | None] = _installed_version) -> None:
    """Refuse to run on library versions the compatibility layer was not tested with.

    Raises
    ------
    UnsupportedLibrary
        Naming each library out of range and the command that installs a tested one.
    """
    problems = untested({name: version_of(name) for name in TESTED_VERSIONS})
    if problems:
        pins = " ".join(f"'{name}>={low},<{high}'" for name, (low, high) in TESTED_VERSIONS.items())
        raise UnsupportedLibrary(
            "this nudgeflow's Faust compatibility layer was not tested with "
            + "; ".join(problems)
            + f". Install the tested versions (pip install {pins}), or a nudgeflow "
            "release that supports yours."
        )
