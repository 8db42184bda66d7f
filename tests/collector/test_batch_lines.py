"""A batch body's lines: views numbered from one, newline counts, pieces cut at newlines."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from reachwatch.collector.batch_lines import lines_of, newlines, pieces


@given(st.binary(max_size=200).map(lambda b: b.replace(b"\r", b"\n")), st.integers(1, 6))
def test_pieces_cut_at_newlines_and_number_their_first_lines(body: bytes, count: int) -> None:
    cut = [(first, bytes(piece)) for first, piece in pieces(body, count)]
    assert b"".join(piece for _, piece in cut) == body
    assert 1 <= len(cut) <= count
    for (first, piece), (following, _) in itertools.pairwise(cut):
        assert piece.endswith(b"\n")
        assert following == first + piece.count(b"\n")


@given(
    st.binary(max_size=300).map(lambda b: b.replace(b"\r", b"\n")), st.integers(0, 300), st.integers(0, 300)
)
def test_newlines_counts_like_bytes_count(body: bytes, start: int, stop: int) -> None:
    assert newlines(body) == body.count(b"\n")
    assert newlines(body, start, stop) == body.count(b"\n", start, stop)


def test_newlines_past_those_found_one_by_one_are_counted_at_once() -> None:
    """A body of 16 M newlines, ~500 bytes compressed, took the event loop 3.5 s one by one (an
    outside check, session 17)."""
    body = b"x\n" * 5_000 + b"\n" * 100_000 + b"{}"
    assert newlines(body) == body.count(b"\n") == 105_000
    assert newlines(body, 3, len(body) - 5) == body.count(b"\n", 3, len(body) - 5)


@given(
    st.lists(st.sampled_from([b"", b" ", b"\t", b"\r", b"\x0b", b"\x0c", b"{}", b"x", b"\n"]), max_size=30)
)
def test_lines_are_the_non_blank_lines_numbered_from_one(parts: list[bytes]) -> None:
    body = b"".join(parts)
    expected = [(n, line) for n, line in enumerate(body.split(b"\n"), 1) if line and not line.isspace()]
    assert [(n, bytes(line)) for n, line in lines_of(body)] == expected
