"""An early answer that the client can read: the rest of the body is read before the connection closes.

The collector answers some requests before their body has arrived: 413 on a declared length past
the limit or as soon as the body passes it, 404 for an unknown report id, 415 for a body
compressed in a coding it does not take. On a kept-alive connection uvicorn reads and drops what follows the answer, so the client
reads the answer when it is done sending. But when the request says ``Connection: close`` (as
Python's urllib and many scripts send) or is HTTP/1.0, the server closes the socket right after
the answer, with the rest of the body still arriving: the kernel then resets the connection, and a
client that reads only once it has sent everything (urllib) sees "connection reset by peer"
instead of the 413 that says what to fix.

So on such a connection an answer given while the body is unfinished is sent at once, all but its
end: the last (empty) piece, after which uvicorn closes the connection, waits until the rest of the
body has been read and dropped, for at most :data:`LINGER_SECONDS` (nginx's lingering close waits
30 s too) and :data:`LINGER_BYTES`. A client that reads as it sends has the whole answer at once
(its Content-Length says where it ends); one that reads only once all is sent finds it waiting.
(Until session 13 the rest was read first, and a client that paused mid-body waited the 30 s for
its answer.) Not when the client waits for ``100 Continue`` before sending the body (nothing is
coming, and reading would ask for it) and not for a 408 (the body stopped arriving). Requests on
kept-alive connections, the common case, pass through untouched.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import Message, Receive, Scope, Send

LINGER_SECONDS = 30.0
LINGER_BYTES = 1 << 30


def closes_after(scope: Scope) -> bool:
    """Whether the server closes the connection after answering this request (uvicorn does for
    HTTP/1.0 and for ``Connection: close``)."""
    if scope.get("http_version") == "1.0":
        return True
    return any(name == b"connection" and b"close" in value.lower() for name, value in scope["headers"])


class LingeringBody:
    """``receive`` and ``send`` of one request, such that an answer given before the request's
    body ended first reads the rest of the body (bounded) and drops it."""

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self.ended = False  # the body's last message (or the client's disconnect) was received
        self.started = False  # the app asked for the body (uvicorn sent any 100 Continue then)
        self.lingering = False  # an early answer: its end waits for the rest of the body
        self.waits_for_continue = any(
            name == b"expect" and value.lower() == b"100-continue" for name, value in scope["headers"]
        )

    async def receive(self) -> Message:
        self.started = True
        message = await self._receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            self.ended = True
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            early = not self.ended and message.get("status") != 408
            self.lingering = early and (self.started or not self.waits_for_continue)
        elif self.lingering and message["type"] == "http.response.body" and not message.get("more_body"):
            # the answer goes now; its end (uvicorn then closes) once the rest of the body is read
            await self._send({**message, "more_body": True})
            await self._drop_rest()
            await self._send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        await self._send(message)

    async def _drop_rest(self) -> None:
        dropped = 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LINGER_SECONDS):
                while not self.ended and dropped < LINGER_BYTES:
                    dropped += len((await self.receive()).get("body", b""))
