"""User-facing errors: what went wrong, where, and how to fix it.

Every entry point (CLI, API) turns a :class:`UserError` into a clear message and a non-zero
exit code or a 4xx answer; nothing else should reach a user as a traceback.
"""

from __future__ import annotations


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
