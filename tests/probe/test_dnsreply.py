"""The hand reader of plain DNS replies says what dnspython says of the same bytes, or steps aside."""

from __future__ import annotations

import struct

import dns.message
import dns.name
import dns.rrset
from hypothesis import given, settings
from hypothesis import strategies as st

from reachwatch.probe.dnsreply import plain_reply
from reachwatch.probe.dnsudp import read_reply, read_with_dnspython

QNAME = dns.name.from_text("www.example.com")
QUESTION = (QNAME.to_wire() or b"").lower()
QID = 0x1E73


def record(rtype: int, rdata: bytes, ttl: int = 300, rclass: int = 1, name: bytes = b"\xc0\x0c") -> bytes:
    return name + struct.pack("!HHIH", rtype, rclass, ttl, len(rdata)) + rdata


def reply(
    records: list[bytes],
    *,
    qtype: int = 1,
    flags: int = 0x8180,
    qid: int = QID,
    question: bytes = QUESTION,
    ns: int = 0,
    ar: int = 0,
    tail: bytes = b"",
) -> bytes:
    header = struct.pack("!HHHHHH", qid, flags, 1, len(records), ns, ar)
    return header + question + struct.pack("!HH", qtype, 1) + b"".join(records) + tail


def test_a_plain_answer_is_read_by_hand_as_dnspython_reads_it() -> None:
    data = reply([record(1, bytes([10, 0, 0, 1]), 300), record(1, bytes([10, 0, 0, 2]), 60)])
    assert plain_reply(data, QID, QUESTION, 1) == (0, [(1, "10.0.0.1", 60), (1, "10.0.0.2", 60)])
    assert read_reply(data, QID, QNAME, QUESTION, 1) == read_with_dnspython(data, QID, QNAME, 1)


def test_a_reply_made_by_dnspython_takes_the_hand_path() -> None:
    query = dns.message.make_query(QNAME, "AAAA")
    response = dns.message.make_response(query)
    response.answer.append(dns.rrset.from_text(QNAME, 30, "IN", "AAAA", "2001:db8::1"))
    data = response.to_wire()
    assert plain_reply(data, query.id, QUESTION, 28) == (0, [(28, "2001:db8::1", 30)])


def test_an_address_record_of_another_class_is_no_answer() -> None:
    # it used to raise AttributeError out of datagram_received (dnspython reads it as generic rdata)
    data = reply([record(28, b"\x00" * 4, rclass=3), record(1, bytes([10, 0, 0, 9]))])
    assert read_reply(data, QID, QNAME, QUESTION, 1) == (
        None,
        [{"answer_type": "A", "ipv4": "10.0.0.9", "ttl": 300}],
        True,
    )
    data = reply([record(28, b"\x00" * 16, rclass=4)])
    assert read_reply(data, QID, QNAME, QUESTION, 1) == ("dns_no_answer", [], True)


def test_other_shapes_are_left_to_dnspython() -> None:
    cname = record(5, (dns.name.from_text("cdn.example.net").to_wire() or b""))
    assert plain_reply(reply([cname]), QID, QUESTION, 1) is None
    assert plain_reply(reply([], ns=1, tail=record(6, b"\x00" * 22)), QID, QUESTION, 1) is None
    assert plain_reply(reply([], flags=0x8380), QID, QUESTION, 1) is None  # truncated
    assert plain_reply(reply([], tail=b"\x00"), QID, QUESTION, 1) is None  # trailing bytes
    assert plain_reply(reply([record(1, b"\x01\x02\x03")]), QID, QUESTION, 1) is None  # short A


_uint16 = st.integers(0, 0xFFFF)
_rdata = st.one_of(
    st.binary(min_size=4, max_size=4), st.binary(min_size=16, max_size=16), st.binary(max_size=20)
)
_plain_records = st.lists(
    st.one_of(
        st.builds(
            record,
            rtype=st.just(1),
            rdata=st.binary(min_size=4, max_size=4),
            ttl=st.sampled_from([0, 60, 300]),
        ),
        st.builds(
            record,
            rtype=st.just(28),
            rdata=st.binary(min_size=16, max_size=16),
            ttl=st.sampled_from([60, 300]),
        ),
        st.just(record(1, bytes([10, 0, 0, 1]))),
        st.just(record(28, bytes(15) + b"\x01")),
    ),
    max_size=6,
)
_records = st.lists(
    st.builds(
        record,
        rtype=st.sampled_from([1, 28, 5, 16, 1, 28]),
        rdata=_rdata,
        ttl=st.one_of(st.just(300), st.integers(0, 2**32 - 1)),
        rclass=st.sampled_from([1, 1, 1, 3]),
        name=st.sampled_from([b"\xc0\x0c", b"\xc0\x0c", b"\x00", b"\xc0\x20", QUESTION]),
    ),
    max_size=5,
)


@settings(max_examples=1000, deadline=None)
@given(
    records=st.one_of(_plain_records, _records),
    qtype=st.sampled_from([1, 28, 5]),
    asked=st.sampled_from([1, 28]),
    flags=st.one_of(
        st.sampled_from([0x8180, 0x8180, 0x8183, 0x8185, 0x8100, 0x0100, 0x8380, 0x8980]), _uint16
    ),
    qid=st.sampled_from([QID, QID ^ 1]),
    question=st.sampled_from(
        [QUESTION, QUESTION.upper(), (dns.name.from_text("other.example").to_wire() or b"")]
    ),
    ns=st.sampled_from([0, 0, 1]),
    ar=st.sampled_from([0, 0, 1]),
    tail=st.sampled_from([b"", b"", b"\x00", record(1, b"\x7f\x00\x00\x01")]),
    cut=st.integers(0, 3),
)
def test_the_hand_reader_agrees_with_dnspython(
    records: list[bytes],
    qtype: int,
    asked: int,
    flags: int,
    qid: int,
    question: bytes,
    ns: int,
    ar: int,
    tail: bytes,
    cut: int,
) -> None:
    data = reply(records, qtype=qtype, flags=flags, qid=qid, question=question, ns=ns, ar=ar, tail=tail)
    data = data[: len(data) - cut] if cut < len(data) else data
    assert read_reply(data, QID, QNAME, QUESTION, asked) == read_with_dnspython(data, QID, QNAME, asked)
