"""Build hook: the hot pure-Python modules are compiled to C extensions with mypyc, and the
hand-written C listed beside them (``.c`` entries of ``compiled.txt``) is built too.

Everything else about the package is in pyproject.toml. The modules listed in
``src/reachwatch/compiled.txt`` (the verdict engine and what feeds it) run about twice as fast
compiled; their source is the same typed Python, checked by mypy, and the package works
unchanged without the extensions. ``REACHWATCH_MYPYC=0`` builds the plain-Python package
(``make install`` does so, then compiles in place with ``setup.py build_ext --inplace``, so
that an edit is recompiled by ``make`` rather than by a reinstall).
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import Extension, setup

ROOT = Path(__file__).resolve().parent


PACKAGE = ROOT / "src" / "reachwatch"


def entries() -> list[str]:
    lines = (PACKAGE / "compiled.txt").read_text().splitlines()
    return [e for e in (line.split("#")[0].strip() for line in lines) if e]


def compiled_sources() -> list[str]:
    """The listed modules, a directory standing for each of its modules, relative to this file."""
    sources: list[str] = []
    for entry in entries():
        if not entry.endswith(".c"):
            path = PACKAGE / entry
            found = sorted(path.glob("*.py")) if path.is_dir() else [path]
            sources += [str(f.relative_to(ROOT)) for f in found]
    return sources


def c_extensions() -> list[Extension]:
    """The listed ``.c`` files: hand-written C, each the fast version of a module that keeps its own
    Python (``collector/_json_text.c``: ``reachwatch.collector.json_text``)."""
    out = []
    for entry in entries():
        if entry.endswith(".c"):
            name = "reachwatch." + entry.removesuffix(".c").replace("/", ".")
            out.append(Extension(name, [f"src/reachwatch/{entry}"], extra_compile_args=["-O3"]))
    return out


def ext_modules() -> list[object]:
    if os.environ.get("REACHWATCH_MYPYC", "1") == "0":
        return []
    from mypyc.build import mypycify

    return [*mypycify(compiled_sources(), opt_level="3", debug_level="0"), *c_extensions()]


setup(ext_modules=ext_modules())
