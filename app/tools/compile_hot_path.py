"""Build the compiled hot path (``app.speedups``): ``python -m app.tools.compile_hot_path``.

Needs Cython and a C compiler; ``make`` runs it before the worker, the tests and the
benchmarks, and it compiles again only the modules whose source changed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from app.speedups import (
    BUILD_DIR,
    HOT_MODULES,
    MANIFEST,
    ROOT,
    module_source,
    read_manifest,
    source_digest,
)

__all__ = ["build"]

# Annotations stay hints, as in Python: typed by them, a ``float`` argument would become a
# C double, an ``int`` one be truncated to an integer and a ``list`` one refuse a subclass.
# The modules that read the state's classes opt in with a ``# cython: annotation_typing=True``
# first line; their ``.pxd`` cimports those classes, which the ``.pxd`` beside the classes'
# own modules (``tables.customer_state``, the event's, the rules') makes extension types,
# so a field read is a C struct member's. The compiled module is the same code.
_DIRECTIVES = {"language_level": "3", "annotation_typing": False}


def build(
    modules: Iterable[str] = HOT_MODULES, root: Path = ROOT, build_dir: Path = BUILD_DIR
) -> None:
    """Compile ``modules`` (found under ``root``) into ``build_dir``; only what changed
    since the last build is compiled again."""
    from Cython.Build import cythonize
    from Cython.Shadow import __version__ as cython_version
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    build_dir = build_dir.resolve()
    # Relative to root, as cythonize names its C files.
    sources = {name: module_source(root, name).relative_to(root) for name in modules}
    c_dir = build_dir / "c"
    digests = {name: source_digest(root, name) for name in sources}
    compiled_with = f"Cython {cython_version}, {_DIRECTIVES}"
    built = read_manifest(build_dir)
    same_compiler = built.get("compiled_with") == compiled_with
    for name, path in sources.items():  # changed since its build, whatever the files' times say
        if not same_compiler or built.get("modules", {}).get(name) != digests[name]:
            (c_dir / path).with_suffix(".c").unlink(missing_ok=True)
    jobs = os.cpu_count() or 1
    _accept_slots()
    with contextlib.chdir(root):
        extensions = cythonize(  # type: ignore[no-untyped-call]
            [Extension(name, [str(path)]) for name, path in sources.items()],
            build_dir=str(c_dir),
            nthreads=jobs,
            quiet=True,
            compiler_directives=_DIRECTIVES,
        )
        # The linker writes a module linked again as a new file: a running worker keeps the
        # one it mapped (rewritten under it, it would crash; the tests check).
        command = build_ext(Distribution({"ext_modules": extensions}))
        command.build_lib = str(build_dir)
        command.build_temp = str(build_dir / "objects")
        command.parallel = jobs
        command.ensure_finalized()
        command.run()
    manifest = {"compiled_with": compiled_with, "modules": digests}
    with tempfile.NamedTemporaryFile(dir=build_dir, delete=False) as written:
        written.write(orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    os.replace(written.name, build_dir / MANIFEST)


def _accept_slots() -> None:
    """Let ``@dataclass(slots=True)`` stand on a class its ``.pxd`` makes an extension type.

    Cython's dataclass refuses the ``slots`` argument; an extension type has no
    ``__dict__`` anyway, so for it ``slots=True`` asks for nothing more.
    """
    from Cython.Compiler import Dataclass, ExprNodes

    handle: Any = Dataclass.handle_cclass_dataclass
    if getattr(handle, "accepts_slots", False):
        return

    def handle_cclass_dataclass(node: Any, dataclass_args: Any, transform: Any) -> Any:
        if dataclass_args is not None:
            positional, keywords = dataclass_args
            slots = keywords.get("slots")
            if isinstance(slots, ExprNodes.BoolNode) and getattr(slots, "value", False):
                keywords = {k: v for k, v in keywords.items() if k != "slots"}
                dataclass_args = (positional, keywords)
        return handle(node, dataclass_args, transform)

    handle_cclass_dataclass.accepts_slots = True  # type: ignore[attr-defined]
    Dataclass.handle_cclass_dataclass = handle_cclass_dataclass


if __name__ == "__main__":
    build()
    print(f"the hot path is compiled: {len(HOT_MODULES)} modules in {BUILD_DIR.relative_to(ROOT)}")
