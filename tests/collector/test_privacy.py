"""The submitting address and the probe's own address are nowhere: not stored, not logged, not answered."""

from __future__ import annotations

import base64
import copy
import ipaddress
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.conftest import MINIMAL, OTHER, PROBE_V4, PROBE_V6, collector
from collector.test_app import OPEN, web
from reachwatch.collector.address_spellings import variants
from reachwatch.collector.attribution import Network
from reachwatch.collector.batch import POOLED_LINES
from reachwatch.collector.config import Settings
from reachwatch.collector.http import ApiError
from reachwatch.collector.ipv6_text import MAX_READ
from reachwatch.collector.measurement_json import load
from reachwatch.collector.prepare import stage
from reachwatch.collector.privacy import Scrubber, scrub
from reachwatch.store.schema import IDENTITY, ORJSON_IDENTITY

PROBE_IP = "192.0.2.55"  # the probe's claimed own address


def salted(m: dict[str, Any], addresses: list[str]) -> dict[str, Any]:
    """A measurement carrying the addresses in bodies, headers, TLS, failure strings and keys."""
    m = copy.deepcopy(m)
    text = " and ".join(addresses)
    m["probe_ip"] = PROBE_IP
    tk = m["test_keys"]
    if not tk.get("requests"):
        tk["requests"] = [{"request": {}, "response": {}}]
    req = tk["requests"][0]
    req.setdefault("response", {})["body"] = f"<html>your IP is {text}</html>"
    req["response"]["headers"] = {"X-Client-IP": text}
    req["failure"] = f"connection_reset: read tcp {text}:4433"
    tk["tls_handshakes"] = [{"address": f"{addresses[0]}:443", "peer_certificates": [], "failure": None}]
    tk["x_nested"] = {"deep": [{"deeper": [text, {text: 1}]}]}
    # every other spelling: PTR names, host names with dashes, percent-encoded IPv6 in a URL...
    tk["x_spellings"] = [f"via {v.decode()}.pool.example.net" for a in addresses for v in sorted(variants(a))]
    tk["x_written_otherwise"] = [f"at {v}" for a in addresses for v in written_otherwise(a)]
    # a page that is not UTF-8 (windows-1251), which OONI probes write in base64
    page = f"<html>Ваш IP: {text}</html>".encode("cp1251")
    tk["requests"].append(
        {"request": {}, "response": {"body": {"data": base64.b64encode(page).decode(), "format": "base64"}}}
    )
    return m


def written_otherwise(address: str) -> list[str]:
    """Spellings of an IPv6 address that :func:`variants` does not list (a run of zeros
    compressed elsewhere than the longest, groups padded unevenly); none for IPv4."""
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return []
    groups = [f"{int(g, 16):x}" for g in ip.exploded.split(":")]
    return [
        ":".join(groups[:4]) + "::" + groups[-1],
        ":".join(groups[:-1]).upper() + ":" + groups[-1].zfill(4),
    ]


def base64_values(value: Any) -> list[bytes]:
    """Every ``{"format": "base64", "data": ...}`` value in a measurement, decoded."""
    if isinstance(value, dict):
        if value.get("format") == "base64" and isinstance(value.get("data"), str):
            return [base64.b64decode(value["data"])]
        return [b for v in value.values() for b in base64_values(v)]
    if isinstance(value, list):
        return [b for v in value for b in base64_values(v)]
    return []


def test_variants_cover_ipv6_spellings() -> None:
    got = variants("2001:db8::1")
    assert b"2001:db8::1" in got and b"2001:0db8:0000:0000:0000:0000:0000:0001" in got
    assert variants("127.0.0.1") == set()
    assert b"192.0.2.1" in variants("::ffff:192.0.2.1")


def test_variants_cover_host_names_ptr_names_and_urls() -> None:
    assert {b"192-0-2-55", b"55.2.0.192", b"55-2-0-192"} <= variants("192.0.2.55")
    v6 = variants("2001:db8::1")
    assert {b"2001%3Adb8%3A%3A1", b"2001%3adb8%3a%3a1", b"2001%3ADB8%3A%3A1"} <= v6
    assert b"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa" in v6
    scrubber = Scrubber(["192.0.2.55", "2001:db8::1"])
    data = orjson.dumps(
        {
            "host": "ec2-192-0-2-55.compute-1.amazonaws.com",
            "ptr": "55.2.0.192.in-addr.arpa.",
            "url": "http://block.example/?ip=2001%3Adb8%3A%3A1&again=2001%3adb8%3a%3a1",
        }
    )
    out = orjson.loads(scrubber.json(data))
    assert out == {
        "host": "ec2-[scrubbed].compute-1.amazonaws.com",
        "ptr": "[scrubbed].in-addr.arpa.",
        "url": "http://block.example/?ip=[scrubbed]&again=[scrubbed]",
    }


