from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from reachwatch.collector.app import create_app
from reachwatch.collector.config import Settings
from reachwatch.collector.server import uvicorn_config
from reachwatch.lab import mmdb
from store.backends import clickhouse_url, real_measurements, small_measurements, store_location

__all__ = ["clickhouse_url", "real_measurements", "small_measurements", "store_location"]

#: a measurement with only the keys every one must have
MINIMAL = {
    "measurement_start_time": "2024-05-01 10:00:00",
    "probe_asn": "AS64501",
    "probe_cc": "PK",
    "software_name": "x",
    "software_version": "1",
    "test_name": "web_connectivity",
    "data_format_version": "0.2.0",
    "test_keys": {},
}
PROBE_V4 = "203.0.113.77"  # inside the test ASN database below
PROBE_V6 = "2001:db8:1::77"
OTHER = "198.51.100.23"  # country only


@pytest.fixture
def geo_dbs(tmp_path: Path) -> tuple[Path, Path]:
    asn = mmdb.write(
        tmp_path / "asn.mmdb",
        {
            "203.0.113.0/24": {
                "autonomous_system_number": 64501,
                "autonomous_system_organization": "Test Net",
            },
            "2001:db8::/32": {
                "asn": "AS64502",
                "as_name": "Six Net",
                "country_code": "DE",
                "country": "Germany",
            },
        },
        "GeoLite2-ASN",
    )
    country = mmdb.write(
        tmp_path / "country.mmdb",
        {
            "203.0.113.0/24": {"country": {"iso_code": "PK"}},
            "198.51.100.0/24": {"country": {"iso_code": "IR"}},
        },
        "GeoLite2-Country",
    )
    return asn, country


@contextlib.asynccontextmanager
async def collector(
    settings: Settings, client: str = PROBE_V4
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its lifespan running, and a client whose requests come from ``client``."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(client, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://collector") as http:
            yield app, http


@contextlib.contextmanager
def live_server(settings: Settings) -> Iterator[str]:
    """The collector under uvicorn in a thread, on a free loopback port; yields its base URL."""
    config = uvicorn_config(settings, "127.0.0.1", 0)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("collector did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"{'https' if settings.tls_cert else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
