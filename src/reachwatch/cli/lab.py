"""`reachwatch lab`: see the module that does the work."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this command to the root app (filled in by the lab work)."""
    del app
