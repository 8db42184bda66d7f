"""The Citizen Lab test lists a collector hands OONI probes (``POST /api/v1/check-in``,
``GET /api/v1/test-list/urls``): ``global.csv`` and one ``<cc>.csv`` per country, as in the
citizenlab/test-lists repository's ``lists/`` directory, read once at start with
:func:`reachwatch.testlists.read_testlist`. The same lists give a measured URL its category
(:class:`Categories`) where the measurement names none."""

from __future__ import annotations

import random
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa

from reachwatch.errors import UserError
from reachwatch.store.schema import RowColumns
from reachwatch.testlists import read_testlist, same_url_key

#: the country_code OONI gives a URL of the global list (its ``ZZ`` written so, as OONI's API does)
GLOBAL = "XX"
_COUNTRY_FILE = re.compile(r"^[A-Za-z]{2}$")


@dataclass(frozen=True, slots=True)
class UrlEntry:
    """One URL as OONI's check-in answers it."""

    url: str
    category_code: str
    country_code: str

    def as_json(self) -> dict[str, str]:
        return {"category_code": self.category_code, "country_code": self.country_code, "url": self.url}


#: names that are no country's: OONI's unknown country and its name for the global list
_NOT_COUNTRIES = ("ZZ", GLOBAL)
#: a Citizen Lab category code (NEWS, HUMR, POLR...), in any case: the lists' and a probe's
CATEGORY = r"^[A-Za-z]{1,16}$"


def _country_of(path: Path) -> str | None:
    """``GLOBAL`` for ``global.csv``, ``PK`` for ``pk.csv``, None for any other name."""
    stem = path.stem
    if path.suffix.lower() != ".csv":
        return None
    if stem.lower() == "global":
        return GLOBAL
    if stem.upper() in _NOT_COUNTRIES:
        raise UserError(
            f"{stem.upper()} is no country (OONI's unknown country and its name for the global list)",
            where=str(path),
            fix="name the global list global.csv, and a country's list <cc>.csv",
        )
    return stem.upper() if _COUNTRY_FILE.match(stem) else None


class UrlLists:
    """The URLs of each country's list and the global one, without duplicates within a list."""

    def __init__(self, by_country: dict[str, tuple[UrlEntry, ...]] | None = None) -> None:
        self.by_country = by_country or {}

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_country.values())

    @classmethod
    def load(cls, paths: Iterable[Path]) -> UrlLists:
        """Files named ``global.csv`` or ``<cc>.csv``, or directories holding them (other files in
        a directory, the repository's ``00-LEGEND-*.csv`` say, are not lists: skipped). A
        :class:`UserError` for a file of another name, a directory with no list, or a bad row."""
        files: list[tuple[Path, str]] = []
        for path in paths:
            if path.is_dir():
                found = [(p, cc) for p in sorted(path.iterdir()) if p.is_file() and (cc := _country_of(p))]
                if not found:
                    raise UserError(
                        "no test list in this directory",
                        where=str(path),
                        fix="give the directory holding global.csv and <cc>.csv files (citizenlab/test-lists' lists/)",
                    )
                files += found
            else:
                cc = _country_of(path)
                if cc is None and path.exists():
                    raise UserError(
                        "a test list's name says its country: global.csv, or a two-letter country code (pk.csv)",
                        where=str(path),
                        fix="rename the file, or give the directory holding the lists",
                    )
                files.append((path, cc or GLOBAL))  # a missing file: read_testlist names it
        lists: dict[str, dict[str, UrlEntry]] = {}
        for path, cc in files:
            kept = lists.setdefault(cc, {})
            for target in read_testlist(path):
                key = same_url_key(target.url)
                code = target.category_code.strip().upper() or "MISC"  # OONI's default category
                if not re.fullmatch(CATEGORY, code):  # no probe could ask for it
                    raise UserError(
                        f"{target.category_code!r} is not a category code",
                        where=f"{path}:{target.line}" if target.line else str(path),
                        fix="give Citizen Lab's codes: letters only, as NEWS or HUMR",
                    )
                if key not in kept:
                    kept[key] = UrlEntry(target.url, code, cc)
        return cls({cc: tuple(entries.values()) for cc, entries in lists.items()})

    def select(
        self,
        probe_cc: str,
        categories: Collection[str] = (),
        limit: int | None = None,
        *,
        sample: bool = False,
    ) -> list[UrlEntry]:
        """The country's URLs, then the global ones not already among them, of ``categories`` (upper
        case; all when empty), at most ``limit``: the first ones, or (``sample``) as many drawn at
        random, so that probes with a short budget between them cover the whole list."""
        seen: set[str] = set()
        out: list[UrlEntry] = []
        sources = (self.by_country.get(probe_cc, ()), self.by_country.get(GLOBAL, ()))
        for entries in sources if probe_cc != GLOBAL else sources[1:]:
            for entry in entries:
                if categories and entry.category_code not in categories:
                    continue
                key = same_url_key(entry.url)
                if key not in seen:
                    seen.add(key)
                    out.append(entry)
        if limit is not None and len(out) > limit:
            out = random.sample(out, limit) if sample else out[:limit]
        return out


class Categories:
    """The category of a measured URL in the lists, for a measurement that names none: OONI's
    probes do not (their measurements carry no ``annotations.category_code``; OONI's API joins its
    citizenlab table at read time), so without this every OONI measurement's ``category_code`` was
    null and the category filter and axis found nothing (an outside check). The probe's country's
    list is asked first, then the global one; URLs compare as the lists' own duplicates do
    (:func:`~reachwatch.testlists.same_url_key`)."""

    def __init__(self, lists: UrlLists) -> None:
        self._by_country: dict[str, dict[str, str]] = {}
        for cc, entries in lists.by_country.items():
            codes = self._by_country[cc] = {}
            for e in entries:
                codes.setdefault(_category_key(e.url), e.category_code)
        self._global = self._by_country.get(GLOBAL, {})

    def of(self, probe_cc: str | None, url: str) -> str | None:
        try:
            key = _category_key(url)
        except ValueError:  # not a URL the lists could hold (a port out of range, say)
            return None
        return self._by_country.get(probe_cc or "", {}).get(key) or self._global.get(key)

    def fill(self, rows: RowColumns) -> RowColumns:
        """``rows`` with the category of each row that has none and whose input the lists hold."""
        table = rows.table
        index = table.schema.get_field_index("category_code")
        column = table.column(index)
        if column.null_count == 0:
            return rows
        codes = column.to_pylist()
        inputs, countries = table.column("input").to_pylist(), table.column("probe_cc").to_pylist()
        found = False
        for i, (code, url, cc) in enumerate(zip(codes, inputs, countries, strict=True)):
            if code is None and url and (listed := self.of(cc, url)) is not None:
                codes[i], found = listed, True
        if not found:
            return rows
        field = table.schema.field(index)
        return RowColumns(table.set_column(index, field, pa.array(codes, type=field.type)))


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _category_key(url: str) -> str:
    """:func:`~reachwatch.testlists.same_url_key`, and one URL whatever a probe wrote of what HTTP
    leaves implicit: no path is ``/``, the scheme's default port is none (an OONI input
    ``https://www.csmonitor.com`` is the list's ``https://www.csmonitor.com/``)."""
    parts = urlsplit(same_url_key(url))
    if parts.port is not None and _DEFAULT_PORTS.get(parts.scheme) == parts.port:
        parts = parts._replace(netloc=parts.netloc.rsplit(":", 1)[0])
    if not parts.path and parts.scheme in _DEFAULT_PORTS:
        parts = parts._replace(path="/")
    return parts.geturl()
