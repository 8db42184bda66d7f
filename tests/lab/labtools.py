"""Helpers for the lab tests: a client inside a namespace, and teardown checks."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reachwatch.lab import netns
from reachwatch.lab.state import LabState

CLIENT = Path(__file__).with_name("client.py")
LabFactory = Callable[..., LabState]


def client(ns: str, *ops: list[Any]) -> list[dict[str, Any]]:
    """Run the test client inside ``ns``; one result per op."""
    proc = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, str(CLIENT), json.dumps(list(ops))],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return [json.loads(line) for line in proc.stdout.splitlines()]


def assert_gone(state: LabState) -> None:
    left = {ns for ns in netns.list_netns() if ns.startswith(state.prefix + "-")}
    assert not left, f"namespaces left behind: {left}"
    alive = [p for p in state.processes if netns.alive(p.pid)]
    assert not alive, f"processes left behind: {alive}"
    assert not any((netns.NETNS_ETC / ns).exists() for ns in state.namespaces)
