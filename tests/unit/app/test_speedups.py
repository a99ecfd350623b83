"""The compiled hot path is used only while it matches its source (app.speedups)."""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import orjson
import pytest

from app import speedups
from app.tools.compile_hot_path import build

_SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """A package of its own (a name no other test imports) with one module to compile."""
    name = f"hotpkg_{tmp_path.name.replace('-', '_')}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "rules.py").write_text("def answer() -> int:\n    return 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, tmp_path
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


def _import_fresh(
    module: str, build_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[ModuleType, speedups.CompiledFinder]:
    sys.modules.pop(module, None)
    finder = speedups.CompiledFinder(build_dir, _manifest(build_dir))
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    importlib.invalidate_caches()
    return importlib.import_module(module), finder


def _build(package: tuple[str, Path], module: str | None = "rules") -> Path:
    """Compile the package's ``module`` (the package itself with None); its build folder."""
    name, root = package
    build([name if module is None else f"{name}.{module}"], root=root, build_dir=root / "_compiled")
    return root / "_compiled"


def _manifest(build_dir: Path) -> dict[str, str]:
    digests: dict[str, str] = speedups.read_manifest(build_dir)["modules"]
    return digests


def test_a_built_module_is_imported_compiled(
    package: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, _ = package
    module, finder = _import_fresh(f"{name}.rules", _build(package), monkeypatch)
    assert module.__file__ is not None and module.__file__.endswith(_SUFFIX)
    assert module.answer() == 42
    assert finder.loaded == [f"{name}.rules"] and finder.stale == []


def test_an_edited_module_runs_as_python_until_it_is_built_again(
    package: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, root = package
    build_dir = _build(package)
    source = root / name / "rules.py"
    built_at = source.stat().st_mtime
    source.write_text("def answer() -> int:\n    return 43\n")
    # An edit whose file time is not newer than the build (a checkout, a copy) counts too.
    os.utime(source, (built_at - 60, built_at - 60))

    module, finder = _import_fresh(f"{name}.rules", build_dir, monkeypatch)
    assert module.__file__ == str(source)
    assert module.answer() == 43
    assert finder.stale == [f"{name}.rules"] and finder.loaded == []

    binary = speedups.binary_path(build_dir, f"{name}.rules")
    with open(binary, "rb") as held:  # as a running worker holds the build it loaded
        first_build = held.read()
        _build(package)
        held.seek(0)
        assert held.read() == first_build  # a new file, not this one rewritten under it
        assert os.fstat(held.fileno()).st_ino != binary.stat().st_ino
    module, finder = _import_fresh(f"{name}.rules", build_dir, monkeypatch)
    assert module.__file__ is not None and module.__file__.endswith(_SUFFIX)
    assert module.answer() == 43


def test_a_package_is_compiled_and_its_submodules_still_found(
    package: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, root = package
    (root / name / "__init__.py").write_text("from .rules import answer\n")
    module, _ = _import_fresh(name, _build(package, module=None), monkeypatch)
    assert module.__file__ is not None and module.__file__.endswith(_SUFFIX)
    assert module.answer() == 42
    assert importlib.import_module(f"{name}.rules").__file__ == str(root / name / "rules.py")


def test_without_a_build_nothing_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    others = [f for f in sys.meta_path if not isinstance(f, speedups.CompiledFinder)]
    monkeypatch.setattr(sys, "meta_path", others)
    before = list(sys.meta_path)
    assert speedups.install(tmp_path / "nothing built") is None
    assert sys.meta_path == before


def test_a_build_with_another_compiler_compiles_everything_again(
    package: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, _ = package
    build_dir = _build(package)
    binary = speedups.binary_path(build_dir, f"{name}.rules")
    first = binary.stat().st_mtime_ns
    _build(package)
    assert binary.stat().st_mtime_ns == first  # nothing changed: nothing compiled

    manifest = speedups.read_manifest(build_dir)
    manifest["compiled_with"] = "Cython 0.29, {}"
    (build_dir / speedups.MANIFEST).write_bytes(orjson.dumps(manifest))
    _build(package)
    assert binary.stat().st_mtime_ns != first
    module, _ = _import_fresh(f"{name}.rules", build_dir, monkeypatch)
    assert module.answer() == 42


def test_a_module_reading_another_s_extension_type_is_stale_when_that_one_changes(
    package: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, root = package
    (root / name / "point.py").write_text(
        "from dataclasses import dataclass\n\n\n"
        "@dataclass(slots=True)\nclass Point:\n    x: int\n    y: int = 0\n"
    )
    (root / name / "point.pxd").write_text("cdef class Point:\n    cdef public object x, y\n")
    (root / name / "rules.py").write_text(
        "# cython: annotation_typing=True\n"
        f"from {name}.point import Point\n\n\n"
        "def answer(point: Point) -> int:\n    return point.x + point.y\n"
    )
    (root / name / "rules.pxd").write_text(f"from {name}.point cimport Point\n")
    build_dir = root / "_compiled"
    build([f"{name}.point", f"{name}.rules"], root=root, build_dir=build_dir)
    point, finder = _import_fresh(f"{name}.point", build_dir, monkeypatch)
    rules = importlib.import_module(f"{name}.rules")
    assert finder.loaded == [f"{name}.point", f"{name}.rules"]
    # An extension type (no __slots__), and still the dataclass the source says.
    assert not hasattr(point.Point, "__slots__") and point.Point(40, 2) == point.Point(40, 2)
    assert rules.answer(point.Point(40, 2)) == 42

    # Another field in Point: its build and that of rules, which reads its layout, are stale.
    source = (root / name / "point.py").read_text()
    (root / name / "point.py").write_text(source + "    z: int = 0\n")
    (root / name / "point.pxd").write_text("cdef class Point:\n    cdef public object x, y, z\n")
    for module in (f"{name}.point", f"{name}.rules"):
        sys.modules.pop(module, None)
    point, finder = _import_fresh(f"{name}.point", build_dir, monkeypatch)
    rules = importlib.import_module(f"{name}.rules")
    assert finder.stale == [f"{name}.point", f"{name}.rules"] and finder.loaded == []
    assert rules.answer(point.Point(40, 2, 1)) == 42


def _pxd_classes(text: str) -> dict[str, list[str]]:
    """The attributes each ``cdef class`` of a ``.pxd`` declares, in order."""
    classes: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        if match := re.match(r"cdef class (\w+):", line):
            current = classes.setdefault(match.group(1), [])
        elif match := re.match(r"\s+cdef (?:public |readonly )?\w+ (.+)", line):
            current += [name.strip() for name in match.group(1).split(",")]
    return classes


def _source_fields(source: str) -> dict[str, list[str]]:
    """The annotated fields of each class of a module's source, in order."""
    return {
        node.name: [
            item.target.id
            for item in node.body
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
        ]
        for node in ast.parse(source).body
        if isinstance(node, ast.ClassDef)
    }


@pytest.mark.parametrize(
    "declarations",
    sorted(
        path.relative_to(speedups.ROOT)
        for package in ("app", "tables")
        for path in (speedups.ROOT / package).glob("**/*.pxd")
        if "_compiled" not in path.parts
    ),
    ids=str,
)
def test_an_extension_type_declares_the_source_s_fields_in_their_order(
    declarations: Path,
) -> None:
    # A dataclass made an extension type takes its fields (and __init__'s positional
    # arguments) in the .pxd's order: another order would swap arguments silently.
    path = speedups.ROOT / declarations
    sources = _source_fields(path.with_suffix(".py").read_text())
    for name, attributes in _pxd_classes(path.read_text()).items():
        assert attributes == sources[name], name
