"""How much memory a DuckDB store may hold: the default (a share of the machine's) and the check
of ``--db-memory``."""

from __future__ import annotations

import os
import re

from reachwatch.errors import UserError

#: The share of the machine's memory DuckDB may hold by default (its own default, 80 %, let a
#: collector's cache grow with the file it serves: ~60 MB a minute over an 18-minute soak, never
#: given back, an outside check)
MEMORY_SHARE = 0.25
#: ... but never less than this
MEMORY_FLOOR_MB = 256
#: a size as DuckDB's ``memory_limit`` takes it: ``512MB``, ``2GB``, ``1.5GiB``
MEMORY_SIZE = re.compile(r"^\s*[0-9]+(\.[0-9]+)?\s*([KMGT]i?B)\s*$", re.IGNORECASE)


def _physical_memory() -> int | None:
    """The machine's physical memory in bytes, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def default_memory_limit() -> str:
    """:data:`MEMORY_SHARE` of the machine's physical memory, as DuckDB's ``memory_limit``."""
    total = _physical_memory()
    if total is None:
        return "1GB"
    return f"{max(MEMORY_FLOOR_MB, int(total * MEMORY_SHARE) >> 20)}MB"


#: the least ``--db-memory`` takes: below it DuckDB cannot even open the store
MEMORY_LEAST_MB = 64
_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def check_memory_limit(value: str) -> str:
    """``value`` if DuckDB takes it as a size the store can work in (from :data:`MEMORY_LEAST_MB`
    to the machine's memory), else a :class:`UserError` saying what to give."""
    match = MEMORY_SIZE.match(value)
    if not match:
        raise UserError(
            f"{value!r} is not a size",
            where="--db-memory",
            fix="give a number and a unit, like 512MB or 2GB (KB, MB, GB, TB, or KiB...TiB)",
        )
    unit = match.group(2).upper()
    # DuckDB's KB is 1,000 bytes and its KiB 1,024: the difference does not matter for the bounds
    size = float(value.strip()[: -len(unit)]) * _UNITS[unit[0]]
    physical = _physical_memory() or 1 << 50
    if size < MEMORY_LEAST_MB << 20 or size > physical:
        raise UserError(
            f"{value.strip()} is {'too little' if size < MEMORY_LEAST_MB << 20 else 'more than this machine has'}",
            where="--db-memory",
            fix=f"give from {MEMORY_LEAST_MB}MB to the machine's memory ({physical >> 20}MB), as 512MB or 2GB",
        )
    return value.strip()
