"""Censorship techniques, a registry keyed by name.

Each technique turns one ``block`` entry of one ISP into rules for that ISP: answers of the
censoring resolver, nft / iptables lines for the router's FORWARD path, hosts for the
transparent blockpage proxy, or a per-connection policer. :mod:`reachwatch.lab.topology` renders and loads
them; nothing here touches the system.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

DEFAULT_BOGON = "10.10.34.35"


class BlockEntry(Protocol):
    technique: str
    host: str
    to: str | None
    rate: str | None


@dataclass
class IspRules:
    """Everything the router does to one ISP's traffic."""

    iface: str  # the router's interface toward this ISP
    blockpage: str  # address of the lab's blockpage server
    dns: dict[str, dict[str, str]] = field(default_factory=dict)  # host -> resolver action
    nft_forward: list[str] = field(default_factory=list)
    iptables_forward: list[str] = field(default_factory=list)
    # the same censorship for connections the router's HTTP proxy takes (REDIRECT makes them local:
    # the client's packets go through INPUT, the proxy's answers through OUTPUT, never FORWARD)
    nft_output: list[str] = field(default_factory=list)
    iptables_input: list[str] = field(default_factory=list)
    proxy_hosts: set[str] = field(default_factory=set)
    proxy_addrs: set[str] = field(default_factory=set)
    ip_blocked: set[str] = field(default_factory=set)  # addresses all TCP to which is dropped or reset
    throttles: list[tuple[str, str]] = field(default_factory=list)  # (site address, rate)

    @property
    def proxied(self) -> set[str]:
        """The addresses whose port 80 goes to the proxy: an address blocked outright is not (the
        redirect would take the connection before the forward chain's drop or reset, and a host
        blocked by address and by HTTP would show a blockpage, not the lower layer's block)."""
        return self.proxy_addrs - self.ip_blocked


@dataclass(frozen=True)
class Technique:
    name: str
    summary: str
    apply: Callable[[IspRules, BlockEntry, str], None]  # (rules, entry, site address)
    params: frozenset[str] = frozenset()
    required: frozenset[str] = frozenset()


#: The longest string-match pattern: the kernel takes 128 bytes (XT_STRING_MAX_PATTERN_SIZE), but
#: iptables' parser refuses a 128-byte one that ends in a |hex| byte (as a Host line's |0d0a|).
STRING_MATCH_MAX = 127
_LITERAL = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-: ")


def _hex_string(pattern: bytes) -> str:
    """iptables' --hex-string form: printable host characters as they are, other bytes as |xx|."""
    out: list[str] = []
    hexed: list[str] = []
    for byte in pattern:
        if byte in _LITERAL:
            if hexed:
                out.append("|" + "".join(hexed) + "|")
                hexed = []
            out.append(chr(byte))
        else:
            hexed.append(f"{byte:02x}")
    if hexed:
        out.append("|" + "".join(hexed) + "|")
    return "".join(out)


def string_match(pattern: bytes) -> str:
    """iptables matches for ``pattern`` anywhere in a packet, case-insensitive. A pattern longer
    than STRING_MATCH_MAX (a host name of 120+ characters: a DNS name may have 253) is cut into
    pieces of that size, all required: iptables refused the whole ruleset otherwise."""
    pieces = [pattern[i : i + STRING_MATCH_MAX] for i in range(0, len(pattern), STRING_MATCH_MAX)]
    return " ".join(f'-m string --algo kmp --icase --hex-string "{_hex_string(p)}"' for p in pieces)


def _sni(host: str) -> bytes:
    """The server_name entry of a ClientHello: type 0, 16-bit length, name."""
    return bytes([0, len(host) >> 8, len(host) & 0xFF]) + host.encode()


def _dns_answer(rules: IspRules, entry: BlockEntry, default: str) -> None:
    rules.dns[entry.host] = {"action": "answer", "addr": entry.to or default}


def _dns_hijack(rules: IspRules, entry: BlockEntry, ip: str) -> None:
    _dns_answer(rules, entry, rules.blockpage)


def _dns_bogon(rules: IspRules, entry: BlockEntry, ip: str) -> None:
    _dns_answer(rules, entry, DEFAULT_BOGON)


def _dns_nxdomain(rules: IspRules, entry: BlockEntry, ip: str) -> None:
    rules.dns[entry.host] = {"action": "nxdomain"}


def _dns_timeout(rules: IspRules, entry: BlockEntry, ip: str) -> None:
    rules.dns[entry.host] = {"action": "drop"}


def _tcp_timeout(rules: IspRules, entry: BlockEntry, ip: str) -> None:
    rules.ip_blocked.add(ip)
    rules.nft_forward.append(f'iifname "{rules.iface}" ip daddr {ip} meta l4proto tcp drop')


def _tcp_reset(rules: IspRules, entry: BlockEntry, ip: str) -> None:
    rules.ip_blocked.add(ip)
    rules.nft_forward.append(f'iifname "{rules.iface}" ip daddr {ip} meta l4proto tcp reject with tcp reset')


def _tls_sni(target: str) -> Callable[[IspRules, BlockEntry, str], None]:
    def apply(rules: IspRules, entry: BlockEntry, ip: str) -> None:
        rules.iptables_forward.append(
            f"-A FORWARD -i {rules.iface} -p tcp --dport 443 {string_match(_sni(entry.host))} -j {target}"
        )

    return apply


