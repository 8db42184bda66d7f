"""Which modules run compiled (mypyc C extensions), and a guard against stale extensions.

The modules listed in ``compiled.txt`` are built to C extensions beside their source by
``make install`` (``setup.py build_ext --inplace``) or by ``pip install .``. Python imports an
extension in preference to its source, so in a checkout an extension older than its source would
silently run old code. mypyc extensions also call each other directly, so they are used all together or not at
all: if any one is older than its source, or ``REACHWATCH_MYPYC=0`` is set, every listed module is
imported from its source instead (the same code, about half as fast), with one warning for the
stale case saying how to rebuild.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Literal

PACKAGE_DIR = Path(__file__).resolve().parent
LIST_FILE = PACKAGE_DIR / "compiled.txt"
#: Running from a checkout (src/reachwatch beside setup.py), where sources are edited in place and
#: ``make install`` builds the extensions after them; an installed wheel is not checked by time.
IN_SOURCE_TREE = PACKAGE_DIR.parent.name == "src" and (PACKAGE_DIR.parent.parent / "setup.py").is_file()
State = Literal["compiled", "plain", "stale", "disabled"]
#: The state :func:`install_guard` found when the package was first imported.
at_import: State | None = None


@dataclass(frozen=True)
class Listed:
    module: str  # reachwatch.verdict.engine
    source: Path
    extension: Path | None  # the built extension beside the source, if any


def listed_modules() -> list[Listed]:
    """Every module ``compiled.txt`` lists (a directory stands for each of its modules)."""
    out: list[Listed] = []
    for entry in _entries():
        if entry.endswith(".c"):
            continue
        path = PACKAGE_DIR / entry
        for source in sorted(path.glob("*.py")) if path.is_dir() else [path]:
            extension = built_extension(source)
            parts = source.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out.append(Listed(name, source, extension))
    return out


def built_extension(source: Path) -> Path | None:
    """The extension built beside ``source`` (a ``.py`` or ``.c`` file), if any."""
    stem = source.with_suffix("")
    built = (Path(f"{stem}{suffix}") for suffix in importlib.machinery.EXTENSION_SUFFIXES)
    return next((p for p in built if p.exists()), None)


def _entries() -> list[str]:
    if not LIST_FILE.exists():
        return []
    return [e for e in (line.split("#")[0].strip() for line in LIST_FILE.read_text().splitlines()) if e]


def c_sources() -> dict[str, Path]:
    """The hand-written C extensions ``compiled.txt`` lists (``.c`` files), by module name."""
    out: dict[str, Path] = {}
    for entry in _entries():
        if entry.endswith(".c"):
            source = PACKAGE_DIR / entry
            out[".".join(source.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)] = source
    return out


def c_extension(module: str) -> bool:
    """Whether to import the hand-written C extension ``module`` (listed in ``compiled.txt``): not
    with ``REACHWATCH_MYPYC=0`` (which stale mypyc modules set too), nor, in a checkout, where it is
    missing or older than its C source (the caller then runs its Python version, the same rules)."""
    if os.environ.get("REACHWATCH_MYPYC") == "0":
        return False
    source = c_sources().get(module)
    if source is None:
        return False
    extension = built_extension(source)
    if extension is None:
        return not IN_SOURCE_TREE  # an installed wheel may keep it elsewhere: let the import decide
    return not IN_SOURCE_TREE or extension.stat().st_mtime >= source.stat().st_mtime


def state(modules: list[Listed] | None = None) -> State:
    """compiled: every listed module has a fresh extension; plain: none has one; stale: some
    extension is missing or older than its source; disabled: ``REACHWATCH_MYPYC=0``."""
    modules = listed_modules() if modules is None else modules
    if os.environ.get("REACHWATCH_MYPYC") == "0":
        return "disabled"
    built = [m for m in modules if m.extension is not None]
    if not built:
        return "plain"
    if not IN_SOURCE_TREE:  # an installed wheel: built together, and its files' times are the install's
        return "compiled" if len(built) == len(modules) else "stale"
    fresh = [
        m
        for m in built
        if m.extension is not None and m.extension.stat().st_mtime >= m.source.stat().st_mtime
    ]
    return "compiled" if len(fresh) == len(modules) else "stale"


def running_compiled() -> bool:
    """Whether the verdict engine in this process is the compiled one."""
    engine = sys.modules.get("reachwatch.verdict.engine") or importlib.import_module(
        "reachwatch.verdict.engine"
    )
    return not (engine.__file__ or "").endswith(".py")


class _SourcesFirst(importlib.abc.MetaPathFinder):
    """Imports the listed modules from their ``.py`` source, never their extension."""

    def __init__(self, modules: list[Listed]) -> None:
        self.sources = {m.module: m.source for m in modules}

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        source = self.sources.get(fullname)
        if source is None:
            return None
        locations = [str(source.parent)] if source.name == "__init__.py" else None
        return importlib.util.spec_from_file_location(fullname, source, submodule_search_locations=locations)


def install_guard() -> None:
    """Run the listed modules from source unless every one of them has a fresh extension."""
    global at_import
    modules = listed_modules()
    current = at_import = state(modules)
    if current in ("compiled", "plain"):
        return
    if current == "stale":
        print(
            "reachwatch: compiled modules are older than their source; running them as plain Python "
            "(correct, about half as fast). Run `make install` to rebuild them.",
            file=sys.stderr,
        )
        os.environ["REACHWATCH_MYPYC"] = "0"  # child processes follow quietly
    sys.meta_path.insert(0, _SourcesFirst(modules))
