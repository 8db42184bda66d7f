"""Which network a submitting address belongs to, from MaxMind DB files (read with ``maxminddb``).

Field names differ by vendor; all are handled:
- MaxMind GeoLite2-ASN and DB-IP Lite ASN: ``autonomous_system_number`` (int),
  ``autonomous_system_organization``;
- MaxMind GeoLite2-Country and DB-IP Lite country: ``country.iso_code`` (else ``registered_country``);
- IPinfo (asn / country_asn / lite): ``asn`` ("AS15169"), ``as_name``, ``country_code`` or ``country``
  (an ISO code in the older files, a name in IPinfo Lite, which has ``country_code``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import maxminddb

from reachwatch.errors import UserError


@dataclasses.dataclass(frozen=True, slots=True)
class Network:
    asn: str | None = None  # "AS64501"
    name: str | None = None
    cc: str | None = None

    @property
    def attributed(self) -> bool:
        """Both the network and its country known from the databases: a row whose ASN or country
        is the probe's own claim is not attributed (the part that was found still replaces the
        claim)."""
        return self.asn is not None and self.cc is not None


def _asn(record: dict[str, Any]) -> tuple[str | None, str | None]:
    number = record.get("autonomous_system_number")
    if isinstance(number, int):
        name = record.get("autonomous_system_organization")
        return f"AS{number}", name if isinstance(name, str) else None
    asn = record.get("asn")
    if isinstance(asn, str) and asn.upper().startswith("AS") and asn[2:].isdigit():
        name = record.get("as_name") or record.get("name")
        return f"AS{int(asn[2:])}", name if isinstance(name, str) else None
    if isinstance(asn, int):
        name = record.get("as_name")
        return f"AS{asn}", name if isinstance(name, str) else None
    return None, None


def _cc(record: dict[str, Any]) -> str | None:
    for key in ("country", "registered_country"):
        value = record.get(key)
        if isinstance(value, dict) and isinstance(value.get("iso_code"), str):
            return str(value["iso_code"]).upper()
    code = record.get("country_code")
    if isinstance(code, str) and len(code) == 2:
        return code.upper()
    country = record.get("country")
    if isinstance(country, str) and len(country) == 2:
        return country.upper()
    return None


class Attributor:
    """Look up an address in an ASN and/or a country database (either may hold both)."""

    def __init__(self, asn_db: Path | None = None, country_db: Path | None = None) -> None:
        self._readers: list[maxminddb.Reader] = []
        for path in (asn_db, country_db):
            if path is None:
                continue
            try:
                self._readers.append(maxminddb.open_database(str(path)))
            except (OSError, maxminddb.InvalidDatabaseError, ValueError) as exc:
                raise UserError(
                    f"cannot read MaxMind DB: {exc}",
                    where=str(path),
                    fix="run `reachwatch geoip update` or pass another --asn-db/--country-db",
                ) from exc

    @property
    def enabled(self) -> bool:
        return bool(self._readers)

    def lookup(self, address: str) -> Network:
        asn = name = cc = None
        for reader in self._readers:
            try:
                record = reader.get(address)
            except ValueError:
                # not an address, or an IPv6 one in an IPv4-only file: this file has nothing to
                # say, which must not drop what the other file said (the ASN of an IPv6 submitter)
                continue
            if not isinstance(record, dict):
                continue
            found_asn, found_name = _asn(record)
            asn = asn or found_asn
            name = name or found_name
            cc = cc or _cc(record)
        return Network(asn, name, cc)

    def close(self) -> None:
        for reader in self._readers:
            reader.close()
