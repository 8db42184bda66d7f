"""The transparent HTTP proxy in the router (technique ``http-blockpage``).

The router REDIRECTs an ISP's port-80 traffic for chosen site addresses here. A request whose
Host is blocked for that ISP gets the blockpage; anything else is relayed to the original
destination (``SO_ORIGINAL_DST``), byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

from reachwatch.lab.servers.http import blockpage_response, close, read_request
from reachwatch.lab.servers.pages import BLOCKPAGE

SO_ORIGINAL_DST = 80


def original_dst(sock: socket.socket) -> tuple[str, int]:
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, packed = struct.unpack_from("!2xH4s", raw)
    return socket.inet_ntoa(packed), port


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(ConnectionError, OSError):
        if writer.can_write_eof():
            writer.write_eof()


class BlockpageProxy:
    def __init__(self, blocked: set[str]) -> None:
        self.blocked = blocked

    async def start(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(self.handle, host, port, backlog=512, reuse_address=True)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        try:
            request = await read_request(reader, body=False)
            if request is None:
                return
            if request.host in self.blocked:
                writer.write(blockpage_response(BLOCKPAGE))
                await writer.drain()
                return
            await self._relay(original_dst(sock), request.raw, reader, writer)
        except (ConnectionError, OSError):
            pass
        finally:
            await close(writer)

    async def _relay(
        self, dst: tuple[str, int], head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*dst), 10)
        up_writer.write(head)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            await close(up_writer)