@pytest.mark.parametrize(
    "spelling",
    [
        # an IPv4 address mapped into IPv6, written in hex (10.20.30.40 = 0a14:1e28)
        "::ffff:a14:1e28",
        "::ffff:0a14:1e28",
        "0:0:0:0:0:ffff:a14:1e28",
        "0000:0000:0000:0000:0000:ffff:0a14:1e28",
        "::FFFF:A14:1E28",
        "::ffff%3Aa14%3A1e28",
        "::ffff:10.20.30.40",
        # reverse DNS names, forwards and backwards
        "40-30-20-10.pool.isp.example",
        "40.30.20.10.dyn.isp.example",
        "host-10-20-30-40.isp.example",
        "40.30.20.10.in-addr.arpa",
        # zero-padded, percent-encoded dots
        "010.020.030.040",
        "10%2E20%2E30%2E40",
        "10%2e20%2e30%2e40",
        # found kept by an outside check (session 17): the hex letters in mixed case, an
        # uncompressed form with a group padded, the dots' percent-encoding in mixed case
        "::FFFF:a14:1e28",
        "::FFff:A14:1e28",
        "0:0:0:0:0:ffff:0a14:1e28",
        "%3A%3AFFFF%3aa14%3A1E28",
        "10%2e20.30%2E40",
        # decided then: padded unevenly, IPv4-compatible, NAT64's well-known prefix
        "010.20.030.40",
        "10.20.30.040",
        "::a14:1e28",
        "::10.20.30.40",
        "64:ff9b::a14:1e28",
        "64:FF9B::10.20.30.40",
    ],
)
def test_the_spellings_of_an_ipv4_address_seen_in_measurements(spelling: str) -> None:
    """Found missing by an outside check (session 13): the docs promised the IPv4-mapped forms;
    the same in a base64 body (session 17), in an ASCII-compatible encoding and in UTF-16."""
    scrubber = Scrubber(["10.20.30.40"])
    out = scrubber.json(orjson.dumps({"body": f"you are {spelling} today"})).decode()
    assert not _kept_of_10_20_30_40(out), out
    for codec in ("cp1251", "utf-16-le"):
        page = f"<p>Ваш IP {spelling}</p>".encode(codec)
        data = orjson.dumps({"body": {"data": base64.b64encode(page).decode(), "format": "base64"}})
        text = base64.b64decode(orjson.loads(scrubber.json(data))["body"]["data"]).decode(codec)
        assert not _kept_of_10_20_30_40(text), text


def _kept_of_10_20_30_40(text: str) -> list[str]:
    """What is left of 10.20.30.40 in ``text`` once ``[scrubbed]`` is taken out: its octet 20, or
    its hex groups (0a14:1e28) in either case."""
    rest = text.replace("[scrubbed]", "").lower()
    return [part for part in ("20", "a14", "1e28") if part in rest]


@pytest.mark.parametrize(
    "spelling", ["2001-db8-85a3--8a2e-370-7334.ipv6.example", "2001-DB8-85A3--8A2E-370-7334"]
)
def test_an_ipv6_address_in_a_host_name(spelling: str) -> None:
    out = Scrubber(["2001:db8:85a3::8a2e:370:7334"]).json(orjson.dumps({"host": spelling}))
    assert b"7334" not in out, out


@pytest.mark.parametrize(
    ("spelling", "scrubbed"),
    [
        ("2001:db8:0::5", "[scrubbed]"),  # a run of zeros compressed, but not the longest
        ("2001:db8::0:0:5", "[scrubbed]"),
        ("2001:DB8:0:0:0::5", "[scrubbed]"),
        ("2001:Db8::5", "[scrubbed]"),  # mixed case
        ("2001:0db8::0005", "[scrubbed]"),  # groups padded unevenly
        ("2001:0DB8:0:0:0:0:0:0005", "[scrubbed]"),
        ("[2001:db8:0::5]:443", "[[scrubbed]]:443"),
        ("2001:db8:0::5.", "[scrubbed]."),  # the end of a sentence
        ("2001:db8:0::5.pool.example", "[scrubbed].pool.example"),
        # found kept by an outside check (session 17): colons as dashes in another than the
        # compressed form, the PTR name in upper case, colons percent-encoded in mixed case or
        # around a run of zeros compressed elsewhere than the longest
        ("2001-0db8-0000-0000-0000-0000-0000-0005", "[scrubbed]"),
        ("2001-db8-0-0-0-0-0-5.ipv6.example", "[scrubbed].ipv6.example"),
        ("2001-DB8-0--5", "[scrubbed]"),
        ("5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.IP6.ARPA", "[scrubbed]"),
        ("5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.Ip6.Arpa.", "[scrubbed]."),
        ("2001%3adb8%3A%3a5", "[scrubbed]"),
        ("2001%3Adb8%3A0%3A%3A5", "[scrubbed]"),
        ("http://[2001%3Adb8%3A0%3A%3A5]/", "http://[[scrubbed]]/"),
    ],
)
def test_an_ipv6_address_in_any_valid_spelling(spelling: str, scrubbed: str) -> None:
    """Found missing (session 15): only the listed spellings were sought; and (session 17) the
    listed ones were replaced only as listed, in one case and one separator."""
    scrubber = Scrubber(["2001:db8::5"])
    out = scrubber.json(orjson.dumps({"body": f"you are {spelling} today", spelling: 1}))
    assert orjson.loads(out) == {"body": f"you are {scrubbed} today", scrubbed: 1}
    assert scrubber.text(f"at {spelling}") == f"at {scrubbed}"
    for codec in ("cp1251", "utf-16-le", "utf-16-be"):
        page = f"<p>Ваш IP {spelling}</p>".encode(codec)
        data = orjson.dumps({"body": {"data": base64.b64encode(page).decode(), "format": "base64"}})
        text = base64.b64decode(orjson.loads(scrubber.json(data))["body"]["data"]).decode(codec)
        assert text == f"<p>Ваш IP {scrubbed}</p>", (codec, text)


#: what an outside check (session 17) found kept of a submitter 127.0.1.2 and a probe_ip
#: 2001:db8:12:34::5, as text and in base64 bodies, with what was decided then
_SURVIVORS = [
    "::FFFF:7f00:102",
    "::FFff:7F00:102",
    "0:0:0:0:0:ffff:7f00:0102",
    "2001-0db8-0012-0034-0000-0000-0000-0005",
    "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.4.3.0.0.2.1.0.0.8.B.D.0.1.0.0.2.IP6.ARPA",
    "2001%3adb8%3A12%3a34%3A%3A5",
    "2001%3Adb8%3A12%3A34%3A0%3A%3A5",
    # decided: sought
    "127.0.1.002",
    "127.0.01.2",
    "::7f00:102",
    "64:ff9b::7f00:102",
    "127%2e0.1%2E2",
]


