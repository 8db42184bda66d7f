"""Rate of `reachwatch measure` against one loopback HTTPS server vs a bare asyncio TCP+TLS+GET loop.

Not a test (not collected): run ``.venv/bin/python tests/probe/bench_loopback.py [N]``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop

from reachwatch.probe.testing import ThrowawayCA

SERVER = """
import asyncio, ssl, sys, uvloop
PAGE = b"<html><head><title>Bench</title></head><body>" + b"x" * 2000 + b"</body></html>"
HEAD = b"HTTP/1.1 200 OK\\r\\nContent-Type: text/html\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(PAGE)
async def serve(reader, writer):
    try:
        while await reader.readuntil(b"\\r\\n\\r\\n"):
            writer.write(HEAD + PAGE)
            await writer.drain()
    except Exception:
        pass
    writer.close()
async def main():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    server = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[3]), ssl=ctx, backlog=1024)
    await server.serve_forever()
uvloop.run(main())
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int) -> None:
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


async def bare(urls: list[str], port: int, ca_file: Path, parallel: int) -> None:
    ctx = ssl.create_default_context(cafile=str(ca_file))
    sem = asyncio.Semaphore(parallel)

    async def one(path: str) -> None:
        async with sem:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=ctx, server_hostname="localhost"
            )
            writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            writer.close()

    await asyncio.gather(*(one("/" + u.rsplit("/", 1)[1]) for u in urls))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    parallel = 100
    tmp = Path(tempfile.mkdtemp())
    ca = ThrowawayCA(tmp)
    leaf = ca.issue(["localhost", "127.0.0.1"])
    port, control_port = free_port(), free_port()
    procs = [subprocess.Popen([sys.executable, "-c", SERVER, str(leaf.cert), str(leaf.key), str(port)])]
    rw = [sys.executable, "-m", "reachwatch"]
    procs.append(
        subprocess.Popen(
            [*rw, "control", "serve", "--port", str(control_port), "--lab", "--ca-file", str(ca.ca_file)]
        )
    )
    try:
        wait_port(port)
        wait_port(control_port)
        urls = [f"https://127.0.0.1:{port}/page{i}" for i in range(n)]
        start = time.monotonic()
        uvloop.run(bare(urls, port, ca.ca_file, parallel))
        bare_rate = n / (time.monotonic() - start)
        runs = [("with control (--lab, same host)", f"http://127.0.0.1:{control_port}/"),
                ("control unreachable (probe alone)", f"http://127.0.0.1:{free_port()}/")]  # fmt: skip
        for label, control in runs:
            out = tmp / "out.jsonl"
            start = time.monotonic()
            subprocess.run([*rw, "measure", *urls, "--control", control, "--ca-file", str(ca.ca_file),
                            "--resolver", "127.0.0.1:9", "--output", str(out), "--no-progress",
                            "--parallel", str(parallel)], check=True)  # fmt: skip
            elapsed = time.monotonic() - start
            lines = out.read_text().splitlines()
            ok = sum('"code":200' in line for line in lines)
            print(
                f"reachwatch measure {label}: {n / elapsed:.0f}/s ({elapsed:.2f} s incl. start-up, {ok}/{n} ok)"
            )
        print(f"bare asyncio TCP+TLS+GET loop: {bare_rate:.0f}/s")
    finally:
        for proc in procs:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(10)


if __name__ == "__main__":
    main()
