"""Read and write fingerprint CSVs (ooni/blocking-fingerprints' format, and users' own files).

Every bad row is a :class:`~reachwatch.errors.UserError` naming ``file:line``; nothing is skipped
silently. Fingerprints are looked up, at run time, in a directory the user owns (see
:func:`default_dir`), filled by ``reachwatch fingerprints update`` or by hand.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable
from pathlib import Path

from reachwatch.errors import UserError
from reachwatch.fingerprints.model import CSV_COLUMNS, PATTERN_TYPES, REQUIRED_COLUMNS, Fingerprint

UPSTREAM_FILES = ("fingerprints_dns.csv", "fingerprints_http.csv")
_UPDATE_FIX = "run `reachwatch fingerprints update` (or pass a directory holding the CSVs)"


def default_dir() -> Path:
    """``$REACHWATCH_FINGERPRINTS``, else ``$XDG_DATA_HOME/reachwatch/fingerprints``."""
    env = os.environ.get("REACHWATCH_FINGERPRINTS")
    if env:
        return Path(env)
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "reachwatch" / "fingerprints"


def read_fingerprints(path: Path) -> list[Fingerprint]:
    """Parse one CSV file; raise UserError at the first bad row."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            return _parse(csv.reader(f), str(path))
    except OSError as exc:
        raise UserError(f"cannot read fingerprints: {exc.strerror}", where=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise UserError("not UTF-8 text", where=str(path), fix="save the CSV as UTF-8") from exc


def load_fingerprints(paths: Iterable[Path]) -> list[Fingerprint]:
    """Read several files; a later file's fingerprint replaces an earlier one of the same name and
    location (upstream reuses a name for the DNS and the HTTP side of one blocking system)."""
    by_key: dict[tuple[str, str], Fingerprint] = {}
    for path in paths:
        for fp in read_fingerprints(path):
            by_key.pop((fp.name, fp.location), None)
            by_key[fp.name, fp.location] = fp
    return list(by_key.values())


def load_dir(directory: Path | None = None) -> list[Fingerprint]:
    """The upstream CSVs of ``directory`` first, then every other ``*.csv`` there (users' own)."""
    d = directory or default_dir()
    missing = [name for name in UPSTREAM_FILES if not (d / name).is_file()]
    if missing:
        raise UserError(f"no fingerprint files {', '.join(missing)}", where=str(d), fix=_UPDATE_FIX)
    own = sorted(p for p in d.glob("*.csv") if p.name not in UPSTREAM_FILES)
    return load_fingerprints([*(d / name for name in UPSTREAM_FILES), *own])


def _parse(reader: Iterable[list[str]], where: str) -> list[Fingerprint]:
    rows = iter(reader)
    header = [h.strip() for h in next(rows, [])]
    absent = [c for c in REQUIRED_COLUMNS if c not in header]
    if absent:
        raise UserError(
            f"missing column(s) {', '.join(absent)} (header: {','.join(header) or 'empty'})",
            where=f"{where}:1",
            fix=f"the header must name at least {','.join(REQUIRED_COLUMNS)}",
        )
    out: list[Fingerprint] = []
    seen: dict[tuple[str, str], int] = {}
    for lineno, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        at = f"{where}:{lineno}"
        if len(row) != len(header):
            raise UserError(f"expected {len(header)} columns, found {len(row)}", where=at)
        fp = _row_to_fingerprint(dict(zip(header, row, strict=True)), at)
        key = (fp.name, fp.location)
        if key in seen:
            raise UserError(
                f"duplicate name {fp.name!r} for {fp.location} (first on line {seen[key]})", where=at
            )
        seen[key] = lineno
        out.append(fp)
    return out


def _row_to_fingerprint(row: dict[str, str], at: str) -> Fingerprint:
    name = row["name"].strip()
    if not name:
        raise UserError("empty name", where=at)
    location = row["location_found"].strip().lower()
    if location not in ("dns", "body") and not (location.startswith("header.") and len(location) > 7):
        raise UserError(
            f"unknown location_found {row['location_found']!r}",
            where=at,
            fix="use body, dns or header.<name> (e.g. header.location)",
        )
    pattern_type = row["pattern_type"].strip()
    if pattern_type not in PATTERN_TYPES:
        raise UserError(
            f"unknown pattern_type {pattern_type!r}",
            where=at,
            fix=f"use one of {', '.join(sorted(PATTERN_TYPES))}",
        )
    pattern = row["pattern"]
    if not pattern:
        raise UserError("empty pattern", where=at)
    if pattern_type == "regexp":
        try:
            re.compile(pattern)
        except re.error as exc:
            raise UserError(f"bad regexp {pattern!r}: {exc}", where=at) from exc
    confidence = row.get("confidence_no_fp", "").strip()
    if confidence and not confidence.isdigit():
        raise UserError(f"confidence_no_fp must be a whole number, not {confidence!r}", where=at)
    countries = tuple(c.strip().upper() for c in row.get("expected_countries", "").split(",") if c.strip())
    return Fingerprint(
        name=name,
        location=location,
        pattern_type=pattern_type,
        pattern=pattern,
        scope=row.get("scope", "").strip(),
        other_names=row.get("other_names", ""),
        confidence_no_fp=int(confidence) if confidence else None,
        expected_countries=countries,
        source=row.get("source", ""),
        exp_url=row.get("exp_url", ""),
        notes=row.get("notes", ""),
    )


def to_row(fp: Fingerprint) -> dict[str, str]:
    """One fingerprint as a CSV row keyed by :data:`CSV_COLUMNS`."""
    return {
        "name": fp.name,
        "scope": fp.scope,
        "other_names": fp.other_names,
        "location_found": fp.location,
        "pattern_type": fp.pattern_type,
        "pattern": fp.pattern,
        "confidence_no_fp": "" if fp.confidence_no_fp is None else str(fp.confidence_no_fp),
        "expected_countries": ",".join(fp.expected_countries),
        "source": fp.source,
        "exp_url": fp.exp_url,
        "notes": fp.notes,
    }


def append_fingerprints(path: Path, fingerprints: Iterable[Fingerprint]) -> int:
    """Append rows to ``path`` (written with a header when new); returns how many were written."""
    header: list[str] = list(CSV_COLUMNS)
    new = not path.exists() or path.stat().st_size == 0
    if not new:
        with path.open(newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), header)
        absent = [c for c in REQUIRED_COLUMNS if c not in header]
        if absent:
            raise UserError(f"not a fingerprint CSV (missing {', '.join(absent)})", where=f"{path}:1")
    n = 0
    with path.open("a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header, extrasaction="ignore", lineterminator="\n")
        if new:
            writer.writeheader()
        for fp in fingerprints:
            writer.writerow(to_row(fp))
            n += 1
    return n
