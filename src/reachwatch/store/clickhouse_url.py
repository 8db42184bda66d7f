"""A ClickHouse location as users give it, ``http://[USER:PASSWORD@]HOST:8123/DB``, taken apart and
checked: shared by the collector's store and the readers of analysis and reports."""

from __future__ import annotations

import dataclasses
import re
import urllib.parse

from reachwatch.errors import UserError

#: A database name ClickHouse takes unquoted (ASCII letters, digits, underscores; no digit first)
_DB_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: ClickHouse's own databases: a collector's tables do not belong there
_SYSTEM_DATABASES = frozenset({"system", "information_schema"})


@dataclasses.dataclass(frozen=True)
class Location:
    """A ``http://[USER:PASSWORD@]HOST:8123/DB`` URL taken apart: the server's base URL, the
    database, the credentials (HTTP basic authentication, as ClickHouse takes it), and the URL as
    said back in errors and logs (without the password)."""

    base: str
    db: str
    auth: tuple[str, str] | None
    shown: str

    @classmethod
    def parse(cls, url: str) -> Location:
        parts = urllib.parse.urlsplit(url)
        db = parts.path.strip("/") or "default"
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        port = f":{parts.port}" if parts.port else ""
        shown = f"{parts.scheme}://{f'{parts.username}@' if parts.username else ''}{host}{port}/"
        fix = (
            "use http://[USER:PASSWORD@]HOST:8123/DBNAME, a name of ASCII letters, digits and _ "
            "not starting with a digit"
        )
        if not _DB_NAME.fullmatch(db):
            raise UserError(f"bad database name {db!r}", where=f"{shown}{db}", fix=fix)
        if db.lower() in _SYSTEM_DATABASES:
            raise UserError(
                f"{db!r} is ClickHouse's own database", where=f"{shown}{db}", fix="name one of your own"
            )
        auth = None
        if parts.username is not None:
            auth = (urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or ""))
        return cls(f"{parts.scheme}://{host}{port}/", db, auth, shown)