@pytest.mark.parametrize("spelling", _SURVIVORS)
@pytest.mark.parametrize("where", ["text", "base64", "base64 utf-16"])
def test_the_spellings_an_outside_check_found_kept(spelling: str, where: str) -> None:
    """The scrubber found these (its search is of a folded copy: lower case, dashes as dots) and
    replaced only the listed spellings byte for byte, so a mix of cases or separators stayed."""
    scrubber = Scrubber(["127.0.1.2", "2001:db8:12:34::5"])
    if where == "text":
        out = orjson.loads(scrubber.json(orjson.dumps({"body": f"x {spelling} y", spelling: 1})))
        assert out == {"body": "x [scrubbed] y", "[scrubbed]": 1}
        assert scrubber.text(f"x {spelling} y") == "x [scrubbed] y"
        return
    codec = "utf-16-le" if where == "base64 utf-16" else "cp1251"
    page = f"<p>Ваш IP {spelling}</p>".encode(codec)
    data = orjson.dumps({"b": {"data": base64.b64encode(page).decode(), "format": "base64"}})
    out = orjson.loads(scrubber.json(data))
    assert base64.b64decode(out["b"]["data"]).decode(codec) == "<p>Ваш IP [scrubbed]</p>"


def test_whole_spellings_are_replaced_each_time() -> None:
    """Each occurrence whole: the zeros before a first octet padded, an IPv4 address with the
    IPv6 prefix embedding it, a spelling half percent-encoded with what is around it kept."""
    scrubber = Scrubber(["10.20.30.40", "2001:db8::5"])
    assert (
        scrubber.text("010.020.030.040, 010.20.030.40, 10.020.30.40.")
        == "[scrubbed], [scrubbed], [scrubbed]."
    )
    assert (
        scrubber.text("::ffff:10.20.30.40 64:FF9B::10.20.30.40 ::10.20.30.40")
        == "[scrubbed] " * 2 + "[scrubbed]"
    )
    assert (
        scrubber.text("?a=%2F&ip=2001%3ADB8%3a0%3A%3A5%2C10%2e20.30%2E40&b=%3a")
        == "?a=%2F&ip=[scrubbed]%2C[scrubbed]&b=%3a"
    )
    assert scrubber.text("2001-db8--5-a.example and 2001:db8::5-2") == "[scrubbed]-a.example and [scrubbed]-2"


#: one separator of an address percent-encoded or not, in either case
_SEPARATOR = {
    ".": st.sampled_from([".", "%2e", "%2E", "-"]),
    ":": st.sampled_from([":", "%3a", "%3A", "-"]),
}


@st.composite
def _mixed_spelling(draw: st.DrawFn) -> str:
    """A spelling of 10.20.30.40 or 2001:db8:12:34::5 with each separator and letter written as
    any writer may: percent-encoded or not, dashes, either case."""
    spelling = draw(st.sampled_from([*_SURVIVORS[:7], "10.20.30.40", "40.30.20.10", "::ffff:a14:1e28"]))
    out = []
    for char in spelling:
        out.append(
            draw(_SEPARATOR[char])
            if char in _SEPARATOR
            else draw(st.sampled_from([char.lower(), char.upper()]))
        )
    return "".join(out)


#: text around an address that is no part of it: JSON escapes included (``\\u0001``, ``\\f``)
_AROUND = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="0123456789abcdefABCDEF:.-%"),
    max_size=6,
)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(_AROUND, _mixed_spelling(), _AROUND), min_size=1, max_size=4))
def test_mixed_spellings_leave_nothing_of_the_address(parts: list[tuple[str, str, str]]) -> None:
    """Spans found in the folded and percent-decoded copy are replaced at the same place of the
    text as written: the JSON stays valid and no spelling is left, decoded or not."""
    scrubber = Scrubber(["127.0.1.2", "10.20.30.40", "2001:db8:12:34::5"])
    text = " ".join(a + b + c for a, b, c in parts)
    out = orjson.loads(scrubber.json(orjson.dumps({"v": text, text: 1})))
    assert len(out) == 2
    for left in (out["v"], *out):
        plain = left.lower().replace("%2e", ".").replace("%3a", ":").replace("-", ".")
        for spelling in (
            "10.20.30.40",
            "40.30.20.10",
            "7f00",
            "a14.1e28",
            "a14:1e28",
            "2001:db8:12:34",
            "2001.db8.12.34",
        ):
            assert spelling not in plain.replace("[scrubbed]", " "), left


@pytest.mark.parametrize(
    "text",
    [
        "2130706690",  # 127.0.1.2 as an integer
        "0x7f000102",
        "0x7F000102",
        "0177.0.1.2",  # octal, as inet_aton reads it
        "127_0_1_2",
        "20010db8001200340000000000000005",  # 2001:db8:12:34::5, hex without colons
    ],
)
def test_spellings_not_sought_are_kept(text: str) -> None:
    """Documented as not sought (docs/collector.md, "Privacy"): as a number, replacing them
    would break the JSON and reach unrelated numbers (an ASN, a byte count, a timestamp)."""
    scrubber = Scrubber(["127.0.1.2", "2001:db8:12:34::5"])
    data = orjson.dumps({"s": f"x {text} y", "n": int(text) if text.isdigit() else 0})
    assert scrubber.json(data) is data


@pytest.mark.parametrize(
    "text",
    [
        "2001:db8::6",  # the probe's resolver, in the same network
        "2001:db8:0::5:6",
        "2001:db8.example",
        "2001:db8:5::",
    ],
)
def test_other_ipv6_addresses_of_the_network_are_kept(text: str) -> None:
    data = orjson.dumps({"body": text})
    assert Scrubber(["2001:db8::5"]).json(data) == data


