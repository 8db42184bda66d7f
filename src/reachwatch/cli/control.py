"""`reachwatch control serve`: run the control helper (see reachwatch.control.server)."""

from __future__ import annotations

from pathlib import Path

import typer

from reachwatch.errors import UserError

control_app = typer.Typer(help="The control helper (OONI test-helper protocol).", no_args_is_help=True)


@control_app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", help="Port to listen on."),
    lab: bool = typer.Option(False, "--lab", help="Allow loopback, private and other bogon targets."),
    ca_file: Path | None = typer.Option(None, "--ca-file", help="Extra trust anchors (PEM)."),
) -> None:
    """Answer POST / with the OONI test-helper response."""
    from reachwatch.control.server import serve as run_server

    if not 0 < port < 65536:
        raise UserError(f"--port {port} is not a port number")
    if ca_file is not None and not ca_file.is_file():
        raise UserError("no such file", where=str(ca_file), fix="--ca-file takes a PEM file")
    run_server(host, port, lab=lab, ca_file=ca_file)


def register(app: typer.Typer) -> None:
    """Add `control` to the root app."""
    app.add_typer(control_app, name="control")