def _http_blockpage(rules: IspRules, entry: BlockEntry, ip: str) -> None:
    rules.proxy_hosts.add(entry.host)
    rules.proxy_addrs.add(ip)


def _http_reset(rules: IspRules, entry: BlockEntry, ip: str) -> None:
    """On the forward path, and on the way into the router's HTTP proxy: when another host on
    the same address has ``http-blockpage``, the address's port 80 is redirected to the proxy,
    which would otherwise relay this host's request untouched."""
    header = f"Host: {entry.host}\r\n".encode()
    match = f"{string_match(header)} -j REJECT --reject-with tcp-reset"
    rules.iptables_forward.append(f"-A FORWARD -i {rules.iface} -p tcp --dport 80 {match}")
    rules.iptables_input.append(f"-A INPUT -i {rules.iface} -p tcp -m conntrack --ctorigdstport 80 {match}")


# tc's rate units: "bit" units count bits, "bps" units count bytes (tc-bits and tc-bps(8))
_RATE_UNITS = {"bit": 1 / 8, "kbit": 1000 / 8, "mbit": 1e6 / 8, "gbit": 1e9 / 8,
               "bps": 1, "kbps": 1000, "mbps": 1e6, "gbps": 1e9}  # fmt: skip
_RATE = re.compile(r"^(\d+(?:\.\d+)?)\s*(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$", re.IGNORECASE)


def rate_bytes_per_second(rate: str) -> int:
    """``16kbit`` -> 2000; ValueError for anything that is not a tc-style rate."""
    match = _RATE.match(rate.strip())
    if match is None:
        raise ValueError(f"{rate!r} is not a rate like 16kbit, 1mbit or 2kbps")
    value = float(match.group(1)) * _RATE_UNITS[match.group(2).lower()]
    if value < 1:  # 0kbit would be a page of 0 bytes behind a link that passes nothing
        raise ValueError(f"{rate!r} is less than 1 byte per second; a throttle needs a rate, e.g. 16kbit")
    return round(value)


def throttle_burst(bps: int) -> int:
    """A few packets: the handshake and the first response bytes get through at once."""
    return max(6000, bps)


def _throttle(rules: IspRules, entry: BlockEntry, ip: str) -> None:
    """A per-connection policer: each flow from the site to this ISP gets `rate`, excess dropped.

    Per flow (an nft meter keyed by the client's address and port), so one throttled download
    never delays another; small packets (handshakes, ACKs) pass, as shapers of bulk traffic do.
    A queueing shaper (htb) would let a closed connection's backlog starve the next one.
    The router's HTTP proxy (``http-blockpage`` on another host of the address) answers from
    the router itself: its packets are matched on the output path by the connection's original
    destination, so a relayed page is throttled too.
    """
    assert entry.rate is not None  # required, checked by the scenario
    bps = rate_bytes_per_second(entry.rate)
    burst = throttle_burst(bps)
    meter = f"thr_{rules.iface}_{len(rules.throttles)}"
    rules.throttles.append((ip, entry.rate))
    limit = f"timeout 120s limit rate over {bps} bytes/second burst {burst} bytes }} drop"
    rules.nft_forward.append(
        f'oifname "{rules.iface}" ip saddr {ip} meta l4proto tcp meta length > 200 '
        f"meter {meter} size 65535 {{ ip daddr . tcp dport {limit}"
    )
    rules.nft_output.append(
        f'oifname "{rules.iface}" ct direction reply ct original ip daddr {ip} meta l4proto tcp '
        f"meta length > 200 meter {meter}_p size 65535 {{ ip daddr . tcp dport {limit}"
    )


_ALL = [
    Technique("dns-hijack", "the ISP resolver answers with `to` (default: the blockpage server)",
              _dns_hijack, frozenset({"to"})),
    Technique("dns-nxdomain", "the ISP resolver answers NXDOMAIN", _dns_nxdomain),
    Technique("dns-timeout", "the ISP resolver never answers", _dns_timeout),
    Technique("dns-bogon", f"the ISP resolver answers `to` (default {DEFAULT_BOGON})",
              _dns_bogon, frozenset({"to"})),
    Technique("tcp-timeout", "TCP packets to the site's address are dropped", _tcp_timeout),
    Technique("tcp-reset", "TCP packets to the site's address are answered with a RST", _tcp_reset),
    Technique("tls-sni-reset", "a ClientHello naming the host is answered with a RST",
              _tls_sni("REJECT --reject-with tcp-reset")),
    Technique("tls-sni-timeout", "a ClientHello naming the host is dropped", _tls_sni("DROP")),
    Technique("http-blockpage", "HTTP requests for the host get the blockpage from a proxy",
              _http_blockpage),
    Technique("http-reset", "an HTTP request naming the host is answered with a RST", _http_reset),
    Technique("throttle", "each connection from the site's address is limited to `rate`",
              _throttle, frozenset({"rate"}), frozenset({"rate"})),
]  # fmt: skip

TECHNIQUES: dict[str, Technique] = {t.name: t for t in _ALL}
