"""Run the collector under uvicorn: uvloop, httptools when present, access log off (privacy),
HTTPS with ``--tls-cert``/``--tls-key``, the submitter from ``X-Forwarded-For`` behind a trusted
proxy (read by the app, :mod:`reachwatch.collector.forwarded`: the nearest address the trusted
proxies did not add)."""

from __future__ import annotations

import asyncio
import errno
import importlib.util
import logging
import socket
import ssl
import sys
from pathlib import Path

import uvicorn

from reachwatch.collector.app import create_app
from reachwatch.collector.attribution import Attributor
from reachwatch.collector.config import Settings
from reachwatch.collector.ratelimit import networks_of
from reachwatch.errors import UserError
from reachwatch.runtime import SERVER_OPEN_FILES, raise_open_files, settle_gc
from reachwatch.store import default_journal, open_store
from reachwatch.store.journal_left import store_left_journal


def trusted_proxies(value: str) -> str:
    """``--trusted-proxy``: addresses and networks (``10.0.0.1``, ``10.0.0.0/8``, ``::1``),
    comma-separated, or ``*`` (any peer: only where nothing but the proxy can reach the port).
    Returned normalised, as :class:`~reachwatch.collector.forwarded.TrustedProxies` reads them; a
    :class:`UserError` naming a bad entry."""
    entries = [item.strip() for item in value.split(",") if item.strip()]
    if not entries:
        raise UserError(
            "--trusted-proxy is empty", fix="give the proxy's address, e.g. --trusted-proxy 127.0.0.1"
        )
    try:
        networks_of(",".join(entry for entry in entries if entry != "*"))
    except ValueError as exc:
        raise UserError(
            f"--trusted-proxy: {exc}", fix="give addresses or networks, comma-separated: 127.0.0.1,10.0.0.0/8"
        ) from None
    return ",".join(entries)


def check_tls(cert: Path | None, key: Path | None) -> None:
    """Both or neither, and loadable as a server's certificate and key (uvicorn would otherwise fail
    in its startup log, with a traceback)."""
    if (cert is None) != (key is None):
        raise UserError("--tls-cert and --tls-key go together: give both for HTTPS, or neither")
    if cert is None or key is None:
        return
    for path in (cert, key):
        if not path.is_file():
            raise UserError("no such file", where=str(path))
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (ssl.SSLError, ValueError) as exc:
        raise UserError(
            f"cannot use this certificate and key for HTTPS: {exc}",
            where=f"{cert}, {key}",
            fix="give a PEM certificate chain and its matching, unencrypted PEM private key",
        ) from None


def _http_protocol() -> type[asyncio.Protocol] | str:
    """httptools, with a limit on how long a request's headers take (``header_timeout``), or h11."""
    if importlib.util.find_spec("httptools") is None:
        return "h11"
    from reachwatch.collector.header_timeout import HeaderTimeoutProtocol

    return HeaderTimeoutProtocol


#: Seconds a stop (SIGTERM) waits for the requests in hand before cancelling them
GRACEFUL_SHUTDOWN = 30


def uvicorn_config(settings: Settings, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http=_http_protocol(),
        access_log=False,  # the access log would carry submitting addresses
        log_level="warning",
        proxy_headers=False,  # X-Forwarded-For is read by the app's own rule (collector.forwarded)
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
        server_header=False,
        timeout_keep_alive=30,
        # a stop waits this long for requests in hand, then cancels them (none of them was
        # acknowledged): an upload trickling a byte every few seconds held a SIGTERM for ever
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        backlog=4096,
    )


def check_store(settings: Settings) -> None:
    """Reach the store once before uvicorn starts (no schema, no hashes loaded): a file that is not
    a DuckDB database, one another collector holds, an unreachable ClickHouse or a journal directory
    another collector holds or that cannot be written is then a UserError
    (a clear message, exit 2), not a traceback in uvicorn's startup log."""

    async def check() -> None:
        store = open_store(
            settings.store, journal=settings.journal_location(), memory_limit=settings.db_memory
        )
        try:
            await store.check()
        finally:
            await store.close()

    asyncio.run(check())


def store_left_journals(settings: Settings) -> None:
    """Store what an earlier collector of the DuckDB file left in a journal other than this run's
    (``store_left_journal``; the app's start does it too) before uvicorn starts: rows the store
    cannot take now are then a UserError (exit 2), not a traceback in uvicorn's startup log."""
    if default_journal(settings.store):
        store_left_journal(settings.store, besides=settings.journal_location())


def check_geo(settings: Settings) -> None:
    """Open the ASN and country databases once before uvicorn starts: a file that is not a MaxMind
    DB is then a UserError (exit 2), not a traceback from the app's startup."""
    Attributor(settings.asn_db, settings.country_db).close()


def check_port(host: str, port: int) -> None:
    """Bind the address once, as uvicorn will (SO_REUSEADDR), before anything is opened: a port in
    use is then a UserError (exit 2), not uvicorn's "[Errno 98]" after the store was created."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UserError(
            f"cannot listen on {host}: {exc.strerror}", fix="give an address of this machine as --host"
        ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:  # as asyncio's create_server: no IPv4-mapped addresses
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            in_use = exc.errno == errno.EADDRINUSE
            raise UserError(
                f"cannot listen on {host} port {port}: {exc.strerror}",
                fix="stop what uses it (another collector?) or give another --port"
                if in_use
                else "give an address of this machine as --host (127.0.0.1, 0.0.0.0 for all)",
            ) from None


def serve(settings: Settings, host: str, port: int) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    check_port(host, port)
    check_geo(settings)
    check_store(settings)
    store_left_journals(settings)
    config = uvicorn_config(settings, host, port)
    settle_gc()  # every parsed measurement is hundreds of short-lived containers
    raise_open_files(SERVER_OPEN_FILES)  # a connection per probe: far more than 1,024 at once
    scheme = "https" if settings.tls_cert else "http"
    where = f"[{host}]" if ":" in host else host
    # uvicorn's own start-up lines are below the log level (warnings only): say where we answer
    print(f"reachwatch collector on {scheme}://{where}:{port} (Ctrl-C stops it)", file=sys.stderr, flush=True)
    uvicorn.Server(config).run()
