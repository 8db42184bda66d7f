"""The mypyc-compiled modules: the suite runs them compiled, and their plain source agrees."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reachwatch import compiled

ROOT = Path(__file__).resolve().parents[1]


def test_the_suite_runs_the_compiled_modules() -> None:
    state = compiled.at_import
    if state == "disabled":
        pytest.skip("REACHWATCH_MYPYC=0: this run is the plain-Python one")
    assert state == "compiled", f"compiled modules are {state}: run `make install` to build them"
    assert compiled.running_compiled()


def test_every_listed_module_exists() -> None:
    modules = compiled.listed_modules()
    assert len(modules) >= 10
    assert all(m.source.is_file() for m in modules)
    assert "reachwatch.verdict.engine" in {m.module for m in modules}


@pytest.mark.timeout(900)
def test_plain_python_gives_the_same_verdicts() -> None:
    """The verdict snapshot, the hostile-input property, analysis and the collector's staging, run
    from the .py sources (~2 min on a quiet machine, ~4 on a loaded one: a generous bound)."""
    env = {**os.environ, "REACHWATCH_MYPYC": "0"}
    tests = [
        "tests/verdict/test_equivalence.py",
        "tests/verdict/test_hostile_input.py",
        "tests/analyze",
        "tests/collector/test_fast_paths.py",
        "tests/collector/test_privacy.py",
        "tests/collector/test_batch.py",
        "tests/collector/test_measurement_json.py",
    ]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=840,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]


def test_a_stale_extension_is_never_run(tmp_path: Path) -> None:
    """An extension older than its source: every listed module comes from source, with a warning."""
    modules = compiled.listed_modules()
    if compiled.state(modules) != "compiled":
        pytest.skip("no compiled modules to make stale")
    target = next(m for m in modules if m.module == "reachwatch.verdict.rules")
    assert target.extension is not None
    old = target.source.stat().st_mtime - 3600  # older than its source, however old that is
    os.utime(target.extension, (old, old))
    try:
        code = "import reachwatch.compiled as c, reachwatch.verdict.engine as e; print(e.__file__, c.running_compiled())"
        env = {k: v for k, v in os.environ.items() if k != "REACHWATCH_MYPYC"}
        run = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        now = target.source.stat().st_mtime + 1
        os.utime(target.extension, (now, now))
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [str(ROOT / "src/reachwatch/verdict/engine.py"), "False"]
    assert "make install" in run.stderr


def test_a_stale_c_extension_is_never_run() -> None:
    """Hand-written C (``compiled.txt``'s ``.c`` entries) older than its source: its module's own
    Python runs instead, the same rules; fresh, the extension runs."""
    source = compiled.c_sources()["reachwatch.collector._json_text"]
    extension = compiled.built_extension(source)
    if extension is None or compiled.state() != "compiled":
        pytest.skip("the C extension is not built")
    code = "import reachwatch.collector.json_text as j; print(j.compact is j.py_compact)"
    env = {k: v for k, v in os.environ.items() if k != "REACHWATCH_MYPYC"}

    def python_runs() -> str:
        run = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 0, run.stderr
        return run.stdout.strip()

    assert python_runs() == "False"
    old = source.stat().st_mtime - 3600
    os.utime(extension, (old, old))
    try:
        assert python_runs() == "True"
    finally:
        now = source.stat().st_mtime + 1
        os.utime(extension, (now, now))


def _awaits_in_except(tree: ast.AST) -> list[int]:
    """Lines of ``await`` (or ``async with``/``async for``) inside an ``except`` block of a coroutine."""
    lines: list[int] = []
    for func in ast.walk(tree):
        if not isinstance(func, ast.AsyncFunctionDef):
            continue
        for handler in ast.walk(func):
            if isinstance(handler, ast.ExceptHandler):
                lines += [
                    node.lineno
                    for stmt in handler.body
                    for node in ast.walk(stmt)
                    if isinstance(node, ast.Await | ast.AsyncWith | ast.AsyncFor)
                ]
    return lines


def test_no_compiled_coroutine_awaits_in_an_except_block() -> None:
    """mypyc: a compiled coroutine cancelled while suspended in an ``except`` block leaks the handled
    exception into its caller's ``sys.exc_info()``, from where it resurfaces later (it killed the
    probe's workers with SSLWantReadError). Handle the exception, then await after the block."""
    found = {
        str(m.source.relative_to(ROOT)): lines
        for m in compiled.listed_modules()
        if (lines := _awaits_in_except(ast.parse(m.source.read_text())))
    }
    assert not found, f"await inside except in compiled modules (file: lines): {found}"


def test_an_installed_wheel_is_not_judged_by_file_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pip writes a wheel's files in archive order, so a source can be a little newer than its
    extension there: only a checkout (sources edited in place) compares times."""
    monkeypatch.delenv("REACHWATCH_MYPYC", raising=False)
    source, extension = tmp_path / "m.py", tmp_path / "m.cpython-311-x86_64-linux-gnu.so"
    extension.write_bytes(b"")
    source.write_text("")
    os.utime(extension, (1_000_000, 1_000_000))
    listed = [compiled.Listed("pkg.m", source, extension)]
    monkeypatch.setattr(compiled, "IN_SOURCE_TREE", True)
    assert compiled.state(listed) == "stale"
    monkeypatch.setattr(compiled, "IN_SOURCE_TREE", False)
    assert compiled.state(listed) == "compiled"
    assert compiled.state([*listed, compiled.Listed("pkg.n", source, None)]) == "stale"  # one missing
