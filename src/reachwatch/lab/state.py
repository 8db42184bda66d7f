"""What a running lab consists of: ``DIR/lab.json``, mirrored in a registry under /run.

The state is written *before* each namespace or process is made, so that ``lab down`` can
always undo a half-built lab. The registry (one file per prefix) lets ``lab down --all`` find
every lab on the machine without knowing their output directories.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from reachwatch.errors import UserError

REGISTRY = Path("/run/reachwatch/labs")
STATE_FILE = "lab.json"


class Process(BaseModel):
    name: str
    ns: str
    pid: int


class Vantage(BaseModel):
    """A namespace that runs probes: an ISP, or the control vantage (``isp = False``)."""

    ns: str
    name: str
    asn: int
    cc: str
    ip: str
    isp: bool = True
    probe: int = 1  # probe number within its ISP (1 runs in the ISP namespace itself)


class LabState(BaseModel):
    prefix: str
    out: str
    scenario: str
    namespaces: list[str] = []
    processes: list[Process] = []
    vantages: list[Vantage] = []
    resolver: str = ""
    control_url: str | None = None
    collector_url: str | None = None  # `lab run --collector`: reachwatch serve in the control namespace
    collector_db: str | None = None
    warnings: list[str] = []
    up_seconds: float | None = None

    @property
    def path(self) -> Path:
        return Path(self.out) / STATE_FILE

    def save(self) -> None:
        text = self.model_dump_json(indent=2)
        self.path.write_text(text)
        REGISTRY.mkdir(parents=True, exist_ok=True)
        (REGISTRY / f"{self.prefix}.json").write_text(text)

    def forget(self) -> None:
        self.path.unlink(missing_ok=True)
        registered = REGISTRY / f"{self.prefix}.json"
        if registered.exists() and load_file(registered).out == self.out:
            registered.unlink()


def load_file(path: Path) -> LabState:
    try:
        return LabState.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the lab state: {exc}", where=str(path)) from None


def load(out: Path) -> LabState | None:
    path = out / STATE_FILE
    return load_file(path) if path.exists() else None


def registered() -> list[LabState]:
    """Every lab in the registry (unreadable entries are skipped)."""
    labs = []
    for path in sorted(REGISTRY.glob("*.json")) if REGISTRY.exists() else []:
        try:
            labs.append(load_file(path))
        except UserError:
            path.unlink(missing_ok=True)
    return labs


def by_prefix(prefix: str) -> LabState | None:
    path = REGISTRY / f"{prefix}.json"
    return load_file(path) if path.exists() else None
