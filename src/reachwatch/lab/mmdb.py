"""A small MaxMind DB (mmdb v2) writer: IPv6 tree, 24-bit records, IPv4 under ::/96.

Enough of https://maxmind.github.io/MaxMind-DB/ to write maps of strings/ints/dicts for a few
non-overlapping networks, which ``maxminddb`` then reads like a vendor's file. The lab writes one
for its collector (each ISP's /24 to its ASN, name and country); the collector's tests use it too.
"""

from __future__ import annotations

import ipaddress
import struct
import time
from pathlib import Path
from typing import Any

_META = b"\xab\xcd\xefMaxMind.com"


def _ctrl(type_: int, size: int) -> bytes:
    if size < 29:
        first, extra = size, b""
    elif size < 285:
        first, extra = 29, bytes([size - 29])
    elif size < 65821:
        first, extra = 30, struct.pack(">H", size - 285)
    else:
        first, extra = 31, struct.pack(">I", size - 65821)[1:]
    if type_ <= 7:
        return bytes([(type_ << 5) | first]) + extra
    return bytes([first, type_ - 7]) + extra


def _uint(value: int, type_: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
    return _ctrl(type_, len(raw)) + raw


class U16(int):
    """Encoded as uint16 (libmaxminddb checks the metadata's types)."""


class U64(int):
    """Encoded as uint64."""


def encode(value: Any) -> bytes:
    if isinstance(value, U16):
        return _uint(value, 5)
    if isinstance(value, U64):
        return _uint(value, 9)
    if isinstance(value, bool):
        return _ctrl(14, int(value))
    if isinstance(value, str):
        raw = value.encode()
        return _ctrl(2, len(raw)) + raw
    if isinstance(value, int):
        return _uint(value, 6 if value < 2**32 else 9)
    if isinstance(value, float):
        return _ctrl(3, 8) + struct.pack(">d", value)
    if isinstance(value, dict):
        return _ctrl(7, len(value)) + b"".join(encode(str(k)) + encode(v) for k, v in value.items())
    if isinstance(value, list):
        return _ctrl(11, len(value)) + b"".join(encode(v) for v in value)
    raise TypeError(type(value))


def write(
    path: Path, networks: dict[str, dict[str, Any]], database_type: str = "Test-ASN", ip_version: int = 6
) -> Path:
    """Write ``{"203.0.113.0/24": {...record...}}`` as an mmdb file; networks must not overlap.
    ``ip_version=4``: an IPv4-only tree (32 bits deep), as some vendors' files are."""
    parsed = [ipaddress.ip_network(net, strict=False) for net in networks]
    if ip_version == 4 and any(n.version == 6 for n in parsed):
        raise ValueError("an IPv4-only database cannot hold IPv6 networks")
    width = 32 if ip_version == 4 else 128
    for i, one in enumerate(parsed):
        for other in parsed[i + 1 :]:
            if one.version == other.version and one.overlaps(other):
                raise ValueError(f"networks {one} and {other} overlap")
    data = b""
    offsets: list[int] = []
    records: list[tuple[int, int, int]] = []  # (bits, prefixlen, data index)
    for i, record in enumerate(networks.values()):
        offsets.append(len(data))
        data += encode(record)
        n = parsed[i]
        bits, plen = int(n.network_address), n.prefixlen
        if n.version == 4 and ip_version == 6:
            plen += 96
        records.append((bits, plen, i))
    nodes: list[list[Any]] = [[None, None]]
    for bits, plen, idx in records:
        node = 0
        for depth in range(plen):
            bit = (bits >> (width - 1 - depth)) & 1
            if depth == plen - 1:
                nodes[node][bit] = ("data", idx)
            else:
                if nodes[node][bit] is None:
                    nodes.append([None, None])
                    nodes[node][bit] = ("node", len(nodes) - 1)
                node = nodes[node][bit][1]
    count = len(nodes)

    def value(rec: Any) -> int:
        if rec is None:
            return count
        kind, target = rec
        return target if kind == "node" else count + 16 + offsets[target]

    tree = b"".join(value(left).to_bytes(3, "big") + value(right).to_bytes(3, "big") for left, right in nodes)
    meta = {
        "binary_format_major_version": U16(2),
        "binary_format_minor_version": U16(0),
        "build_epoch": U64(int(time.time())),
        "database_type": database_type,
        "description": {"en": "reachwatch test database"},
        "ip_version": U16(ip_version),
        "languages": ["en"],
        "node_count": count,
        "record_size": U16(24),
    }
    path.write_bytes(tree + b"\x00" * 16 + data + _META + encode(meta))
    return path
