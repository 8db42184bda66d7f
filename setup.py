"""Build hook: the hot pure-Python modules are compiled to C extensions with mypyc.

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

from setuptools import setup

ROOT = Path(__file__).resolve().parent


def compiled_sources() -> list[str]:
    """The listed modules, a directory standing for each of its modules, relative to this file."""
    package = ROOT / "src" / "reachwatch"
    sources: list[str] = []
    for line in (package / "compiled.txt").read_text().splitlines():
        entry = line.split("#")[0].strip()
        if entry:
            path = package / entry
            found = sorted(path.glob("*.py")) if path.is_dir() else [path]
            sources += [str(f.relative_to(ROOT)) for f in found]
    return sources


def ext_modules() -> list[object]:
    if os.environ.get("REACHWATCH_MYPYC", "1") == "0":
        return []
    from mypyc.build import mypycify

    return mypycify(compiled_sources(), opt_level="3", debug_level="0")


setup(ext_modules=ext_modules())