def test_an_ipv6_address_written_otherwise_after_a_json_escape() -> None:
    data = orjson.dumps({"body": "\x012001:db8:0::5 and 2001:db8:0:0::5.example"})
    out = Scrubber(["2001:db8::5"]).json(data)
    assert orjson.loads(out) == {"body": "\x01[scrubbed] and [scrubbed].example"}


@pytest.mark.parametrize(
    "text",
    [
        "\x080:0:0:0:0:ffff:7f00-0102",  # \b, then a mapped form padded unevenly with a dash
        "\x010:0:0:0:0:ffff:7f00:0102",  # \u0001, then one a listed spelling is no part of
        "\x0c2001-db8-0--5.example",  # \f, then dashes for colons
        "\x1f::FFFF%3A7F00%3a102",
    ],
)
def test_a_spelling_read_after_a_json_escape(text: str) -> None:
    """An escape's hex digits run into the address's (found by the hypothesis test below): the
    text is read from after them too, and the escape kept whole."""
    out = Scrubber(["127.0.1.2", "2001:db8::5"]).json(orjson.dumps({"v": text}))
    assert orjson.loads(out)["v"] == text[0] + "[scrubbed]" + (".example" if "example" in text else "")


@pytest.mark.parametrize(
    "probe_ip", ["10.20.30.49/32", "10.20.30.51, 10.20.30.49", "10.20.30.49;10.20.30.51"]
)
def test_a_probe_ip_naming_a_network_or_several_addresses(probe_ip: str) -> None:
    out = Scrubber(["127.0.0.1", probe_ip]).json(orjson.dumps({"body": "at 10.20.30.49"}))
    assert out == b'{"body":"at [scrubbed]"}'


def test_unpadded_base64_is_scrubbed_and_stays_unpadded() -> None:
    body = base64.b64encode(b"\xffyou are 10.20.30.40").rstrip(b"=").decode()  # 20 bytes: one "=" left out
    assert not body.endswith("=")
    out = orjson.loads(
        Scrubber(["10.20.30.40"]).json(orjson.dumps({"b": {"data": body, "format": "base64"}}))
    )
    data = out["b"]["data"]
    assert not data.endswith("=")
    assert base64.b64decode(data + "=" * (-len(data) % 4)) == b"\xffyou are [scrubbed]"


@pytest.mark.parametrize(
    "layout",
    [
        lambda m: json.dumps(m).encode(),  # "data": "...", "format": "base64"
        lambda m: json.dumps(m, indent=2).encode(),
        lambda m: orjson.dumps(m).replace(b"/", b"\\/"),  # slashes escaped, as PHP's encoder does
    ],
)
def test_base64_values_are_scrubbed_in_any_layout(layout: Any) -> None:
    """test_keys are stored as sent, so a base64 value may come laid out or with its slashes
    escaped: it is still decoded, scrubbed and encoded again, and the JSON stays valid."""
    page = b"\xff\xfe\xfd IP 192.0.2.1 ??>>"  # base64 with slashes
    encoded = base64.b64encode(page).decode()
    assert "/" in encoded
    text = layout({"b": {"data": encoded, "format": "base64"}, "c": {"format": "base64", "data": encoded}})
    out = orjson.loads(Scrubber(["192.0.2.1"]).json(text))
    assert (
        base64.b64decode(out["b"]["data"])
        == base64.b64decode(out["c"]["data"])
        == b"\xff\xfe\xfd IP [scrubbed] ??>>"
    )


def test_scrub_reaches_every_string() -> None:
    m = {"probe_ip": "192.0.2.1", "a": ["x 192.0.2.1 y", {"192.0.2.1": "ok"}], "b": {"c": "2001:DB8::1"}}
    out = scrub(m, ["192.0.2.1", "2001:db8::1"])
    blob = orjson.dumps(out)
    assert b"192.0.2.1" not in blob and b"2001:DB8::1" not in blob
    assert out["probe_ip"] == "127.0.0.1" and out["a"][0] == "x [scrubbed] y"


@pytest.mark.parametrize("order", ["data first", "format first"])
def test_base64_values_are_scrubbed_inside(order: str) -> None:
    """A body that is not UTF-8 travels as base64: the address is sought in the decoded bytes, in
    an ASCII-compatible encoding and in UTF-16 both ways; values without it are left as they are."""
    scrubber = Scrubber(["192.0.2.1", "2001:db8::1"])
    pages = [
        "IP 192.0.2.1 здесь".encode("cp1251"),
        "IP 2001:DB8::1".encode("shift_jis"),
        "IP 192.0.2.1".encode("utf-16-le"),
        "IP 192.0.2.1".encode("utf-16-be"),
    ]
    untouched = base64.b64encode(b"\xff\xfe nothing here").decode()

    def value(data: str) -> dict[str, str]:
        return (
            {"data": data, "format": "base64"}
            if order == "data first"
            else {"format": "base64", "data": data}
        )

    m = {"bodies": [value(base64.b64encode(p).decode()) for p in pages], "other": value(untouched)}
    out = orjson.loads(scrubber.json(orjson.dumps(m)))
    decoded = [base64.b64decode(v["data"]) for v in out["bodies"]]
    assert decoded == [
        "IP [scrubbed] здесь".encode("cp1251"),
        b"IP [scrubbed]",
        "IP [scrubbed]".encode("utf-16-le"),
        "IP [scrubbed]".encode("utf-16-be"),
    ]
    assert out["other"]["data"] == untouched
    clean = orjson.dumps({"other": value(untouched)})
    assert scrubber.json(clean) is clean


