"""Headless Chromium as a renderer: HTML file -> PDF (print CSS) or PNG (a look at the page).

The browser runs with a fresh empty profile and with the network unusable (every host name
resolves to nothing, every proxy connection is refused), so a report that needed the network
would visibly break instead of silently fetching.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from reachwatch.errors import UserError

DEFAULT_BINARY = "/usr/bin/chromium"
OFFLINE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
)


def find_chromium() -> str | None:
    """The Chromium binary: ``$REACHWATCH_CHROMIUM``, /usr/bin/chromium, or one on PATH."""
    candidates = [os.environ.get("REACHWATCH_CHROMIUM"), DEFAULT_BINARY]
    for name in ("chromium", "chromium-browser", "google-chrome"):
        candidates.append(shutil.which(name))
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    return None


def _run(args: list[str], output: Path, timeout: float) -> Path:
    binary = find_chromium()
    if binary is None:
        raise UserError(
            "Chromium not found", fix="install Debian's chromium or set REACHWATCH_CHROMIUM to its path"
        )
    output.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="reachwatch-chromium-") as profile:
        cmd = [binary, *OFFLINE_FLAGS, f"--user-data-dir={profile}", *args]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise UserError(f"Chromium took longer than {timeout:.0f}s", where=str(output)) from None
    if proc.returncode != 0 or not output.is_file() or output.stat().st_size == 0:
        tail = (proc.stderr or "").strip().splitlines()[-3:]
        raise UserError(f"Chromium failed (exit {proc.returncode}): {' | '.join(tail)}", where=str(output))
    return output


def print_pdf(html: Path, pdf: Path, timeout: float = 90.0) -> Path:
    """Print ``html`` to ``pdf`` with the page's own print CSS (A4, no browser header/footer)."""
    return _run(
        [
            f"--print-to-pdf={pdf.resolve()}",
            "--no-pdf-header-footer",
            "--run-all-compositor-stages-before-draw",
            html.resolve().as_uri(),
        ],
        pdf,
        timeout,
    )


def screenshot(html: Path, png: Path, width: int = 1200, height: int = 2400, timeout: float = 90.0) -> Path:
    return _run(
        [
            f"--screenshot={png.resolve()}",
            f"--window-size={width},{height}",
            "--hide-scrollbars",
            html.resolve().as_uri(),
        ],
        png,
        timeout,
    )
