"""What a lab scenario should measure: the expected verdict of every (vantage, site URL).

Derived from the scenario alone (docs/lab.md, docs/verdict.md), never from the probe or the
verdict engine, so that a random scenario can be checked end to end:

- Every vantage follows the site's redirect chain (``redirect_to``, relative ones too) as a
  probe does; the chain is judged by the first hop that does not lead on (a failure, a
  blockpage, or the final response), and within a hop in the probe's order: DNS, TCP, TLS
  (https hops), HTTP.
- Site conditions (``down``, ``nxdomain``, ``cert``, ``status``) are never censorship: the
  control sees them too, so alone they give ``blocking: false`` (``accessible: false`` for a
  failure or a 5xx, ``true`` for a 2xx/4xx page). A 3xx ``status`` without ``redirect_to`` is
  ``undecided`` (null/null/null) for every vantage.
- The control vantage and an ISP without rules see only the conditions.
- A censoring ISP's technique decides where it acts first in that order. DNS techniques act on
  the host (a ``dns-hijack`` to the site's own address is no hijack); ``tcp-*`` and ``throttle``
  act on the address, so on every site sharing it; ``tls-sni-*`` and ``http-*`` on the host
  name (an ``http-blockpage`` is not reached when the address is dropped or reset).
- A technique and a condition on the same step: the same failure on both sides stays
  ``site.down`` (``tcp-reset`` of a ``down`` site, ``dns-nxdomain`` of an ``nxdomain`` one);
  a different one is censorship (``tcp-timeout`` of a ``down`` site, ``dns-timeout`` of an
  ``nxdomain`` one, an SNI reset or stall of a site with a bad certificate): docs/verdict.md,
  "A broken site that is also censored".

``expect`` gives a set of allowed (blocking, accessible, x_technique) per row, or ``None``
where the right answer is genuinely open; each such case says why where it is decided
(:data:`DEBATABLE` lists the reasons).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from reachwatch.lab.addressing import BLOCKPAGE, allocate_sites
from reachwatch.lab.scenario import Block, Scenario, Site
from reachwatch.lab.servers.pages import PAGE_SIZE
from reachwatch.lab.techniques import rate_bytes_per_second, throttle_burst
from reachwatch.lab.topology import throttled_page_sizes
from reachwatch.probe.config import BODY_LIMIT

Triple = tuple[object, object, object]  # (blocking, accessible, x_technique)

NONE_OK: Triple = (False, True, "none")
DOWN: Triple = (False, False, "none")
UNDECIDED: Triple = (None, None, None)
NO_BODY = {204, 304, *range(100, 200)}  # a client reads no body after these: a throttle cannot show
TLS_RECORD = 16384  # ... over http; over https the headers share the page's first TLS record
MAX_REDIRECTS = 10  # the probe's (and the control's) limit, then http_too_many_redirects

# Reasons an expectation is left open (the value of Expect.why when allowed is None).
DEBATABLE = {
    "blockpage-vs-no-2xx-page": "an http-blockpage (200) where the control's page is not a 2xx "
    "or where the control's fetch failed (the site is also down): OONI computes no HTTP diff when "
    "the status codes differ and the control's is not 2xx, and has no page to compare with",
    "http-failure-on-a-failing-chain": "an http-reset or throttle at a hop whose chain then fails "
    "for the control too (a later hop down or nxdomain): the control's page outcome (OONI's "
    "protocol) is only the chain's last, so site.down.http (false/false) is as fair a reading as "
    "the technique",
    "hijack-to-a-404-for-a-404": "an http site whose page is a 404, hijacked to another site's "
    "server, which answers 404 for a host it does not serve: the two 404s match by OONI's HTTP "
    "comparison (same status, shared header names), so the final response is the control's",
    "resolved-where-nxdomain": "a dns-hijack to the site's own address of an nxdomain site: the ISP "
    "resolves a name the rest of the world cannot, to the real server; no censorship, but the control "
    "has no address to agree with",
    "status-1xx": "a 1xx final status is not an HTTP response a client can take as the page",
    "throttle-near-limit": "a throttle whose page arrives in about the HTTP timeout: seen or not "
    "depends on timing (handshakes and headers also spend the policer's burst)",
}


@dataclass(frozen=True)
class Expect:
    allowed: frozenset[Triple] | None  # None: no single expectation
    why: str  # the hop and step that decide, or the DEBATABLE key


@dataclass
class _Isp:
    """One vantage's censorship: nothing for the control and clean ISPs."""

    by_host: dict[str, dict[str, Block]] = field(default_factory=dict)  # host -> layer -> block
    ip_blocks: dict[str, list[str]] = field(default_factory=dict)  # address -> tcp-* in rule order
    throttles: dict[str, list[int]] = field(default_factory=dict)  # address -> bytes/s
    blockpage: set[str] = field(default_factory=set)  # hosts the proxy answers with the blockpage
    proxied: set[str] = field(default_factory=set)  # addresses whose port 80 goes to the proxy