def stored_files(where: Path) -> bytes:
    """Every file the collector wrote for ``m.duckdb``: the database, its WAL, its journal's segments."""
    return b"".join(p.read_bytes() for p in sorted(where.rglob("*")) if p.is_file() and "m.duckdb" in str(p))


@pytest.mark.parametrize("submitter", [PROBE_V4, PROBE_V6])
async def test_addresses_nowhere(
    submitter: str,
    tmp_path: Path,
    geo_dbs: tuple[Path, Path],
    real_measurements: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    addresses = [submitter, PROBE_IP]
    db = tmp_path / "m.duckdb"
    ms = [salted(m, addresses) for m in web(real_measurements)[:5]]
    outputs: list[bytes] = []
    async with collector(
        Settings(store=str(db), asn_db=geo_dbs[0], country_db=geo_dbs[1], rate=0, admin_token="t0ken"),
        client=submitter,
    ) as (_, http):
        rid = (await http.post("/report", json=OPEN)).json()["report_id"]
        r = await http.post(f"/report/{rid}", json={"format": "json", "content": ms[0]})
        outputs.append(r.content)
        r = await http.post("/api/v1/measurements", content=b"\n".join(orjson.dumps(m) for m in ms[1:]))
        outputs.append(r.content)
        bad = await http.post("/api/v1/measurements", content=orjson.dumps({**ms[1], "probe_cc": submitter}))
        assert bad.status_code == 422
        outputs.append(bad.content)
        uids = [orjson.loads(outputs[0])["measurement_uid"], *orjson.loads(outputs[1])["measurement_uids"]]
        for uid in uids:
            got = await http.get(f"/api/v1/measurement/{uid}")
            outputs.append(got.content)
            stored = got.json()
            assert stored["probe_ip"] == "127.0.0.1"
            assert "[scrubbed]" in stored["test_keys"]["requests"][0]["response"]["body"]
            decoded = base64_values(stored)
            assert any("[scrubbed]".encode("cp1251") in d for d in decoded)
            outputs += decoded
        outputs.append((await http.get("/api/v1/measurements", params={"limit": 100})).content)
        outputs.append((await http.get("/api/v1/aggregation", params={"axis_x": "probe_asn"})).content)
        outputs.append(
            (await http.post("/api/v1/admin/reanalyse", headers={"authorization": "Bearer t0ken"})).content
        )
    files = stored_files(tmp_path)
    assert files, "the DuckDB file should exist"
    logs = caplog.text.encode()
    for address in addresses:
        for needle in variants(address) | {v.encode() for v in written_otherwise(address)}:
            assert needle not in files, f"{address} stored in the DuckDB file"
            assert all(needle not in out for out in outputs), f"{address} in an API answer"
            assert needle not in logs, f"{address} in the logs"


async def test_scrubbed_through_json_escapes_and_in_columns(
    tmp_path: Path, geo_dbs: tuple[Path, Path], real_measurements: list[dict[str, Any]]
) -> None:
    """An address spelt with JSON escapes (``\\u002e``) or carried in a column (input, network
    name, category, report id) is scrubbed too: scrubbing works on the parsed measurement."""
    db = tmp_path / "m.duckdb"
    m = copy.deepcopy(web(real_measurements)[0])
    m["probe_ip"] = PROBE_IP
    m["input"] = f"http://{PROBE_IP}/status"
    m["probe_network_name"] = f"home {PROBE_V4}"
    m["report_id"] = f"r-{PROBE_IP}"
    m["annotations"] = {"category_code": PROBE_IP}
    escaped = PROBE_V4.replace(".", "\\u002e").encode()
    line = orjson.dumps(m).replace(b'"report_id"', b'"x_escaped":"at ' + escaped + b'","report_id"', 1)
    assert escaped in line and PROBE_V4.encode() not in line.split(b"x_escaped")[1][:40]
    async with collector(
        Settings(store=str(db), asn_db=geo_dbs[0], country_db=geo_dbs[1], rate=0), client=PROBE_V4
    ) as (app, http):
        r = await http.post("/api/v1/measurements", content=line)
        assert r.status_code == 200, r.text
        uid = r.json()["measurement_uids"][0]
        await app.state.ingestor.settled()
        stored = (await http.get(f"/api/v1/measurement/{uid}")).json()
        listing = (await http.get("/api/v1/measurements")).content
    assert stored["x_escaped"] == "at [scrubbed]" and stored["input"] == "http://[scrubbed]/status"
    files = stored_files(tmp_path)
    for address in (PROBE_V4, PROBE_IP):
        for needle in variants(address):
            assert needle not in files and needle not in listing
            assert needle not in orjson.dumps(stored)


def test_variants_of_a_probe_ip_with_port_zone_or_brackets() -> None:
    """A probe_ip as some probes write it names the address inside; and an IPv6 address is
    scrubbed however it is spelt out (``2001:db8:0:0:0:0:0:7``: no ``::``, no leading zeros)."""
    assert variants("192.0.2.55:4433") == variants("192.0.2.55")
    assert b"192.0.2.55" in variants("192.0.2.55:4433")
    assert b"2001:db8::7" in variants("[2001:db8::7]:443")
    assert b"2001:db8:0:0:0:0:0:7" in variants("2001:db8::7")
    assert b"2001:DB8:0:0:0:0:0:7" in variants("2001:db8::7")
    # CPython's ``exploded`` raises on a zoned address; the zone is not part of the address
    assert b"fe80::1" in variants("fe80::1%eth0")


@pytest.mark.parametrize("probe_ip", ['"test_keys"', "web_connectivity", '":true,"'])
def test_a_probe_ip_that_is_no_address_scrubs_nothing(probe_ip: str) -> None:
    """Its bytes replaced in the serialised measurement broke the stored JSON (``"test_keys"``)
    or scrubbed the measurement's own values (``web_connectivity``)."""
    assert variants(probe_ip) == set()
    m = {"probe_ip": probe_ip, "test_name": "web_connectivity", "test_keys": {"x": [True, "y"]}}
    out = scrub(copy.deepcopy(m), [probe_ip])
    assert out["test_keys"] == m["test_keys"] and out["test_name"] == "web_connectivity"


@pytest.mark.parametrize(
    ("probe_ip", "spelling"),
    [
        ("fe80::1%eth0", "fe80::1"),
        ("192.0.2.55:4433", "192.0.2.55"),
        ("2001:db8::7", "2001:db8:0:0:0:0:0:7"),
        ('"test_keys"', None),
    ],
)
async def test_odd_probe_ips_are_stored_scrubbed_and_valid(
    probe_ip: str,
    spelling: str | None,
    tmp_path: Path,
    real_measurements: list[dict[str, Any]],
) -> None:
    """Through a real collector: a zoned probe_ip was a 500, a JSON fragment one stored JSON that
    no longer parsed, and the address behind a port or spelt out stayed in the stored bodies."""
    m = copy.deepcopy(web(real_measurements)[0])
    m["probe_ip"] = probe_ip
    m["test_keys"]["x_seen"] = f"your address: {spelling}"
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0), client="127.0.0.1") as (_, http):
        r = await http.post("/api/v1/measurements", content=orjson.dumps(m))
        assert r.status_code == 200, r.text
        got = await http.get(f"/api/v1/measurement/{r.json()['measurement_uids'][0]}")
    stored = orjson.loads(got.content)  # valid JSON
    assert stored["test_name"] == "web_connectivity" and stored["probe_ip"] == "127.0.0.1"
    if spelling is not None:
        assert stored["test_keys"]["x_seen"] == "your address: [scrubbed]"
        assert spelling.encode() not in got.content


