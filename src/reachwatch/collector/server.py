"""Run the collector under uvicorn: uvloop, httptools when present, access log off (privacy)."""

from __future__ import annotations

import asyncio
import importlib.util
import logging

import uvicorn

from reachwatch.collector.app import create_app
from reachwatch.collector.config import Settings
from reachwatch.runtime import SERVER_OPEN_FILES, raise_open_files, settle_gc
from reachwatch.store import open_store


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
    a DuckDB database, one another collector holds, an unreachable ClickHouse or a journal directory
    another collector holds or that cannot be written is then a UserError
    (a clear message, exit 2), not a traceback in uvicorn's startup log."""

    async def check() -> None:
        store = open_store(settings.store, journal=settings.journal_location())
        try:
            await store.check()
        finally:
            await store.close()

    asyncio.run(check())


def serve(settings: Settings, host: str, port: int) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    check_store(settings)
    config = uvicorn_config(settings, host, port)
    settle_gc()  # every parsed measurement is hundreds of short-lived containers
    raise_open_files(SERVER_OPEN_FILES)  # a connection per probe: far more than 1,024 at once
    uvicorn.Server(config).run()
