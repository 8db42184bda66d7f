"""``reachwatch geoip update``: download DB-IP Lite ASN and country databases (mmdb, CC BY 4.0).

DB-IP publishes one file per month at ``https://download.db-ip.com/free/dbip-{asn,country}-lite-YYYY-MM.mmdb.gz``;
the current month's file appears during its first days, so the previous month is tried next.
Files are gunzipped to a temporary name, opened with ``maxminddb`` to check them, then renamed.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import shutil
import zlib
from pathlib import Path

import httpx
import maxminddb

from reachwatch.errors import UserError, make_directory

BASE = "https://download.db-ip.com/free"
KINDS = ("asn", "country")


def months(today: dt.date) -> list[str]:
    first = today.replace(day=1)
    previous = (first - dt.timedelta(days=1)).replace(day=1)
    return [f"{first:%Y-%m}", f"{previous:%Y-%m}"]


def url_for(kind: str, month: str) -> str:
    return f"{BASE}/dbip-{kind}-lite-{month}.mmdb.gz"


def target(directory: Path, kind: str) -> Path:
    return directory / f"dbip-{kind}-lite.mmdb"


#: what a bad download raises: the transfer, the disk, a body that is not gzip (a proxy's HTML page,
#: BadGzipFile is an OSError) or is cut short (EOFError, zlib.error), or is no MaxMind DB once unzipped
BAD_DOWNLOAD = (httpx.HTTPError, OSError, EOFError, zlib.error, maxminddb.InvalidDatabaseError)


def _download(client: httpx.Client, url: str, dest: Path) -> bool:
    tmp_gz = dest.with_suffix(".gz.part")
    tmp = dest.with_suffix(".part")
    try:
        with client.stream("GET", url) as resp:
            if resp.status_code == 404:
                return False
            resp.raise_for_status()
            with open(tmp_gz, "wb") as fh:
                for chunk in resp.iter_bytes(1 << 16):
                    fh.write(chunk)
        with gzip.open(tmp_gz, "rb") as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out)
        with maxminddb.open_database(str(tmp)) as reader:
            reader.metadata()
        os.replace(tmp, dest)
        return True
    finally:  # a failed download leaves nothing behind (a good one's temporary files are gone too)
        tmp_gz.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)


def update(directory: Path, today: dt.date | None = None, client: httpx.Client | None = None) -> list[Path]:
    """Download both databases into ``directory``; the paths written."""
    make_directory(
        directory, "the directory", fix="give --dir a directory you can write to (it is made if missing)"
    )
    http = client or httpx.Client(timeout=120.0, follow_redirects=True)
    written = []
    try:
        for kind in KINDS:
            dest = target(directory, kind)
            for month in months(today or dt.date.today()):
                try:
                    if _download(http, url_for(kind, month), dest):
                        written.append(dest)
                        break
                except BAD_DOWNLOAD as exc:
                    raise UserError(
                        f"download of {url_for(kind, month)} failed: {exc}", where=str(directory)
                    ) from exc
            else:
                raise UserError(f"no DB-IP {kind} database for {months(today or dt.date.today())}")
    finally:
        if client is None:
            http.close()
    return written