@pytest.mark.parametrize("submitter", ["127.0.1.7", "::ffff:127.0.1.7"])
async def test_loopback_addresses_but_the_placeholder_are_scrubbed(
    submitter: str, tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """Every loopback address but 127.0.0.1 (and ::1) was left as sent, though the docs promise
    the submitter's and probe_ip's are scrubbed: a probe on 127.0.9.9 sharing the collector's
    host, or a submitter on 127.0.1.7, was stored and answered as is."""
    assert variants("127.0.1.7") and variants("127.0.0.1") == set() and variants("::1") == set()
    m = copy.deepcopy(web(real_measurements)[0])
    m["probe_ip"] = "127.0.9.9"
    m["test_keys"]["x_seen"] = "from 127.0.1.7 and 127.0.9.9, placeholder 127.0.0.1"
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0), client=submitter) as (_, http):
        r = await http.post("/api/v1/measurements", content=orjson.dumps(m))
        assert r.status_code == 200, r.text
        got = await http.get(f"/api/v1/measurement/{r.json()['measurement_uids'][0]}")
    stored = orjson.loads(got.content)
    assert stored["test_keys"]["x_seen"] == "from [scrubbed] and [scrubbed], placeholder 127.0.0.1"
    assert stored["probe_ip"] == "127.0.0.1"
    assert b"127.0.1.7" not in stored_files(tmp_path) and b"127.0.9.9" not in stored_files(tmp_path)


_ADDRESSES = ["192.0.2.55", "2001:db8::1"]
_SPELLINGS = sorted(s.decode() for a in _ADDRESSES for s in variants(a))
#: text around the addresses: JSON's own characters and escapes included
_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
_SALTED = st.builds(lambda a, b, c: a + b + c, _TEXT, st.sampled_from(_SPELLINGS), _TEXT) | _TEXT
_BODY = st.builds(
    lambda text, codec, first: (
        {"data": base64.b64encode(text.encode(codec, "replace")).decode(), "format": "base64"}
        if first
        else {"format": "base64", "data": base64.b64encode(text.encode(codec, "replace")).decode()}
    ),
    _SALTED,
    st.sampled_from(["utf-8", "cp1251", "utf-16-le", "utf-16-be"]),
    st.booleans(),
)
_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _SALTED
    | _BODY,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_SALTED, inner, max_size=4),
    max_leaves=12,
)


def _strings(value: Any) -> list[bytes]:
    """Every string of a JSON value as UTF-8, keys included, base64 values decoded too."""
    if isinstance(value, str):
        return [value.encode()]
    if isinstance(value, list):
        return [b for v in value for b in _strings(v)]
    if isinstance(value, dict):
        return [b for k, v in value.items() for b in (*_strings(k), *_strings(v))] + base64_values(value)
    return []


@settings(max_examples=300, deadline=None)
@given(_VALUES)
def test_scrubbing_keeps_json_valid_and_leaves_no_spelling(value: Any) -> None:
    """Whatever the JSON around them, the scrubbed bytes are JSON again, and no spelling of the
    addresses is left in any string or decoded base64 body (UTF-16 ones included)."""
    scrubber = Scrubber(_ADDRESSES)
    out = orjson.loads(scrubber.json(orjson.dumps(value)))
    found = b"\n".join(_strings(out))
    for spelling in _SPELLINGS:
        for codec in ("utf-8", "utf-16-le", "utf-16-be"):
            assert spelling.encode(codec) not in found


