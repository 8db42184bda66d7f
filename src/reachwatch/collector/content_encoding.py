"""Compressed request bodies (``Content-Encoding``): zstd, gzip, deflate.

A volunteer on metered mobile data pays for every byte: a median measurement is ~6.6 KB of JSON, and
zstd with the dictionary the store uses (:mod:`reachwatch.store.compression`) sends it in ~1.4 KB.
The outbox (``reachwatch submit``, ``measure --collector``) sends zstd so, and any client may send
zstd (with that dictionary, or none), gzip or deflate.

The decompressed body is held to the same ``--max-body`` as an uncompressed one, and refused
(:class:`TooBig`, a 413) as soon as it would pass the limit, so a small "bomb" cannot fill memory:
zlib's output is bounded call by call; a zstd frame's blocks are read first (their headers say the
most they hold, never trusting the size the frame declares), then the frame is decoded whole if
that fits, else a small slice at a time. A body of more than :data:`MAX_FRAMES` frames is
refused. A body that ends inside a frame (a truncated upload) is :class:`Invalid` (a 400), never a
shorter batch acknowledged; so are corrupt data and a zstd frame naming a dictionary this
collector lacks. A coding it does not take (``br``, ``compress``) is
:class:`Unsupported` (a 415). The HTTP layer (:mod:`reachwatch.collector.http`) maps them.
"""

from __future__ import annotations

import zlib

import zstandard

from reachwatch.store.compression import DICTIONARY_FILES, DICTIONARY_ID, UnknownDictionary, decompressor

#: The codings taken, as RFC 9110 (gzip, deflate) and RFC 8878 (zstd) name them
SUPPORTED = ("zstd", "gzip", "x-gzip", "deflate")
#: Compressed bytes decoded at a time from a zstd frame whose blocks could hold more than the
#: limit leaves, its output checked after each (one slice of 4-byte blocks decodes to at most ~8 MB)
SLICE = 256
#: Frames (zstd) or members (gzip) a body may hold: an empty one costs ~10 bytes and a few us to
#: read, so a body of nothing else kept the collector busy ~1 us a byte (an outside check)
MAX_FRAMES = 10_000
#: Codings one over the other a body may come in (``gzip, zstd``)
MAX_CODINGS = 4
#: Compressed bytes given zlib at a time (its output is held to the bound by ``max_length``)
ZLIB_SLICE = 64 << 10


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
    if coding == "zstd":
        return _zstd(memoryview(body), limit)
    return _zlib(memoryview(body), coding, limit)


def _too_big(limit: int, coding: str) -> TooBig:
    return TooBig(f"request body larger than {limit} bytes once decompressed (Content-Encoding: {coding})")


def _zlib(data: memoryview, coding: str, limit: int) -> bytes:
    """Every gzip member of ``data``, or its one deflate stream: zlib holds each call's output to
    what the limit leaves (``max_length``)."""
    parts: list[bytes] = []
    size = 0
    start = 0  # where the member being decoded begins
    members = 0
    while start < len(data):
        members += 1
        if members > MAX_FRAMES:
            raise Invalid(_invalid(coding, f"more than {MAX_FRAMES} members: compress the body as one"))
        stream = _stream(data[start:], coding)
        at = start
        while not stream.eof:
            if at >= len(data):
                raise Invalid(_invalid(coding, "it ends inside a compressed frame: send the whole body"))
            piece = data[at : at + ZLIB_SLICE]
            try:
                out = stream.decompress(piece, limit - size + 1)
            except zlib.error as exc:
                raise Invalid(_invalid(coding, str(exc))) from None
            if stream.unconsumed_tail:  # stopped at the bound: only more would come
                raise _too_big(limit, coding)
            at += len(piece)
            size += len(out)
            if size > limit:
                raise _too_big(limit, coding)
            parts.append(out)
        start = at - len(stream.unused_data)  # the next member begins after this one's last byte
        if start < len(data) and coding == "deflate":
            raise Invalid(_invalid(coding, f"{len(data) - start} bytes follow the end of the deflate stream"))
    return b"".join(parts)


def _stream(data: memoryview, coding: str) -> zlib._Decompress:
    if coding == "deflate":
        # RFC 9110's deflate is zlib-wrapped (RFC 1950), whose 2-byte header is a multiple of 31;
        # some clients send the raw stream (RFC 1951)
        wrapped = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
        return zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
    return zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip


