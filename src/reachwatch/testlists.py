"""Citizen Lab test lists (``url,category_code,category_description,date_added,source,notes``)
and plain URL arguments, read into one typed list of targets."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from reachwatch.errors import UserError
from reachwatch.urls import split_url

HEADER = ("url", "category_code", "category_description", "date_added", "source", "notes")


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    category_code: str = ""
    source: str = ""
    line: int = 0  # the line of ``source`` where the row starts (0: not from a file)

    @property
    def hostname(self) -> str:
        return urlsplit(self.url).hostname or ""


def check_url(url: str, *, where: str) -> str:
    """Return the URL if it is an absolute http(s) URL with a valid host and port, else raise a UserError."""
    url = url.strip()
    _, problem = split_url(url)
    if problem is not None:
        raise UserError(problem, where=where, fix="write the full URL, for example https://example.org/")
    return url


def _rows(text: str, path: Path) -> Iterator[tuple[int, list[str]]]:
    """Each CSV record with the line it starts on (a quoted field may span lines)."""
    # newline="": records end at line breaks only (not at U+2028 and the like), and a quoted field
    # keeps its own line breaks; strict: a stray or unclosed quote is an error, not a guess
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise UserError(
                f"not valid CSV: {exc}",
                where=f"{path}:{line}",
                fix='close every quoted field; write a quote inside one as ""',
            ) from None
        yield line, row
        line = reader.line_num + 1


def read_testlist(path: Path) -> list[Target]:
    """Read a Citizen Lab CSV test list; a bad row is an error naming file and line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError("no such file", where=str(path), fix="check the path of the test list") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"not UTF-8 text ({exc.reason})", where=str(path)) from None
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror}", where=str(path)) from None
    rows = _rows(text, path)
    first = next(rows, None)
    header = None if first is None else first[1]
    if header is None:
        raise UserError(
            "the test list is empty", where=str(path), fix="add the header row " + ",".join(HEADER)
        )
    if [h.strip() for h in header[:1]] != ["url"]:
        raise UserError(
            f"the first row must be the header {','.join(HEADER)!r}, found {','.join(header)!r}",
            where=f"{path}:1",
            fix="use the Citizen Lab test-list format",
        )
    columns = [h.strip() for h in header]
    targets: list[Target] = []
    for lineno, row in rows:
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            raise UserError(
                f"expected {len(columns)} columns ({','.join(columns)}), found {len(row)}",
                where=f"{path}:{lineno}",
                fix="quote fields that contain commas",
            )
        record = dict(zip(columns, row, strict=True))
        url = check_url(record["url"], where=f"{path}:{lineno}")
        targets.append(
            Target(
                url=url, category_code=record.get("category_code", "").strip(), source=str(path), line=lineno
            )
        )
    return targets


def same_url_key(url: str) -> str:
    """What makes two URLs one target: scheme and host are case-insensitive and a host's final dot
    changes nothing (``HTTP://A.example./`` is ``http://a.example/``); the path is kept as written."""
    parts = urlsplit(url)  # a checked URL (check_url): its host and port parse
    host = (parts.hostname or "").rstrip(".")  # urllib gives it in lower case, without brackets
    host = f"[{host}]" if ":" in host else host
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return parts._replace(scheme=parts.scheme.lower(), netloc=netloc).geturl()


def collect_targets(urls: Iterable[str], lists: Iterable[Path]) -> list[Target]:
    """URL arguments then every list, in order, without duplicates (:func:`same_url_key`); the
    first spelling of a URL is the one measured."""
    seen: set[str] = set()
    out: list[Target] = []

    def add(target: Target) -> None:
        key = same_url_key(target.url)
        if key not in seen:
            seen.add(key)
            out.append(target)

    for i, url in enumerate(urls, start=1):
        add(Target(url=check_url(url, where=f"argument {i}")))
    for path in lists:
        for target in read_testlist(path):
            add(target)
    return out
