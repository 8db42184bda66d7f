"""Entry point of a lab server process: ``ROLE CONFIG.json --ready-fd N``.

Roles (a registry): ``internet`` runs the real resolver, every site and the blockpage server;
``router`` runs each ISP's censoring resolver and blockpage proxy. The process writes ``ready``
on the inherited file descriptor once every socket is bound, then serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from reachwatch.lab.ca import CertStore
from reachwatch.lab.servers import dns
from reachwatch.lab.servers.proxy import BlockpageProxy
from reachwatch.lab.servers.resolver import CensoringResolver
from reachwatch.lab.servers.web import WebServer


async def internet(conf: dict[str, Any]) -> list[object]:
    records = {h: s["ip"] for h, s in conf["sites"].items() if not s.get("nxdomain")}
    keep = await dns.serve(conf["resolver"], 53, dns.Authority(records))
    web = WebServer(conf["sites"], CertStore(Path(conf["pki"])))
    return [*keep, *(await web.start())]


async def router(conf: dict[str, Any]) -> list[object]:
    keep: list[object] = []
    for isp in conf["isps"]:
        resolver = CensoringResolver(isp["dns"], conf["upstream"])
        await resolver.start()
        keep += await dns.serve(conf["censor"], isp["resolver_port"], resolver)
        if isp["proxy_hosts"]:
            keep.append(await BlockpageProxy(set(isp["proxy_hosts"])).start("0.0.0.0", isp["proxy_port"]))
    return keep


ROLES: dict[str, Callable[[dict[str, Any]], Awaitable[list[object]]]] = {
    "internet": internet,
    "router": router,
}


async def main(role: str, conf: dict[str, Any], ready_fd: int | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    keep = await ROLES[role](conf)
    if ready_fd is not None:
        os.write(ready_fd, b"ready\n")
        os.close(ready_fd)
    await stop.wait()
    del keep


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m reachwatch.lab.servers")
    parser.add_argument("role", choices=sorted(ROLES))
    parser.add_argument("config", type=Path)
    parser.add_argument("--ready-fd", type=int)
    args = parser.parse_args()
    conf = json.loads(args.config.read_text())
    try:
        import uvloop
    except ImportError:  # uvloop is Linux-only; asyncio's loop does the same, slower
        asyncio.run(main(args.role, conf, args.ready_fd))
    else:
        uvloop.run(main(args.role, conf, args.ready_fd))


if __name__ == "__main__":
    cli()
