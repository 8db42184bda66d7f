"""Fetch the current upstream fingerprint CSVs from ooni/blocking-fingerprints on GitHub.

Each file is downloaded, parsed with the same loader the analysis uses (a broken upstream file is
refused and the old copy kept), then moved into place atomically.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from reachwatch.errors import UserError
from reachwatch.fingerprints.load import UPSTREAM_FILES, default_dir, read_fingerprints

UPSTREAM_BASE = "https://raw.githubusercontent.com/ooni/blocking-fingerprints/main/"


@dataclass(frozen=True, slots=True)
class Updated:
    path: Path
    fingerprints: int
    url: str


def update(
    directory: Path | None = None,
    *,
    base_url: str = UPSTREAM_BASE,
    client: httpx.Client | None = None,
    timeout: float = 30.0,
) -> list[Updated]:
    """Download every upstream file into ``directory`` (default :func:`default_dir`)."""
    d = directory or default_dir()
    d.mkdir(parents=True, exist_ok=True)
    own_client = client is None
    http = client or httpx.Client(timeout=timeout, follow_redirects=True)
    try:
        results = [_fetch_one(http, base_url + name, d / name) for name in UPSTREAM_FILES]
    finally:
        if own_client:
            http.close()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [f"{r.url}\t{r.fingerprints} fingerprints\tfetched {stamp}" for r in results]
    (d / "SOURCE.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return results


def _fetch_one(http: httpx.Client, url: str, target: Path) -> Updated:
    try:
        response = http.get(url)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise UserError(f"cannot download {url}: {exc}", fix="check the network, or retry later") from exc
    fd, tmp_name = tempfile.mkstemp(prefix=target.name, suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(response.content)
        count = len(read_fingerprints(tmp))  # refuse a broken upstream file
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return Updated(path=target, fingerprints=count, url=url)
