"""The journal's files: a record written whole or not at all."""

from __future__ import annotations

import resource
import signal
from pathlib import Path

import pytest

from reachwatch.store.journal_files import SUFFIX, Segment, decode, encode
from reachwatch.store.schema import RowColumns
from store.test_store import row


def test_a_write_cut_short_leaves_the_segment_as_it_was(tmp_path: Path) -> None:
    """A record that does not fit (here past the file size limit, as on a full disk: part of it
    written, then an error) is taken back, so the next record follows the last whole one."""
    segment = Segment(tmp_path / f"{1:012d}{SUFFIX}", sync=False)
    segment.append(encode(RowColumns.of_rows([row(1)])))
    size = segment.size
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, limits[1]))
    try:
        with pytest.raises(OSError):
            segment.append(encode(RowColumns.of_rows([row(2)])))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, handler)
    assert segment.path.stat().st_size == size
    segment.append(encode(RowColumns.of_rows([row(3)])))
    segment.close()
    parts, damage, _ = decode(segment.path.read_bytes())
    assert damage is None
    assert [p.uids for p in parts] == [[row(1).measurement_uid], [row(3).measurement_uid]]
