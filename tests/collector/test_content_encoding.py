"""Compressed bodies decoded whole, or refused: held to the limit however the data lies about its size."""

from __future__ import annotations

import gzip
import zlib

import pytest
import zstandard

from reachwatch.collector.content_encoding import Invalid, TooBig, Unsupported, codings, decoded
from reachwatch.store.compression import compress

BODY = b'{"test_name": "web_connectivity", "input": "https://example.org/"}\n' * 200


def _streamed(data: bytes) -> bytes:
    """A zstd frame that does not declare its size, as a streaming compressor writes it."""
    packer = zstandard.ZstdCompressor().compressobj()
    return packer.compress(data) + packer.flush()


def _lying(frame: bytes, size: int) -> bytes:
    """``frame`` (zstd, a 4-byte content size, not single-segment) declaring ``size`` instead."""
    descriptor = frame[4]
    assert descriptor >> 6 == 2 and not descriptor & 0x20, "a 4-byte content size after the window byte"
    return frame[:6] + size.to_bytes(4, "little") + frame[10:]


def test_every_frame_and_member_is_decoded() -> None:
    assert (
        decoded(compress(BODY[:100]) + zstandard.ZstdCompressor().compress(BODY[100:]), ["zstd"], 10**6)
        == BODY
    )
    assert decoded(gzip.compress(BODY[:7]) + gzip.compress(BODY[7:]), ["gzip"], 10**6) == BODY
    assert decoded(_streamed(BODY), ["zstd"], 10**6) == BODY  # declares no size: small slices
    assert decoded(compress(gzip.compress(BODY)), ["gzip", "zstd"], 10**6) == BODY
    assert decoded(b"", ["zstd"], 10) == b""


def test_a_frame_lying_about_its_size_is_stopped() -> None:
    """A frame declaring 100 bytes that holds 10 MB of zeros: libzstd stops it at the first block
    past what it declared, the limit is never reached."""
    frame = zstandard.ZstdCompressor(level=3).compress(b"\0" * 10_000_000)
    with pytest.raises(Invalid, match="not valid zstd"):
        decoded(_lying(frame, 100), ["zstd"], 10**9)
    with pytest.raises(TooBig, match="larger than 1000000 bytes"):
        decoded(frame, ["zstd"], 1_000_000)  # the size it declares, refused before decoding


@pytest.mark.parametrize(
    "bomb",
    [
        gzip.compress(b"\0" * 20_000_000),
        zlib.compress(b"\0" * 20_000_000),
        _streamed(b"\0" * 20_000_000),
    ],
    ids=["gzip", "deflate", "zstd without a size"],
)
def test_bombs_stop_at_the_limit(bomb: bytes) -> None:
    coding = "gzip" if bomb[:2] == b"\x1f\x8b" else "deflate" if bomb[0] == 0x78 else "zstd"
    with pytest.raises(TooBig, match="larger than 1000000 bytes once decompressed"):
        decoded(bomb, [coding], 1_000_000)


def test_codings() -> None:
    assert codings(b" GZIP , identity,zstd") == ["gzip", "zstd"]
    assert codings(b"identity") == []
    with pytest.raises(Unsupported, match="'br' is not supported"):
        codings(b"gzip, br")