@dataclass(frozen=True)
class _Hop:
    kind: str  # "redirect" (to ``url``), "final" (``status``), "blockpage", "failure"
    url: str = ""
    status: int = 0
    allowed: frozenset[Triple] | None = None
    why: str = ""
    lands_on_a_site: bool = False  # an http hop hijacked to another site's server (it says 404)


def _layer(technique: str) -> str:
    return technique.split("-")[0]


class Oracle:
    def __init__(self, scenario: Scenario, http_timeout: float) -> None:
        self.sites: dict[str, Site] = {s.host: s for s in scenario.site}
        self.addr = allocate_sites({s.host: s.ip for s in scenario.site})
        self.down_addrs = {self.addr[s.host] for s in scenario.site if s.down}
        self.page = throttled_page_sizes(scenario)
        self.http_timeout = http_timeout
        self.vantages: dict[str, _Isp] = {f"AS{scenario.control.asn}": _Isp()}
        for isp in scenario.isp:
            self.vantages[f"AS{isp.asn}"] = self._isp(isp.block)

    def _isp(self, blocks: list[Block]) -> _Isp:
        isp = _Isp()
        for b in blocks:
            isp.by_host.setdefault(b.host, {})[_layer(b.technique)] = b
            ip = self.addr[b.host]
            if b.technique in ("tcp-timeout", "tcp-reset"):
                isp.ip_blocks.setdefault(ip, []).append(b.technique)
            elif b.technique == "throttle":
                assert b.rate is not None
                isp.throttles.setdefault(ip, []).append(rate_bytes_per_second(b.rate))
        for b in blocks:
            if b.technique == "http-blockpage" and self.addr[b.host] not in isp.ip_blocks:
                isp.blockpage.add(b.host)
                isp.proxied.add(self.addr[b.host])
        return isp

    # -- one hop -----------------------------------------------------------------------------
    def _hop(self, isp: _Isp, url: str) -> _Hop:
        parts = urlsplit(url)
        host, https = parts.hostname or "", parts.scheme == "https"
        site, ip = self.sites[host], self.addr[host]
        rules = isp.by_host.get(host, {})

        def fail(triples: set[Triple], why: str) -> _Hop:
            return _Hop("failure", allowed=frozenset(triples), why=f"{host}: {why}")

        # DNS
        dns = rules.get("dns")
        if dns is None:
            if site.nxdomain:
                return fail({DOWN}, "nxdomain (condition)")
        elif dns.technique == "dns-hijack":
            to = dns.to or BLOCKPAGE
            if to == ip and site.nxdomain:
                # DEBATABLE resolved-where-nxdomain: the ISP resolves, to the site's own server,
                # a name the world cannot; over https the verified page is the real site
                # (final.tls-ok), over http an answer the control did not get (dns.hijack)
                return _Hop("failure", allowed=None, why="resolved-where-nxdomain")
            if to != ip:
                # an answer in private, loopback... space is a sink whatever serves there (as
                # Iran's 10.10.34.34 blockpage): dns-bogon; the documentation ranges the lab's
                # sites stand on are not
                name = "dns-bogon" if _sink(to) else "dns-hijack"
                on_site = not https and to in self.addr.values()
                return _Hop("failure", allowed=frozenset({("dns", False, name)}), why=f"{host}: dns-hijack to {to}",
                            lands_on_a_site=on_site)  # fmt: skip
        elif dns.technique == "dns-nxdomain" and site.nxdomain:
            return fail({DOWN}, "dns-nxdomain of an nxdomain site: the same answer as the control's")
        else:
            return fail({("dns", False, dns.technique)}, dns.technique)
        down = ip in self.down_addrs
        http = rules.get("http")
        if not https and ip in isp.proxied:
            # the router's proxy takes the connection, whatever the site's address would do
            if host in isp.blockpage:
                return _Hop("blockpage", why=f"{host}: http-blockpage")
            if http is not None:  # http-reset, on the way into the proxy
                reset = ("http-failure", False, "http-reset")
                # DEBATABLE when the address is down: a reset request where the control's connect
                # was refused, the site down for everyone; either reading is fair
                return fail({reset, DOWN} if down else {reset}, "http-reset (proxied address)")
            if down:  # relayed to an address that refuses: the proxy closes the connection
                return fail({DOWN}, f"down (condition, {ip}), relayed by the proxy")
        # TCP: by address
        techniques = isp.ip_blocks.get(ip, [])
        if techniques:
            # two hosts of one address may get a drop and a reset: either may be the router's first
            tcp = {DOWN if t == "tcp-reset" and down else ("tcp_ip", False, t) for t in techniques}
            return fail(tcp, f"{'/'.join(techniques)} on {ip}" + (" (down too)" if down else ""))
        if down:
            return fail({DOWN}, f"down (condition, {ip})")
        # TLS
        if https:
            tls = rules.get("tls")
            if tls is not None:
                name = "tls-reset" if tls.technique == "tls-sni-reset" else "tls-timeout"
                return fail({("http-failure", False, name)}, tls.technique)
            if site.cert:
                return fail({DOWN}, f"cert {site.cert} (condition)")
        # HTTP
        if not https and http is not None and http.technique == "http-reset":
            return fail({("http-failure", False, "http-reset")}, "http-reset")
        if site.redirect_to:  # an empty 301: nothing for a throttle to slow down
            return _Hop("redirect", url=urljoin(url, site.redirect_to), why=host)
        status = site.status or 200
        rates = isp.throttles.get(ip)
        if rates and (https or status not in NO_BODY):
            page = min(self.page.get(host, PAGE_SIZE), BODY_LIMIT)
            if status in NO_BODY:  # no body is read, but the headers come in a TLS record of up to 16 KiB
                page = min(page, TLS_RECORD)
            seen = self._throttle_seen(min(rates), page)
            untouched = _final(status)
            throttled = ("http-failure", False, "throttled")
            why = f"{host}: throttle {min(rates)} B/s on {ip}, page {page} B"
            if seen is True:
                return fail({throttled}, why)
            if seen is None:
                # DEBATABLE throttle-near-limit: either outcome is right
                allowed = None if untouched is None else frozenset({throttled, *untouched})
                return _Hop("failure", allowed=allowed, why=f"throttle-near-limit ({why})")
        return _Hop("final", status=status, why=host)

    def _throttle_seen(self, bps: int, page: int) -> bool | None:
        """True when the page cannot arrive within the HTTP timeout, False when it surely does,
        None in between (headers, TLS records and the handshake also spend the burst)."""
        arrives = throttle_burst(bps) + bps * self.http_timeout  # bytes within the timeout
        if page > arrives * 1.3 + 3000:
            return True
        if page + 3000 < arrives * 0.7:
            return False
        return None

    # -- a whole chain ------------------------------------------------------------------------
    def _walk(self, isp: _Isp, url: str) -> _Hop:
        for _ in range(MAX_REDIRECTS + 1):
            hop = self._hop(isp, url)
            if hop.kind != "redirect":
                return hop
            url = hop.url
        return _Hop("failure", allowed=frozenset({DOWN}), why="too many redirects (every vantage)")

    def expect(self, asn: str, url: str) -> Expect:
        hop = self._walk(self.vantages[asn], url)
        if hop.kind == "failure":
            http_failure = hop.allowed and any(t[2] in ("http-reset", "throttled") for t in hop.allowed)
            control = self._walk(_Isp(), url)
            if hop.lands_on_a_site and control.kind == "final" and control.status == 404:
                # DEBATABLE hijack-to-a-404-for-a-404: the other server's 404 for an unknown host
                # and the site's own 404 match (status, and header names OONI counts as uncommon:
                # Content-Length, Connection), and final.no-diff comes before DNS (OONI 1.3)
                assert hop.allowed is not None
                return Expect(hop.allowed | {NONE_OK}, f"hijack-to-a-404-for-a-404 ({hop.why})")
            if http_failure and control.kind == "failure":
                # DEBATABLE http-failure-on-a-failing-chain: the technique or site.down.http
                assert hop.allowed is not None
                return Expect(hop.allowed | {DOWN}, f"http-failure-on-a-failing-chain ({hop.why})")
            return Expect(hop.allowed, hop.why)
        if hop.kind == "final":
            final = _final(hop.status)
            return Expect(final, hop.why if final is not None else "status-1xx")
        # a blockpage: an HTTP diff against the control's page, which it gets by following the chain
        control = self._walk(_Isp(), url)
        if control.kind == "final" and 200 <= control.status < 300:
            return Expect(frozenset({("http-diff", False, "http-blockpage")}), hop.why)
        return Expect(None, "blockpage-vs-no-2xx-page")  # DEBATABLE, see DEBATABLE

    def rows(self) -> dict[tuple[str, str], Expect]:
        return {(asn, s.url): self.expect(asn, s.url) for asn in self.vantages for s in self.sites.values()}


_DOCUMENTATION = [
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/15")
]


def _sink(addr: str) -> bool:
    ip = ipaddress.ip_address(addr)
    return not ip.is_global and not any(ip in net for net in _DOCUMENTATION)


def _final(status: int) -> frozenset[Triple] | None:
    if status < 200:
        return None  # DEBATABLE status-1xx
    if status < 300:
        return frozenset({NONE_OK})
    if status < 400:
        return frozenset({UNDECIDED})  # a 3xx without Location: nothing to follow, no final page
    if status < 500:
        return frozenset({NONE_OK})  # the same 4xx page as the control's
    return frozenset({DOWN})  # site.error-both
