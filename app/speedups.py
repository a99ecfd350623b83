"""Compiled builds of the hot path's pure modules, used only while they match their source.

The per-event path (decoding, the state's fold, the rules, the models' features and the
changelog codec) is plain Python. Cython compiles the same files, unchanged, into C
extensions that run it about a fifth faster (``benchmarks/RESULTS.md``), the way Faust
and aiokafka ship compiled parts of their own. A ``.pxd`` beside a module declares what
the build makes of it: the state's classes become extension types, whose fields the
compiled rules read as C struct members. ``app.tools.compile_hot_path`` builds them
into ``app/_compiled/`` with the SHA-256 of each source it compiled; the ``nudgeflow``
command (``app.command``) installs the finder that loads a build only while its source is
unchanged. An edited module runs as Python until the next build (``make`` rebuilds what
changed), and a machine without a C compiler, a build removed with ``make clean``, or the
package imported as a library (the tests) runs everything as Python: the same code,
slower.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys
from collections.abc import Mapping, Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

__all__ = [
    "BUILD_DIR",
    "HOT_MODULES",
    "MANIFEST",
    "ROOT",
    "CompiledFinder",
    "binary_path",
    "install",
    "loaded",
    "module_source",
    "read_manifest",
    "source_digest",
]

#: The modules every event goes through, and nothing that Faust or mode introspect.
HOT_MODULES: tuple[str, ...] = (
    "app.decide.interventions",
    "app.decide.policy",
    "app.decide.uplift",
    "app.decide.variants",
    "app.ingest.events",
    "app.ingest.partitioning",
    "app.detect.clicks",
    "app.detect.learning",
    "app.detect.partition_run",
    "app.detect.pipeline",
    "app.detect.state",
    "app.detect.timers",
    "app.detect.models.abandonment",
    "app.detect.models.anomaly",
    "app.detect.models.baselines",
    "app.detect.models.features",
    "app.detect.models.partition",
    "app.detect.models.rhythm",
    "app.detect.models.validation",
    "app.detect.signals",
    "app.detect.signals.cart_abandonment",
    "app.detect.signals.checkout_stall",
    "app.detect.signals.dead_click",
    "app.detect.signals.error_burst",
    "app.detect.signals.form_struggle",
    "app.detect.signals.micro_action",
    "app.detect.signals.payment_failure",
    "app.detect.signals.product_hesitation",
    "app.detect.signals.rage_click",
    "app.detect.signals.rhythm_change",
    "app.detect.signals.search_frustration",
    "app.detect.signals.signal",
    "app.detect.signals.step_loop",
    "app.detect.signals.thresholds",
    "tables.customer_state",
)

#: The packages' root (the folder holding ``app/`` and ``tables/``).
ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = Path(__file__).resolve().parent / "_compiled"
MANIFEST = "manifest.json"


class CompiledFinder(importlib.abc.MetaPathFinder):
    """Finds the compiled build of a module whose source still has the digest it was
    built from; leaves every other import to the finders after it."""

    def __init__(self, build_dir: Path, digests: Mapping[str, str]) -> None:
        self._build_dir = build_dir
        self._digests = dict(digests)
        self.loaded: list[str] = []
        self.stale: list[str] = []

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        digest = self._digests.get(fullname)
        if digest is None:
            return None
        source = importlib.machinery.PathFinder.find_spec(fullname, path)
        if source is None or source.origin is None:
            return None
        binary = binary_path(self._build_dir, fullname)
        if not binary.is_file():
            return None
        origin = Path(source.origin)
        depth = fullname.count(".") + (source.submodule_search_locations is not None)
        if source_digest(origin.parents[depth], fullname) != digest:
            self.stale.append(fullname)
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(binary))
        spec = importlib.util.spec_from_file_location(
            fullname,
            binary,
            loader=loader,
            submodule_search_locations=source.submodule_search_locations,
        )
        if spec is not None:
            self.loaded.append(fullname)
        return spec


def binary_path(build_dir: Path, fullname: str) -> Path:
    """Where the build of module ``fullname`` (a package's too: its ``__init__``) lies."""
    *package, name = fullname.split(".")
    return build_dir.joinpath(*package, name + importlib.machinery.EXTENSION_SUFFIXES[0])


def module_source(root: Path, name: str) -> Path:
    """The source file of module ``name`` under ``root`` (a package's ``__init__.py``)."""
    path = root.joinpath(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def source_digest(root: Path, name: str) -> str:
    """The SHA-256 of what module ``name``'s build is made from: its source, its ``.pxd``
    and, through the ``.pxd``'s cimports, the sources of the modules whose extension
    types it reads as C structs (a build of it fits only their build)."""
    digest = hashlib.sha256()
    for path in _build_inputs(root, name, set()):
        digest.update(path.read_bytes())
    return digest.hexdigest()


_CIMPORT = re.compile(r"^from\s+([\w.]+)\s+cimport\b", re.MULTILINE)


def _build_inputs(root: Path, name: str, seen: set[str]) -> list[Path]:
    seen.add(name)
    source = module_source(root, name)
    declarations = source.with_suffix(".pxd")
    if not declarations.is_file():
        return [source]
    inputs = [source, declarations]
    for cimported in _CIMPORT.findall(declarations.read_text()):
        if cimported not in seen and module_source(root, cimported).is_file():
            inputs += _build_inputs(root, cimported, seen)
    return inputs


def read_manifest(build_dir: Path) -> dict[str, Any]:
    """What the last build in ``build_dir`` wrote: ``compiled_with`` (Cython's version and
    directives) and ``modules`` (each source's digest); empty without a build."""
    try:
        manifest = orjson.loads((build_dir / MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def install(build_dir: Path = BUILD_DIR) -> CompiledFinder | None:
    """Put the finder of ``build_dir``'s builds first on ``sys.meta_path`` (once); ``None``
    when nothing was built there."""
    for finder in sys.meta_path:
        if isinstance(finder, CompiledFinder):
            return finder
    digests = read_manifest(build_dir).get("modules")
    if not isinstance(digests, dict):
        return None
    finder = CompiledFinder(build_dir, digests)
    sys.meta_path.insert(0, finder)
    return finder


def loaded() -> tuple[list[str], list[str]]:
    """The hot modules imported compiled, and those left to Python because their source
    changed since the build (both empty without a build)."""
    for finder in sys.meta_path:
        if isinstance(finder, CompiledFinder):
            return list(finder.loaded), list(finder.stale)
    return [], []
