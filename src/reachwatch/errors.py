"""User-facing errors: what went wrong, where, and how to fix it.

Every entry point (CLI, API) turns a :class:`UserError` into a clear message and a non-zero
exit code or a 4xx answer; nothing else should reach a user as a traceback.
"""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """Bad input from a user: a file, an argument, a request body."""

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self.render())

    def render(self) -> str:
        parts = [f"{self.where}: {self.what}" if self.where else self.what]
        if self.fix:
            parts.append(f"  how to fix: {self.fix}")
        return "\n".join(parts)


def make_directory(path: Path, what: str, *, fix: str | None = None) -> None:
    """``path`` and its parents made if missing; a :class:`UserError` naming ``what`` when they
    cannot be (a file in the way, a read-only or virtual file system...)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {what}: {exc.strerror}", where=str(path), fix=fix) from None
