"""The ``reachwatch`` command. Thin: it parses arguments and calls the modules that do the work."""

from __future__ import annotations

import sys

import typer

from reachwatch.errors import UserError

app = typer.Typer(
    name="reachwatch",
    help="An open observatory of website blocking and internet shutdowns.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from reachwatch.cli import collector, control, demo, evidence, findings, lab, measure, verdict

    for module in (measure, verdict, control, lab, collector, evidence, demo, findings):
        module.register(app)


def main() -> None:
    _register()
    try:
        app()
    except UserError as exc:
        print(f"reachwatch: error: {exc.render()}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("reachwatch: interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit as exc:
        # Typer turns a ^C inside a command into a silent exit 130: say it, as above
        if exc.code == 130 and isinstance(getattr(exc.__context__, "__cause__", None), KeyboardInterrupt):
            print("reachwatch: interrupted", file=sys.stderr)
        raise
