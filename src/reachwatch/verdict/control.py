"""The control helper's view of each hop, read on demand.

OONI's test helper answers, per hop, with the DNS result for the host, a TCP connect and a TLS
handshake per endpoint, the page fetch and ``ip_info`` (ASN per address). ``test_keys.control``
is the first hop (none when ``control_failure`` is set); ours adds ``x_controls`` for later hops.
A :class:`Hop` keeps the raw part and reads each piece the first time a rule needs it, with the
same readers as ``observations.parse`` (so the values equal ``flatten``'s ``Control`` records):
most verdicts look at the DNS part and the page's outcome, few at the endpoints or the ASNs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, Final, Literal

from reachwatch.observations import ControlDNS, ControlHTTP
from reachwatch.observations.text import as_failure, as_int, as_map, as_str, header_keys, norm_host
from reachwatch.observations.text import url_parts as _url_parts

Expect = Literal["missing", "ok", "failed"]
MAPS: Final = (dict, Mapping)


class Hop:
    """One hop's control: ``hostname`` is the hop's normalised host."""

    __slots__ = ("_asn", "_dns", "_http", "_page", "depth", "hostname", "raw")

    def __init__(self, raw: Mapping[str, Any], depth: int, hostname: str) -> None:
        self.raw = raw
        self.depth = depth
        self.hostname = hostname
        self._dns: ControlDNS | Literal[False] | None = False  # False: not read yet
        self._page: Expect | None = None
        self._http: ControlHTTP | Literal[False] | None = False  # False: not read yet
        self._asn: dict[str, int] | None = None

    @property
    def dns(self) -> ControlDNS | None:
        """The control's resolver result (IP addresses only: old controls list CNAMEs too)."""
        if self._dns is False:
            self._dns = None
            dns_raw = self.raw.get("dns")
            if isinstance(dns_raw, MAPS):
                failure, addrs = dns_raw.get("failure"), dns_raw.get("addrs")
                failure = None if failure is None else as_failure(failure)
                addrs = addrs if isinstance(addrs, list) else ()
                try:  # the same few results recur: one record each (records are read-only)
                    self._dns = _control_dns(failure, tuple(addrs))
                except TypeError:  # an unhashable (malformed) entry
                    self._dns = ControlDNS(failure, _ip_addrs(addrs))
        return self._dns

    @property
    def page(self) -> Expect:
        """The control's outcome for the page fetch: what an HTTP failure is compared with."""
        if self._page is None:
            http_raw = self.raw.get("http_request")
            if not isinstance(http_raw, MAPS):
                self._page = "missing"
            else:
                failure = http_raw.get("failure")
                self._page = "ok" if failure is None or not as_failure(failure) else "failed"
        return self._page

    @property
    def http(self) -> ControlHTTP | None:
        """The control's page, in full (status, length, title, header names): for the HTTP diff.
        None when there is none, or it neither failed nor got a status code (malformed)."""
        if self._http is False:
            self._http = self._read_http()
        return self._http

    def _read_http(self) -> ControlHTTP | None:
        http_raw = self.raw.get("http_request")
        if not isinstance(http_raw, MAPS):
            return None
        get = http_raw.get
        length, title, failure = get("body_length"), get("title"), get("failure")
        code = _status(get("status_code"))
        failure = None if failure is None else as_failure(failure)
        if failure is None and code is None:
            return None
        return ControlHTTP(
            failure,
            code,
            length if type(length) is int else as_int(length),
            title if title and isinstance(title, str) else "",
            header_keys(get("headers")),
        )

    def tcp_failure(self, address: str) -> str | Literal[False] | None:
        """The control's connect failure for ``ip:port`` (None = success), False when not tried."""
        table = self.raw.get("tcp_connect")
        if not isinstance(table, MAPS) or address not in table:
            return False
        entry = table[address]
        return as_failure(entry.get("failure")) if isinstance(entry, MAPS) else None

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


def _status(value: Any) -> int | None:
    """A control's HTTP status code, when it is one (a positive integer)."""
    code = value if type(value) is int else as_int(value)
    return code if code and code > 0 else None


def hops_of(tk: Mapping[str, Any], hostname: str) -> list[Hop | None]:
    """The control per hop: ``control`` (unless ``control_failure``), then ``x_controls``."""
    raw = tk.get("control") if tk.get("control_failure") is None else None
    hops: list[Hop | None] = [Hop(raw, 0, hostname) if isinstance(raw, MAPS) and raw else None]
    x_controls = tk.get("x_controls")
    if x_controls and isinstance(x_controls, list):
        for depth, entry in enumerate(x_controls, start=1):
            hop = as_map(entry)
            hops.append(_hop(hop.get("control"), depth, _url_parts(as_str(hop.get("url")))[1]))
    return hops


def _hop(raw: Any, depth: int, hostname: str) -> Hop | None:
    if not isinstance(raw, MAPS) or not raw:
        return None
    return Hop(raw, depth, hostname)


@lru_cache(maxsize=4096)
def _control_dns(failure: str | None, addrs: tuple[Any, ...]) -> ControlDNS:
    return ControlDNS(failure, _ip_addrs(addrs))


def _ip_addrs(addrs: Iterable[Any]) -> tuple[str, ...]:
    """The IP addresses of a control's ``addrs`` list (old controls list CNAMEs too)."""
    return tuple([a for a in addrs if isinstance(a, str) and _is_ip(a)])


def _is_ip(text: str) -> bool:
    """Cheap test that tells IP answers from CNAMEs in old control ``addrs`` lists."""
    return ":" in text or text.replace(".", "").isdigit()
