"""The common UDP reply read without dnspython: one question, only A/AAAA answers, nothing else.

Nearly every reply a probe gets is of that shape: the header, our question echoed, address
records named by a pointer to the question, no authority or additional records. Reading it by
hand costs a few microseconds against dnspython's ~60 (its reply parsing was the probe's largest
Python cost after TLS). Any other reply (a CNAME, a SOA, EDNS, truncation, trailing bytes, a
name written out, a malformed record) returns None and is read by dnspython, as before. What this
returns is what reading the same bytes with dnspython gives (``tests/probe/test_dnsreply.py``
checks both on generated replies): records of one type form one set, whose TTL is the lowest,
repeated addresses count once, sets in order of first appearance.
"""

from __future__ import annotations

import socket
import struct

import dns.ipv6

_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHHIH")  # pointer, type, class, ttl, rdlength
_POINTER_TO_QUESTION = 0xC00C
_A, _AAAA, _IN = 1, 28, 1
_QR, _OPCODE, _TC, _RCODE = 0x8000, 0x7800, 0x0200, 0x000F


def plain_reply(
    data: bytes, qid: int, question: bytes, rdtype: int
) -> tuple[int, list[tuple[int, str, int]]] | None:
    """(rcode, [(rdtype, address, ttl), ...]) of a plain reply to our query, else None.

    ``question``: the question's name in wire form, lower case, as we sent it."""
    if len(data) < 12:
        return None
    rid, flags, qd, an, ns, ar = _HEADER.unpack_from(data)
    if rid != qid or not flags & _QR or flags & (_OPCODE | _TC) or qd != 1 or ns or ar:
        return None
    end = 12 + len(question)
    if data[12:end].lower() != question or data[end : end + 4] != struct.pack("!HH", rdtype, _IN):
        return None
    offset = end + 4
    sets: dict[int, tuple[list[str], list[int]]] = {}  # type -> (addresses, ttls)
    for _ in range(an):
        if offset + 12 > len(data):
            return None
        pointer, rtype, rclass, ttl, length = _RR.unpack_from(data, offset)
        offset += 12
        if pointer != _POINTER_TO_QUESTION or rclass != _IN or offset + length > len(data):
            return None
        rdata = data[offset : offset + length]
        offset += length
        if rtype == _A and length == 4:
            address = socket.inet_ntoa(rdata)
        elif rtype == _AAAA and length == 16:
            address = dns.ipv6.inet_ntoa(rdata)
        else:
            return None
        addresses, ttls = sets.setdefault(rtype, ([], []))
        if address not in addresses:
            addresses.append(address)
        ttls.append(ttl)
    if offset != len(data):
        return None
    answers = [(t, address, min(ttls)) for t, (addresses, ttls) in sets.items() for address in addresses]
    return flags & _RCODE, answers