def _zstd(data: memoryview, limit: int) -> bytes:
    """Every zstd frame of ``data`` (skippable ones skipped). Each frame's extent and the most its
    blocks can hold are read from its block headers first (:func:`_frame_extent`): a frame that
    ends early is refused before anything is decoded, and one whose blocks could hold more than the
    limit leaves is decoded in small slices, its output checked after each. The size a frame
    declares is never trusted: libzstd's streaming decoder checks it only at the frame's end, after
    decoding what the blocks hold (an outside check, session 15: 2.2 GB from a 64 KB body)."""
    parts: list[bytes] = []
    size = 0
    start = 0
    frames = 0
    while start < len(data):
        frames += 1
        if frames > MAX_FRAMES:
            raise Invalid(_invalid("zstd", f"more than {MAX_FRAMES} frames: compress the body as one"))
        end, most = _frame_extent(data, start)
        if most is not None:
            out = _zstd_frame(data[start:end], most, limit - size, limit)
            size += len(out)
            parts.append(out)
        start = end
    return b"".join(parts)


#: The most one compressed zstd block decodes to (RFC 8878: 128 KiB)
_BLOCK_MAX = 128 << 10
_SKIPPABLE = 0x184D2A50  # the magic numbers of skippable frames, with any last 4 bits
_ZSTD_MAGIC = 0xFD2FB528


def _frame_extent(data: memoryview, start: int) -> tuple[int, int | None]:
    """Where the frame at ``start`` ends, and the most its blocks decode to (None for a skippable
    frame), from the frame's header and its blocks' headers (RFC 8878), nothing decoded."""
    size = len(data)
    short = Invalid(_invalid("zstd", "it ends inside a compressed frame: send the whole body"))
    if start + 4 > size:
        raise short
    magic = int.from_bytes(data[start : start + 4], "little")
    if magic & 0xFFFFFFF0 == _SKIPPABLE:
        if start + 8 > size:
            raise short
        end = start + 8 + int.from_bytes(data[start + 4 : start + 8], "little")
        if end > size:
            raise short
        return end, None
    if magic != _ZSTD_MAGIC:
        raise Invalid(_invalid("zstd", f"no zstd frame at byte {start}"))
    try:
        at = start + zstandard.frame_header_size(data[start:])
    except zstandard.ZstdError as exc:
        raise Invalid(_invalid("zstd", str(exc))) from None
    most = 0
    while True:
        if at + 3 > size:
            raise short
        head = data[at] | data[at + 1] << 8 | data[at + 2] << 16
        kind, length = (head >> 1) & 3, head >> 3
        at += 3
        if kind == 0:  # raw
            at += length
            most += length
        elif kind == 1:  # one byte repeated
            at += 1
            most += length
        elif kind == 2:  # compressed
            at += length
            most += _BLOCK_MAX
        else:
            raise Invalid(_invalid("zstd", f"a block of the reserved type at byte {at - 3}"))
        if at > size:
            raise short
        if head & 1:  # the last block
            break
    if data[start + 4] & 0x04:  # a checksum follows
        at += 4
    if at > size:
        raise short
    return at, most


def _zstd_frame(frame: memoryview, most: int, budget: int, limit: int) -> bytes:
    """One whole frame, decoded with the dictionary it names (if any)."""
    try:
        params = zstandard.get_frame_parameters(frame)
    except zstandard.ZstdError as exc:
        raise Invalid(_invalid("zstd", str(exc))) from None
    declared = None if params.content_size == zstandard.CONTENTSIZE_UNKNOWN else params.content_size
    if declared is not None and declared > budget:
        raise _too_big(limit, "zstd")
    try:
        stream = decompressor(params.dict_id).decompressobj()
    except UnknownDictionary:
        raise Invalid(
            _invalid(
                "zstd",
                f"a frame is compressed with dictionary {params.dict_id}, which this collector does not "
                f"have: compress without a dictionary, or with reachwatch's "
                f"{DICTIONARY_FILES[DICTIONARY_ID]} (dictionary {DICTIONARY_ID})",
            )
        ) from None
    try:
        if most <= budget:  # whatever it holds fits: one call
            out = bytes(stream.decompress(frame))
        else:
            pieces: list[bytes] = []
            got = 0
            for at in range(0, len(frame), SLICE):
                piece = bytes(stream.decompress(frame[at : at + SLICE]))
                got += len(piece)
                if got > budget:
                    raise _too_big(limit, "zstd")
                pieces.append(piece)
            out = b"".join(pieces)
    except zstandard.ZstdError as exc:
        raise Invalid(_invalid("zstd", str(exc))) from None
    if not stream.eof:
        raise Invalid(_invalid("zstd", "it ends inside a compressed frame: send the whole body"))
    if declared is not None and len(out) != declared:
        raise Invalid(_invalid("zstd", f"a frame declares {declared} bytes and holds {len(out)}"))
    return out


def _invalid(coding: str, why: str) -> str:
    return f"the request body is not valid {coding} (its Content-Encoding): {why}"
