"""The stored measurement's bytes (``raw``): zstd frames, fast strategy, with a dictionary of OONI measurements.

A median measurement is ~6.6 KB of JSON whose keys and structure (``tcp_connect``, ``requests``,
``headers_list``, ``t0``...) recur in every other: a zstd dictionary trained on public OONI
measurements primes each frame with them. On measurements outside its training set it made a
median web_connectivity measurement 4.9× smaller instead of 3.3× and its compression 30 % faster
(8.7 against 12.9 µs), and never worse on the large ones (docs/collector.md, "Storage").

Each frame names its dictionary in its header (zstd's dictionary id), so frames written before the
dictionary (id 0) and with it decode side by side, and a later dictionary gets a new id and file
beside the first: a dictionary, once frames name it, is never changed or removed. The dictionaries
are package data (``dictionaries/``); anyone can rebuild them from the public measurements they were
trained on (``scripts/train_zstd_dictionary.py``) and decode ``raw`` with the ``zstd`` tool:
``zstd -d -D ooni-measurements-1.zdict``.
"""

from __future__ import annotations

import functools
import threading
from importlib import resources

import zstandard


def parameters() -> zstandard.ZstdCompressionParameters:
    """Level 1's strategy (``fast``) with a bigger hash table and window than level 1 takes beside a
    64 KB dictionary (2^14 entries, not 2^13; 512 KB, not 128): frames 7-10 % smaller (OONI's QA
    measurements 4.86x instead of 4.51x, a median one 1,231 bytes instead of 1,358, the large real
    ones 8.4x instead of 8.1x) for ~4 % fewer instructions (session 19, docs/collector.md "Storage").
    Any zstd decoder reads them: parameters are the compressor's choice, not the format's."""
    return zstandard.ZstdCompressionParameters(
        window_log=19,
        chain_log=13,  # unused by the fast strategy
        hash_log=14,
        search_log=1,
        min_match=6,
        target_length=0,
        strategy=zstandard.STRATEGY_FAST,
        write_content_size=1,
        write_dict_id=1,  # frames name their dictionary (a parameters object's default is not to)
        write_checksum=0,
    )


#: The dictionary new frames use: "RW" and its number, within zstd's range for private ids
DICTIONARY_ID = 0x52570001
#: Every dictionary a frame may name, by id: files in ``dictionaries/``
DICTIONARY_FILES = {DICTIONARY_ID: "ooni-measurements-1.zdict"}
#: How the dictionaries are trained (``scripts/train_zstd_dictionary.py``): fixed, so that training
#: is reproducible (zstd's COVER search, single-threaded, gave these for the first)
DICTIONARY_SIZE = 65536
COVER_K = 818
COVER_D = 8


class UnknownDictionary(ValueError):
    """A frame names a dictionary this version of reachwatch does not have."""


@functools.cache
def dictionary(dict_id: int) -> zstandard.ZstdCompressionDict:
    name = DICTIONARY_FILES.get(dict_id)
    if name is None:
        raise UnknownDictionary(
            f"a stored measurement is compressed with zstd dictionary {dict_id}, which this version "
            "of reachwatch does not have: read the store with the version that wrote it, or newer"
        )
    data = resources.files("reachwatch.store").joinpath("dictionaries", name).read_bytes()
    loaded = zstandard.ZstdCompressionDict(data, dict_type=zstandard.DICT_TYPE_FULLDICT)
    if loaded.dict_id() != dict_id:
        raise UnknownDictionary(f"dictionaries/{name} is dictionary {loaded.dict_id()}, not {dict_id}")
    # digested once for every compressor: otherwise each multi-frame call loads it again (a
    # group of 5 median measurements: 32 us a frame, against 13)
    loaded.precompute_compress(compression_params=parameters())
    return loaded


_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    """One per thread (they are not thread-safe), the dictionary digested once for each."""
    comp: zstandard.ZstdCompressor | None = getattr(_local, "c", None)
    if comp is None:
        comp = _local.c = zstandard.ZstdCompressor(
            compression_params=parameters(), dict_data=dictionary(DICTIONARY_ID)
        )
    return comp


def compress(data: bytes) -> bytes:
    """One measurement's frame."""
    return bytes(_compressor().compress(data))


#: Fewer frames are compressed one by one: a multi-frame call costs ~40 us more whatever its size
#: (a group of 2 median measurements: 18 us a frame, against 10 one by one)
MANY = 32


def compress_many(data: list[bytes]) -> list[bytes]:
    """:func:`compress` of each item (the same frames); from :data:`MANY` items in one call that
    releases the GIL once."""
    if len(data) < MANY:
        return [compress(d) for d in data]
    items: list[bytes | bytearray | memoryview] = list(data)
    frames = _compressor().multi_compress_to_buffer(items)
    return [frames[i].tobytes() for i in range(len(frames))]


def decompress(data: bytes) -> bytes:
    """A frame's measurement, whichever dictionary (or none) it names. Raises
    :class:`zstandard.ZstdError` for bytes that are not a whole frame, :class:`UnknownDictionary`
    for a dictionary this version lacks."""
    return bytes(decompressor(zstandard.get_frame_parameters(data).dict_id).decompress(data))


def decompressor(dict_id: int) -> zstandard.ZstdDecompressor:
    """This thread's decompressor for frames naming ``dict_id`` (0: none), made once (loading a
    dictionary into one costs ~25 us). Raises :class:`UnknownDictionary`."""
    decompressors: dict[int, zstandard.ZstdDecompressor] | None = getattr(_local, "d", None)
    if decompressors is None:
        decompressors = _local.d = {}
    dec = decompressors.get(dict_id)
    if dec is None:
        dec = decompressors[dict_id] = (
            zstandard.ZstdDecompressor(dict_data=dictionary(dict_id))
            if dict_id
            else zstandard.ZstdDecompressor()
        )
    return dec
