"""Run the collector under uvicorn: uvloop, httptools when present, access log off (privacy)."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import logging

import uvicorn

from reachwatch.collector.app import create_app
from reachwatch.collector.config import Settings
from reachwatch.store import open_store

GC_THRESHOLD = 20_000  # Python's default is 700 allocations


def uvicorn_config(settings: Settings, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        access_log=False,  # the access log would carry submitting addresses
        log_level="warning",
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=30,
        backlog=4096,
    )


def check_store(settings: Settings) -> None:
    """Reach the store once before uvicorn starts (no schema, no hashes loaded): a file that is not
    a DuckDB database, one another collector holds, or an unreachable ClickHouse is then a UserError
    (a clear message, exit 2), not a traceback in uvicorn's startup log."""

    async def check() -> None:
        store = open_store(settings.store)
        try:
            await store.check()
        finally:
            await store.close()

    asyncio.run(check())


def serve(settings: Settings, host: str, port: int) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    check_store(settings)
    config = uvicorn_config(settings, host, port)
    # every parsed measurement is hundreds of short-lived containers: keep the imported modules out
    # of the collector's scans and let the youngest generation fill up before scanning it
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)
    uvicorn.Server(config).run()