#: test_keys texts as probes write them, each holding the submitter's address (PROBE_V4) or the
#: probe's (PROBE_V6) where a byte replacement over the text as sent would miss it: escaped digits,
#: dots and letters, right after an escape that ends in a hex digit (Go's ``\u003e``), in a key, in
#: a base64 body laid out by Python with its slashes escaped
_ESCAPED_TEST_KEYS = [
    rb'{"client_resolver":"203\u002e0.113\u002e77"}',
    rb'{"body":"\u003ctd\u003e203.0.113.77\u003c/td\u003e"}',
    rb'{"body":"\u003ctd\u003e2001:db8:1::77\u003c/td\u003e"}',
    rb'{"body":"\u003e2001:DB8:1::77"}',
    rb'{"\u003e203.0.113.77":1}',
    rb'{"s":"\u0032\u0030\u0033.0.113.77"}',
    rb'{"s":"77.113.0.203.i\u006e-addr.arpa"}',
    b'{"a":1,"body":{"data": "%s", "format": "base64"}}'
    % base64.b64encode(b"\xff\xfe\xfd 203.0.113.77 ??>>").replace(b"/", b"\\/"),
]


@pytest.mark.parametrize("test_keys", _ESCAPED_TEST_KEYS)
async def test_addresses_are_scrubbed_through_json_escapes_on_every_path(
    tmp_path: Path, test_keys: bytes
) -> None:
    """test_keys holding an address behind JSON escapes are scrubbed of it in the collector's own
    process and in the batch workers, and what is stored is valid JSON."""
    top = {k: v for k, v in MINIMAL.items() if k != "test_keys"}
    line = orjson.dumps({**top, "probe_ip": PROBE_V6, "input": "https://a.example/"})[:-1]
    lines = [line + b',"x_n":%d,"test_keys":' % i + test_keys + b"}" for i in range(POOLED_LINES)]
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0), client=PROBE_V4) as (app, http):
        one = await http.post("/api/v1/measurements", content=lines[0])
        many = await http.post("/api/v1/measurements", content=b"\n".join(lines))  # in the workers
        assert one.status_code == many.status_code == 200, many.text
        await app.state.ingestor.settled()
        uids = [one.json()["measurement_uids"][0], many.json()["measurement_uids"][-1]]
        stored = [(await http.get(f"/api/v1/measurement/{uid}")).content for uid in uids]
    for text in stored:
        m = orjson.loads(text)
        flat = orjson.dumps(m["test_keys"]) + b" ".join(base64_values(m))  # escapes undone
        assert b"[scrubbed]" in flat
        for address in (PROBE_V4, PROBE_V6):
            assert not any(needle in flat.lower() for needle in variants(address)), flat


@pytest.mark.parametrize(
    ("address", "text", "expected"),
    [
        # written \u000127.0.5.9: the bytes spell the address, the string does not
        ("127.0.5.9", "\x0127.0.5.9", "\x01[scrubbed]"),
        ("127.0.5.9", "\x01127.0.5.9", "\x01[scrubbed]"),
        ("127.0.5.9", "\x0127.0.5.9 or 127.0.5.9", "\x01[scrubbed] or [scrubbed]"),
        ("127.0.5.9", "\x127.0.5.9", "\x12[scrubbed]"),  # \u00127.0.5.9
        ("2001:db8::5", "\x02001:db8::5", "\x02[scrubbed]"),  # \u0002001:db8::5
        ("e::5", "\x0e::5", "\x0e[scrubbed]"),  # \u000e::5
        ("fe80::5", "\x0ce80::5", "\x0c[scrubbed]"),  # \fe80::5
        ("fe80::5", "\x0cfe80::5", "\x0c[scrubbed]"),
        ("b::5", "\x08::5", "\x08[scrubbed]"),  # \b::5
        ("127.0.5.9", "\\127.0.5.9", "\\[scrubbed]"),  # an escaped backslash, then the address
    ],
)
def test_scrubbing_keeps_json_escapes_whole(address: str, text: str, expected: str) -> None:
    r"""Every JSON writer escapes control characters (``\u0001``, ``\f``), and the escape's text
    with what follows can spell an address. Replacing from there wrote invalid JSON
    (``\u000[scrubbed]``) that the collector stored and served and the analysis could not read.
    The escape is kept whole and the rest of the spelling replaced: valid JSON, and no spelling of
    the address left in the stored bytes (erring towards scrubbing, as everywhere)."""
    m = {**MINIMAL, "probe_ip": "127.0.0.1", "test_keys": {"v": text, text: 1}}
    staged = stage(load(orjson.dumps(m)), b"k" * 32, False, address, Network(), identity=IDENTITY)
    assert orjson.loads(staged.stored)["test_keys"] == {"v": expected, expected: 1}
    assert not any(needle in staged.stored.lower() for needle in variants(address))
    # a column's text is no JSON: its backslashes are characters, and the address after them goes
    literal = orjson.dumps(text).decode()[1:-1]
    assert address.encode() not in Scrubber([address]).text(literal).encode().lower()


@pytest.mark.parametrize("codec", ["cp1251", "utf-16-le", "utf-16-be", "utf-16"])
@pytest.mark.parametrize("spelling", ["2001:db8:1234:0::5", "2001:Db8:1234::5", "2001:db8:1234::0005"])
def test_an_ipv6_address_written_otherwise_in_a_base64_body(codec: str, spelling: str) -> None:
    """A page that is not UTF-8 (OONI writes it in base64) showing the visitor's IPv6 address in a
    spelling of its own kept it (an outside check, session 15): only the listed ones were sought."""
    page = f"<html>Ваш IP: {spelling}, DNS 2001:db8:1234::6</html>".encode(codec)
    data = orjson.dumps({"body": {"format": "base64", "data": base64.b64encode(page).decode()}})
    out = orjson.loads(Scrubber(["2001:db8:1234::5"]).json(data))
    text = base64.b64decode(out["body"]["data"]).decode(codec)
    assert text == "<html>Ваш IP: [scrubbed], DNS 2001:db8:1234::6</html>", text


