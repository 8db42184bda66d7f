"""Compressed request bodies (``Content-Encoding``): zstd, gzip, deflate.

A volunteer on metered mobile data pays for every byte: a median measurement is ~6.6 KB of JSON, and
zstd with the dictionary the store uses (:mod:`reachwatch.store.compression`) sends it in ~1.4 KB.
The outbox (``reachwatch submit``, ``measure --collector``) sends zstd so, and any client may send
zstd (with that dictionary, or none), gzip or deflate.

The decompressed body is held to the same ``--max-body`` as an uncompressed one: it is decoded a
slice at a time and refused (:class:`TooBig`, a 413) as soon as it grows past the limit, so a small
"bomb" cannot fill memory. A body that ends inside a frame (a truncated upload) is
:class:`Invalid` (a 400), never a shorter batch acknowledged; so are corrupt data and a zstd frame
naming a dictionary this collector lacks. A coding it does not take (``br``, ``compress``) is
:class:`Unsupported` (a 415). The HTTP layer (:mod:`reachwatch.collector.http`) maps them.
"""

from __future__ import annotations

import zlib

import zstandard

from reachwatch.store.compression import DICTIONARY_FILES, DICTIONARY_ID, UnknownDictionary, decompressor

#: The codings taken, as RFC 9110 (gzip, deflate) and RFC 8878 (zstd) name them
SUPPORTED = ("zstd", "gzip", "x-gzip", "deflate")
#: Compressed bytes decoded at a time from a zstd frame that does not declare its size: each
#: slice's output is checked against the limit (one slice of blocks of one repeated byte, 4 bytes
#: each, decodes to at most ~32 MB)
SLICE = 1024
#: ... and from the others (their output is bounded otherwise: :func:`_stream`)
BIG_SLICE = 64 << 10


class Unsupported(ValueError):
    """A coding not in :data:`SUPPORTED`."""


class Invalid(ValueError):
    """Data that is not whole and valid in its coding."""


class TooBig(ValueError):
    """The decompressed body passes the limit."""


def codings(value: bytes) -> list[str]:
    """The codings a ``Content-Encoding`` value lists, in the order they were applied
    (``identity`` left out). Raises :class:`Unsupported`."""
    found = [c.strip().lower() for c in value.decode("latin-1").split(",")]
    out = [c for c in found if c and c != "identity"]
    for coding in out:
        if coding not in SUPPORTED:
            raise Unsupported(
                f"Content-Encoding {coding[:32]!r} is not supported: send the body uncompressed, or "
                "compressed with zstd, gzip or deflate"
            )
    return out


def decoded(body: bytes, applied: list[str], limit: int) -> bytes:
    """``body`` with its codings undone, the last applied first. Raises :class:`TooBig` past
    ``limit`` bytes, :class:`Invalid` for data that is not whole and valid in its coding."""
    for coding in reversed(applied):
        if body:  # an empty body stays empty, whatever it claims
            body = _decoded(body, coding, limit)
    return body


def _decoded(body: bytes, coding: str, limit: int) -> bytes:
    """Every frame (zstd) or member (gzip) of ``body``, or its one deflate stream."""
    parts: list[bytes] = []
    size = 0
    data = memoryview(body)
    start = 0  # where the frame being decoded begins
    while start < len(data):
        stream, step = _stream(data[start:], coding, limit - size)
        at = start
        while not stream.eof:
            if at >= len(data):
                raise Invalid(_invalid(coding, "it ends inside a compressed frame: send the whole body"))
            piece = data[at : at + step]
            try:
                out = stream.decompress(piece, limit - size + 1)
            except (zlib.error, zstandard.ZstdError) as exc:
                raise Invalid(_invalid(coding, str(exc))) from None
            at += len(piece)
            size += len(out)
            if size > limit:
                raise TooBig(
                    f"request body larger than {limit} bytes once decompressed (Content-Encoding: {coding})"
                )
            parts.append(out)
        start = at - len(stream.unused_data)  # the next frame begins after this one's last byte
        if start < len(data) and coding == "deflate":
            raise Invalid(_invalid(coding, f"{len(data) - start} bytes follow the end of the deflate stream"))
    return b"".join(parts)


class _Zlib:
    """zlib's decompression object, its output held to a bound (``max_length``; what it leaves
    unread then can only grow the output past the limit)."""

    def __init__(self, wbits: int) -> None:
        self._stream = zlib.decompressobj(wbits)

    @property
    def eof(self) -> bool:
        return self._stream.eof

    @property
    def unused_data(self) -> bytes:
        return self._stream.unused_data

    def decompress(self, data: memoryview, bound: int) -> bytes:
        out = self._stream.decompress(data, bound)
        if self._stream.unconsumed_tail:  # stopped at the bound
            return out + b"\0"  # one byte more than the bound allows: too big
        return out


class _Zstd:
    """zstandard's decompression object; the bound is kept by the slices fed (:func:`_stream`)."""

    def __init__(self, dec: zstandard.ZstdDecompressor) -> None:
        self._stream = dec.decompressobj()

    @property
    def eof(self) -> bool:
        return bool(self._stream.eof)

    @property
    def unused_data(self) -> bytes:
        return bytes(self._stream.unused_data)

    def decompress(self, data: memoryview, bound: int) -> bytes:
        return bytes(self._stream.decompress(data))


def _stream(data: memoryview, coding: str, budget: int) -> tuple[_Zlib | _Zstd, int]:
    """A decompression object for the frame or member at the start of ``data``, and how many
    compressed bytes to feed it at a time. zlib holds its output to a bound itself; a zstd frame
    that declares its size (as one-shot compressors write it) is refused past the budget at once,
    and libzstd stops a frame that decodes past what it declared, so it takes big slices; one that
    declares none gets small ones, each one's output checked."""
    if coding == "deflate":
        # RFC 9110's deflate is zlib-wrapped (RFC 1950), whose 2-byte header is a multiple of 31;
        # some clients send the raw stream (RFC 1951)
        wrapped = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
        return _Zlib(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS), BIG_SLICE
    if coding != "zstd":
        return _Zlib(16 + zlib.MAX_WBITS), BIG_SLICE  # gzip
    try:
        params = zstandard.get_frame_parameters(data)
    except zstandard.ZstdError as exc:
        raise Invalid(_invalid(coding, str(exc))) from None
    declared = params.content_size != zstandard.CONTENTSIZE_UNKNOWN
    if declared and params.content_size > budget:
        raise TooBig(f"request body larger than {budget} bytes once decompressed (Content-Encoding: zstd)")
    try:
        dec = decompressor(params.dict_id)
    except UnknownDictionary:
        raise Invalid(
            _invalid(
                coding,
                f"a frame is compressed with dictionary {params.dict_id}, which this collector does not "
                f"have: compress without a dictionary, or with reachwatch's "
                f"{DICTIONARY_FILES[DICTIONARY_ID]} (dictionary {DICTIONARY_ID})",
            )
        ) from None
    return _Zstd(dec), BIG_SLICE if declared else SLICE


def _invalid(coding: str, why: str) -> str:
    return f"the request body is not valid {coding} (its Content-Encoding): {why}"
