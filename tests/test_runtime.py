"""The open-files limit a probe and the servers raise, and what the probe does when it cannot."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from reachwatch.probe.runner import FILES_BASE, FILES_PER_MEASUREMENT
from reachwatch.runtime import alive

CODE = """
import resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard}))
from reachwatch.probe.runner import fit_parallel
print(fit_parallel({parallel}), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""


def _fit(soft: int, hard: int, parallel: int) -> tuple[list[int], str]:
    run = subprocess.run(
        [sys.executable, "-c", CODE.format(soft=soft, hard=hard, parallel=parallel)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return [int(x) for x in run.stdout.split()], run.stderr


def test_the_soft_limit_is_raised_to_what_the_measurements_need() -> None:
    (fits, soft), err = _fit(256, 8192, 100)  # Debian's soft limit is 1,024, far below the hard one
    assert fits == 100 and soft == 100 * FILES_PER_MEASUREMENT + FILES_BASE and not err


def test_a_hard_limit_too_low_measures_fewer_at_once_and_says_so() -> None:
    (fits, soft), err = _fit(128, 128, 100)
    assert fits == (128 - FILES_BASE) // FILES_PER_MEASUREMENT and soft == 128
    assert f"measuring {fits} URLs at once, not 100" in err and "ulimit -n" in err
    (fits, _), _ = _fit(64, 64, 100)
    assert fits == 1  # never none


def test_alive_is_neither_gone_nor_a_zombie() -> None:
    assert alive(os.getpid())
    child = subprocess.Popen(["true"])
    while Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
        time.sleep(0.01)  # ended, not yet reaped: a zombie
    assert not alive(child.pid)
    child.wait()
    assert not alive(child.pid)
