"""The internet's web server: every site over HTTP (:80) and HTTPS (:443), and the blockpage server.

Sites: :80 on the wildcard address, :443 on each site address; the SNI picks the certificate
(contexts made lazily) and the Host header picks the page, among the sites on the address the
client connected to, as a real web server does: a Host or SNI of a site living elsewhere (a censor's
DNS answer pointing at another site's address) gets a 404 and the server's default certificate
(for ``wrong-host.invalid``), never the other site's page. The blockpage server's address has its :80 and
:443 redirected by nft to :10080 / :10443, where any Host gets the blockpage and any SNI a
certificate from the censor CA. TLS handshakes run per connection, never in the accept loop.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from reachwatch.lab.addressing import BLOCKPAGE_PORTS
from reachwatch.lab.ca import CertStore
from reachwatch.lab.servers.http import blockpage_response, close, read_request, response
from reachwatch.lab.servers.pages import BLOCKPAGE, PAGE_SIZE, not_found_page, site_page
from reachwatch.runtime import raise_open_files

#: How long a site waits for a client to finish its TLS handshake: asyncio's default, and
#: nginx's for a request head. It must outlast any client's own timeout (the probe's is 10 s): at
#: 10 s a site whose ClientHello a censor drops (tls-sni-timeout) closed the connection a few
#: milliseconds before the probe gave up, so the probe saw the site close it (eof_error), not a
#: timeout.
HANDSHAKE_TIMEOUT = 60.0


@dataclass(frozen=True)
class SiteConf:
    host: str
    ip: str
    cert: str | None = None
    status: int | None = None
    redirect_to: str | None = None
    page_size: int = PAGE_SIZE


class WebServer:
    def __init__(self, sites: dict[str, dict[str, Any]], certs: CertStore) -> None:
        self.sites = {
            h: SiteConf(
                h, s["ip"], s.get("cert"), s.get("status"), s.get("redirect_to"),
                s.get("page_size", PAGE_SIZE),
            )
            for h, s in sites.items()
        }  # fmt: skip
        self.hosted: dict[str, set[str]] = defaultdict(set)  # address -> hosts served there
        for site in self.sites.values():
            self.hosted[site.ip].add(site.host)
        self._answers: dict[tuple[str, bool], bytes] = {}  # whole responses, encoded once
        self.certs = certs
        self.default_tls = certs.fresh_context("default.invalid", "wrong-host")
        self.block_tls = certs.fresh_context("default.invalid", "wrong-host")
        self.block_tls.sni_callback = self._censor_sni

    def site_tls(self, addr: str) -> ssl.SSLContext:
        """The context of the :443 listener on ``addr``: no certificate of its own (cheap, one
        per address), the SNI callback always picks one."""
        hosts = self.hosted.get(addr, set())

        def pick(sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            host = (name or "").lower()
            site = self.sites.get(host) if host in hosts else None
            sock.context = self.default_tls if site is None else self.certs.context(host, site.cert)

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.set_alpn_protocols(["http/1.1"])
        ctx.sni_callback = pick
        return ctx

    def _censor_sni(self, sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        sock.context = self.certs.context((name or "blocked.invalid").lower(), ca="censor")

    async def start(self, host: str = "0.0.0.0") -> list[asyncio.Server]:
        """Sites on :80 and on :443 of each site address; the blockpage on BLOCKPAGE_PORTS (the
        nft rules send it there)."""
        plain, tls = BLOCKPAGE_PORTS
        raise_open_files(len(self.hosted) + 1024)  # a listener per address, and the connections
        servers = [
            await _listen(self._site, host, 80, None),
            await _listen(self._blockpage, host, plain, None),
            await _listen(self._blockpage, host, tls, self.block_tls),
        ]
        for addr in sorted(self.hosted):
            servers.append(await _listen(self._site, addr, 443, self.site_tls(addr)))
        return servers

    async def _site(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            hosts = self.hosted.get(writer.get_extra_info("sockname")[0], set())
            while (request := await read_request(reader)) is not None:
                data = self.answer(request.host, request.keep_alive, request.host in hosts)
                writer.write(
                    data if request.method != "HEAD" else data.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
                )
                await writer.drain()
                if not request.keep_alive:
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            await close(writer)

    async def _blockpage(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if await read_request(reader) is not None:
                writer.write(BLOCKPAGE_RESPONSE)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            await close(writer)

    def answer(self, host: str, keep_alive: bool, here: bool = True) -> bytes:
        """The response for ``host``, built on first use and then served from cached bytes;
        a 404 when the site is not ``here`` (not on the address the client connected to)."""
        if not here:
            return response(404, not_found_page(host), keep_alive=keep_alive)
        key = (host, keep_alive)
        data = self._answers.get(key)
        if data is None:
            data = self._build(host, keep_alive)
            if host in self.sites:  # not for any Host a client makes up
                self._answers[key] = data
        return data

    def _build(self, host: str, keep_alive: bool) -> bytes:
        site = self.sites.get(host)
        if site is None:
            return response(404, not_found_page(host), keep_alive=keep_alive)
        if site.redirect_to:
            headers = {**SITE_HEADERS, "Location": site.redirect_to}
            return response(301, b"", headers=headers, keep_alive=keep_alive)
        page = site_page(host, site.page_size)
        return response(site.status or 200, page, headers=SITE_HEADERS, keep_alive=keep_alive)


# Origin servers on the real internet send headers outside OONI's "common" list (CDN and
# framework headers); a censor's blockpage rarely shares them. Without them every lab response
# would "match headers" and a blockpage would pass OONI's HTTP comparison.
SITE_HEADERS = {"X-Served-By": "lab-origin", "X-Cache-Status": "MISS"}
BLOCKPAGE_RESPONSE = blockpage_response(BLOCKPAGE)


async def _listen(handler: Any, host: str, port: int, ctx: ssl.SSLContext | None) -> asyncio.Server:
    """asyncio does each TLS handshake in the connection's own task, never in the accept loop."""
    return await asyncio.start_server(
        handler, host, port, ssl=ctx, ssl_handshake_timeout=HANDSHAKE_TIMEOUT if ctx else None,
        backlog=1024, reuse_address=True,
    )  # fmt: skip
