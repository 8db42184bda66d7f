"""Names and addresses of a lab: namespaces, interfaces, links, services and sites.

Layout (all routes are for these prefixes only; there is no default route anywhere):

- ISP number i (from 1) owns 100.64.i.0/24: router side .1, ISP side .2 (probe 1), probes 2..N
  (scenario ``probes = N``) from .10 on, each in its own namespace ``<prefix>-i<i>p<n>``.
- router ⇄ internet: 100.126.0.0/30 (.1 router, .2 internet);
  control ⇄ internet: 100.126.0.4/30 (.5 internet, .6 control).
- services (/32 on ``lo``): real resolver 100.127.0.53 and blockpage 203.0.113.254 (internet),
  censor 100.127.1.1 (router), control helper 100.127.2.1 and collector 100.127.2.2 (control).
- sites (/32 on ``lo`` of the internet namespace): from the scenario, else allocated from the
  TEST-NETs 203.0.113.0/24, 198.51.100.0/24, 192.0.2.0/24, then 198.18.0.0/15.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from reachwatch.errors import UserError

SITE_POOLS = ("203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/24", "198.18.0.0/15")
SERVICE_NET = "100.127.0.0/16"
ISP_NET = "100.64.0.0/16"
RESOLVER = "100.127.0.53"
BLOCKPAGE = "203.0.113.254"  # public-looking, like a real censor's blockpage server
BLOCKPAGE_PORTS = (10080, 10443)  # its :80 and :443 are redirected to these in the internet ns
CENSOR = "100.127.1.1"
CONTROL = "100.127.2.1"
CONTROL_PORT = 8780
CONTROL_NET = "100.127.2.0/24"  # the control vantage's services (control helper, collector)
COLLECTOR = "100.127.2.2"
COLLECTOR_PORT = 8781
LINK_ROUTER = ("100.126.0.1", "100.126.0.2")  # router, internet
LINK_CONTROL = ("100.126.0.5", "100.126.0.6")  # internet, control
LINK_CONTROL_NET = "100.126.0.4/30"
RESOLVER_PORT_BASE = 5300  # censoring resolver for ISP i listens on CENSOR:5300+i
PROXY_PORT_BASE = 8000  # blockpage proxy for ISP i listens on 8000+i
MAX_PREFIX = 5


@dataclass(frozen=True)
class IspAddr:
    index: int  # from 1
    name: str
    ns: str
    net: str  # the ISP's /24
    router_ip: str  # router side of the link
    ip: str  # ISP side of the link (the probe address)
    router_iface: str  # in the router namespace
    iface: str = "rtr"  # in the ISP namespace
    probes: int = 1  # probe 1 runs in the ISP namespace, probes 2..N in their own namespaces
    prefix: str = "rw"

    @property
    def resolver_port(self) -> int:
        return RESOLVER_PORT_BASE + self.index

    @property
    def proxy_port(self) -> int:
        return PROXY_PORT_BASE + self.index

    def probe_ip(self, n: int) -> str:
        """Address of probe n (from 0) inside the ISP's /24, for when ISPs run several probes."""
        return str(ipaddress.ip_network(self.net)[10 + n])

    @property
    def bridged(self) -> bool:
        """With more than one probe, the ISP's side of the router link is a bridge (``lan``)."""
        return self.probes > 1

    def extra_probes(self) -> list[ProbeAddr]:
        """Probes 2..N: namespace ``<prefix>-i<i>p<n>``, address ``probe_ip(n - 2)`` (.10, .11, ...)."""
        return [
            ProbeAddr(number=n, ns=f"{self.prefix}-i{self.index}p{n}", ip=self.probe_ip(n - 2), port=f"p{n}")
            for n in range(2, self.probes + 1)
        ]


@dataclass(frozen=True)
class ProbeAddr:
    number: int  # 2..N within its ISP
    ns: str
    ip: str
    port: str  # its veth's name in the ISP namespace (a port of the bridge ``lan``)
    iface: str = "isp"  # in the probe namespace


@dataclass(frozen=True)
class Layout:
    prefix: str
    router_ns: str
    internet_ns: str
    control_ns: str
    isps: tuple[IspAddr, ...]
    sites: dict[str, str]  # host -> address

    @property
    def namespaces(self) -> list[str]:
        isps = [i.ns for i in self.isps]
        probes = [p.ns for i in self.isps for p in i.extra_probes()]
        return [self.router_ns, self.internet_ns, self.control_ns, *isps, *probes]

    def extra_site_routes(self) -> list[str]:
        """Site addresses outside the standard pools, which need a /32 route each."""
        pools = [ipaddress.ip_network(p) for p in SITE_POOLS]
        extra = {ip for ip in self.sites.values() if not any(ipaddress.ip_address(ip) in p for p in pools)}
        return sorted(extra, key=ipaddress.IPv4Address)

    def lab_prefixes(self) -> list[str]:
        """What a vantage point routes toward the internet namespace."""
        return [*SITE_POOLS, SERVICE_NET, *(f"{ip}/32" for ip in self.extra_site_routes())]


def check_prefix(prefix: str) -> str:
    if not (1 <= len(prefix) <= MAX_PREFIX and prefix.isalnum() and prefix.isascii() and prefix.islower()):
        raise UserError(
            f"bad lab prefix {prefix!r}",
            where="--prefix",
            fix=f"use 1 to {MAX_PREFIX} lowercase letters or digits, e.g. rw",
        )
    return prefix


def _pool() -> Iterator[str]:
    for pool in SITE_POOLS:
        for addr in ipaddress.ip_network(pool).hosts():
            if addr.packed[3] not in (0, 255):
                yield str(addr)


def allocate_sites(fixed: dict[str, str | None]) -> dict[str, str]:
    """Give each host its fixed address, or the next free one of the pools."""
    taken = {ip for ip in fixed.values() if ip} | {BLOCKPAGE}
    pool = (ip for ip in _pool() if ip not in taken)
    out: dict[str, str] = {}
    for host, ip in fixed.items():
        if ip == BLOCKPAGE:
            raise UserError(f"site {host!r}: {ip} is the lab's blockpage server", fix="pick another ip")
        chosen = ip or next(pool, None)
        if chosen is None:
            raise UserError(f"out of site addresses at {host!r}", fix="use fewer than 130,000 sites")
        out[host] = chosen
    return out


def layout(
    prefix: str, isp_names: list[str], fixed: dict[str, str | None], probes: list[int] | None = None
) -> Layout:
    prefix = check_prefix(prefix)
    counts = probes or [1] * len(isp_names)
    isps = tuple(
        IspAddr(
            index=i,
            name=name,
            ns=f"{prefix}-isp{i}",
            net=f"100.64.{i}.0/24",
            router_ip=f"100.64.{i}.1",
            ip=f"100.64.{i}.2",
            router_iface=f"isp{i}",
            probes=count,
            prefix=prefix,
        )
        for i, (name, count) in enumerate(zip(isp_names, counts, strict=True), start=1)
    )
    return Layout(
        prefix=prefix,
        router_ns=f"{prefix}-rtr",
        internet_ns=f"{prefix}-net",
        control_ns=f"{prefix}-ctl",
        isps=isps,
        sites=allocate_sites(fixed),
    )