@pytest.mark.parametrize("route", ["batch", "ooni"])
async def test_a_resend_tells_no_one_the_address_scrubbed(
    route: str, tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """The content hash was of the measurement as sent, and a resend answers the first uid: anyone
    could put guesses back where the public copy says ``[scrubbed]`` and learn which guess was
    the probe's address by the uid it got (an outside check, session 17). The identity is now of
    the scrubbed content; a resend by the probe itself is still stored once."""
    m = copy.deepcopy(web(real_measurements)[0])
    m["probe_ip"] = "127.0.0.1"  # as OONI probes write it: the address is only in a body
    m["test_keys"]["x_seen"] = f"your address: {PROBE_V4}"

    async def post(http: httpx.AsyncClient, measurement: dict[str, Any]) -> str:
        if route == "batch":
            r = await http.post("/api/v1/measurements", content=orjson.dumps(measurement))
            assert r.status_code == 200, r.text
            return str(r.json()["measurement_uids"][0])
        rid = (await http.post("/report", json=OPEN)).json()["report_id"]
        r = await http.post(f"/report/{rid}", json={"format": "json", "content": measurement})
        assert r.status_code == 200, r.text
        return str(r.json()["measurement_uid"])

    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0), client=PROBE_V4) as (
        app,
        victim,
    ):
        uid = await post(victim, m)
        assert await post(victim, m) == uid  # the probe's own resend: stored once
        public = orjson.loads((await victim.get(f"/api/v1/measurement/{uid}")).content)
        assert public["test_keys"]["x_seen"] == "your address: [scrubbed]"
        transport = httpx.ASGITransport(app=app, client=(OTHER, 40001))
        async with httpx.AsyncClient(transport=transport, base_url="http://collector") as other:
            guesses = {}
            for guess in ("203.0.113.76", PROBE_V4, "203.0.113.78"):
                copied = copy.deepcopy(m)
                copied["test_keys"]["x_seen"] = f"your address: {guess}"
                guesses[guess] = await post(other, copied)
            assert uid not in guesses.values()
            # a measurement holding no address is the same whoever sends it: stored once
            plain = copy.deepcopy(m)
            plain["test_keys"]["x_seen"] = "nothing"
            assert await post(victim, plain) == await post(other, plain)


@pytest.mark.parametrize("identity", [IDENTITY, ORJSON_IDENTITY])
def test_the_top_level_is_scrubbed_apart_from_test_keys_in_its_order(identity: str) -> None:
    """``test_keys`` is scrubbed once for the identity and the stored form, the top level apart:
    keys and values holding the address, in the measurement's order; two keys that differ only by
    the address become one, as when the whole was scrubbed."""
    parse = load if identity == IDENTITY else orjson.loads
    m = {
        "x_first": f"from {PROBE_V4}",
        **MINIMAL,
        f"x_{PROBE_V4}": 1,
        "test_keys": {"seen": PROBE_V4},
        "x_last": [PROBE_V4, {"k": PROBE_V4}],
    }
    staged = stage(parse(orjson.dumps(m)), b"k" * 32, False, PROBE_V4, Network(), identity=identity)
    stored = orjson.loads(staged.stored)
    assert list(stored)[:2] == ["x_first", "measurement_start_time"]
    assert stored["x_first"] == "from [scrubbed]" and stored["x_[scrubbed]"] == 1
    assert stored["test_keys"] == {"seen": "[scrubbed]"}
    assert stored["x_last"] == ["[scrubbed]", {"k": "[scrubbed]"}]
    assert list(stored).index("test_keys") == list(m).index("test_keys")  # added keys go last
    assert PROBE_V4.encode() not in staged.stored and PROBE_V4.encode() not in staged.canonical
    # the same content sent with another spelling of the address: the same identity
    again = dict(m, x_first=f"from {PROBE_V4.replace('.', '-')}")
    other = stage(parse(orjson.dumps(again)), b"k" * 32, False, PROBE_V4, Network(), identity=identity)
    assert other.canonical == staged.canonical
    # keys that differ only by the address: one key, as when the whole was scrubbed
    m[f"x_{PROBE_V4.replace('.', '-')}"] = 2
    staged = stage(parse(orjson.dumps(m)), b"k" * 32, False, PROBE_V4, Network(), identity=identity)
    stored = orjson.loads(staged.stored)
    assert stored["x_[scrubbed]"] in (1, 2) and PROBE_V4.encode() not in staged.stored


def test_a_measurement_too_many_texts_of_the_network_cannot_hold_is_refused() -> None:
    """6 MB of other addresses of the probe's /64 held the event loop 5 s, each read as an address
    (an outside check, session 17). Repeated texts are read once; past MAX_READ different ones the
    measurement is refused (422), not stored half-scrubbed."""
    probe = "2001:db8:12:34::5"
    same = {"seen": ["2001:db8:12:34::2,"] * 20_000 + ["2001:0db8:12:34::5"]}
    m = {**MINIMAL, "probe_ip": probe, "test_keys": same}
    staged = stage(load(orjson.dumps(m)), b"k" * 32, False, "127.0.0.1", Network(), identity=IDENTITY)
    stored = orjson.loads(staged.stored)["test_keys"]["seen"]
    assert stored[-1] == "[scrubbed]" and stored[0] == "2001:db8:12:34::2,"
    many = {"seen": [f"2001:db8:12:34::{n:x}" for n in range(MAX_READ + 10)]}
    m = {**MINIMAL, "probe_ip": probe, "test_keys": many}
    with pytest.raises(ApiError) as refused:
        stage(load(orjson.dumps(m)), b"k" * 32, False, "127.0.0.1", Network(), identity=IDENTITY)
    assert refused.value.status == 422 and "too many to scrub" in refused.value.message
