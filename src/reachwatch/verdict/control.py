"""The control helper's view of each hop, read on demand.

OONI's test helper answers, per hop, with the DNS result for the host, a TCP connect and a TLS
handshake per endpoint, the page fetch and ``ip_info`` (ASN per address). ``test_keys.control``
is the first hop (none when ``control_failure`` is set); ours adds ``x_controls`` for later hops.
A :class:`Hop` keeps the raw part and reads each piece the first time a rule needs it, with the
same readers as ``observations.parse`` (so the values equal ``flatten``'s ``Control`` records):
most verdicts look at the DNS part and the page's outcome, few at the endpoints or the ASNs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from reachwatch.observations import ControlDNS, ControlHTTP
from reachwatch.observations.text import as_failure, as_int, as_map, as_str, header_keys, norm_host
from reachwatch.observations.text import url_parts as _url_parts

Expect = Literal["missing", "ok", "failed"]
MAPS: Final = (dict, Mapping)


class Hop:
    """One hop's control: ``hostname`` is the hop's normalised host."""

    __slots__ = ("_asn", "_dns", "_dns_read", "_http_read", "_page", "depth", "hostname", "raw")

    def __init__(self, raw: Mapping[str, Any], depth: int, hostname: str) -> None:
        self.raw = raw
        self.depth = depth
        self.hostname = hostname
        self._dns: ControlDNS | None = None
        self._dns_read = False
        self._page: Expect | None = None
        self._http_read = False
        self._asn: dict[str, int] | None = None

    @property
    def dns(self) -> ControlDNS | None:
        """The control's resolver result (IP addresses only: old controls list CNAMEs too)."""
        if not self._dns_read:
            self._dns_read = True
            dns_raw = self.raw.get("dns")
            if isinstance(dns_raw, MAPS):
                failure, addrs = dns_raw.get("failure"), dns_raw.get("addrs")
                self._dns = ControlDNS(
                    None if failure is None else as_failure(failure),
                    tuple([a for a in addrs if isinstance(a, str) and _is_ip(a)])
                    if isinstance(addrs, list)
                    else (),
                )
        return self._dns

    @property
    def page(self) -> Expect:
        """The control's outcome for the page fetch: what an HTTP failure is compared with."""
        if self._page is None:
            http_raw = self.raw.get("http_request")
            if not isinstance(http_raw, MAPS):
                self._page = "missing"
            else:
                self._page = "failed" if as_failure(http_raw.get("failure")) else "ok"
        return self._page

    @property
    def http(self) -> ControlHTTP | None:
        """The control's page, in full (status, length, title, header names): for the HTTP diff."""
        http_raw = self.raw.get("http_request")
        if not isinstance(http_raw, MAPS):
            return None
        code = as_int(http_raw.get("status_code"))
        return ControlHTTP(
            as_failure(http_raw.get("failure")),
            code if code and code > 0 else None,
            as_int(http_raw.get("body_length")),
            as_str(http_raw.get("title")) or "",
            header_keys(http_raw.get("headers")),
        )

    def tcp_failure(self, address: str) -> str | Literal[False] | None:
        """The control's connect failure for ``ip:port`` (None = success), False when not tried."""
        table = as_map(self.raw.get("tcp_connect"))
        if address not in table:
            return False
        return as_failure(as_map(table[address]).get("failure"))

    def tls_outcome(self, address: str) -> tuple[str, str | None] | None:
        """(server name, failure) of the control's handshake with ``ip:port``, None when not tried."""
        table = as_map(self.raw.get("tls_handshake"))
        if address not in table:
            return None
        entry = as_map(table[address])
        return norm_host(as_str(entry.get("server_name")) or ""), as_failure(entry.get("failure"))

    @property
    def ip_asn(self) -> Mapping[str, int]:
        """ip -> ASN from ``ip_info`` (0 = unknown)."""
        if self._asn is None:
            self._asn = {}
            for ip, info in as_map(self.raw.get("ip_info")).items():
                number = as_int(as_map(info).get("asn"))
                self._asn[ip] = number if number and number > 0 else 0
        return self._asn


def hops_of(tk: Mapping[str, Any], hostname: str) -> list[Hop | None]:
    """The control per hop: ``control`` (unless ``control_failure``), then ``x_controls``."""
    hops = [_hop(tk.get("control"), 0, hostname) if tk.get("control_failure") is None else None]
    x_controls = tk.get("x_controls")
    if isinstance(x_controls, list):
        for depth, entry in enumerate(x_controls, start=1):
            hop = as_map(entry)
            hops.append(_hop(hop.get("control"), depth, _url_parts(as_str(hop.get("url")))[1]))
    return hops


def _hop(raw: Any, depth: int, hostname: str) -> Hop | None:
    if not isinstance(raw, MAPS) or not raw:
        return None
    return Hop(raw, depth, hostname)


def _is_ip(text: str) -> bool:
    """Cheap test that tells IP answers from CNAMEs in old control ``addrs`` lists."""
    return ":" in text or text.replace(".", "").isdigit()
