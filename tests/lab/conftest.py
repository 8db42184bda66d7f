"""Lab tests: real namespaces and packet filters; they need root and ``ip netns``."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from lab.labtools import LabFactory, assert_gone
from reachwatch.lab import topology
from reachwatch.lab.state import LabState


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "lab tests need root (network namespaces)"
    if shutil.which("ip") is None:
        return "lab tests need `ip` (iproute2)"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, check=False)
    return None if probe.returncode == 0 else "`ip netns` is not available here"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = _why_not()
    for item in items:
        if "lab" in item.keywords and reason:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="module")
def make_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabFactory]:
    """Build labs from scenario text; everything built is torn down and checked at the end."""
    built: list[LabState] = []

    def make(
        text: str, prefix: str, *, control: bool = False, files: dict[str, str] | None = None
    ) -> LabState:
        root = tmp_path_factory.mktemp(prefix)
        for name, content in (files or {}).items():
            (root / name).write_text(content)
        (root / "scenario.toml").write_text(text)
        state = topology.up(root / "scenario.toml", root / "out", prefix=prefix, control=control)
        built.append(state)
        return state

    yield make
    for state in built:
        topology.teardown(state)
        assert_gone(state)
