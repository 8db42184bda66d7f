"""All the patterns of one location (DNS answers, bodies, one header) compiled into one searcher.

Speed matters: the analysis must run at >= 20,000 measurements/s per core, and the upstream set
holds ~1,300 body ``contains`` patterns. Testing each with ``pattern in body`` costs milliseconds
per body, and one big regexp alternation is slower still (Python's ``re`` tries every branch at
every position). Instead:

- ``full``: one dict lookup.  ``prefix``: one ``str.startswith(tuple)`` call decides whether any
  prefix matches; only then is the matching one looked for.
- ``contains``: an inverted index on *anchor tokens*. The text is split once, in C
  (``bytes.translate`` + ``split``), into tokens delimited by ASCII punctuation and whitespace.
  A pattern token with a delimiter on both sides *inside the pattern* must appear as a whole
  token of any text containing the pattern, so the pattern is verified with ``in`` only when its
  rarest such token (and its second rarest, when there is one) is in the text's token set. The
  filter is exact: it never hides a match. Patterns without such a token (one word, CJK text)
  fall back to ``in``; a pattern with characters above U+00FF costs nothing on a Latin-1 body.
- ``regexp``: compiled once, ``search`` each.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Iterable

from reachwatch.fingerprints.model import Fingerprint

_DELIMITERS = (string.punctuation + string.whitespace).encode("ascii")
_TO_SPACE = bytes.maketrans(_DELIMITERS, b" " * len(_DELIMITERS))
_TOKEN = re.compile(rb"[^ ]+")


def tokens(text: str) -> set[bytes]:
    """The set of tokens of ``text`` (UTF-8 bytes runs between ASCII punctuation/whitespace)."""
    return set(text.encode("utf-8", "surrogatepass").translate(_TO_SPACE).split())


def inner_tokens(pattern: str) -> list[bytes]:
    """Tokens of ``pattern`` delimited on both sides within the pattern itself."""
    spaced = pattern.encode("utf-8", "surrogatepass").translate(_TO_SPACE)
    return [m.group() for m in _TOKEN.finditer(spaced) if m.start() > 0 and m.end() < len(spaced)]


def _identity(text: str) -> str:
    return text


class PatternSet:
    """Search one text for all the fingerprints of one location at once."""

    def __init__(
        self, fingerprints: Iterable[Fingerprint], *, normalise: Callable[[str], str] = _identity
    ) -> None:
        fps = list(fingerprints)
        self._order = {fp.name: i for i, fp in enumerate(fps)}
        self._full: dict[str, list[Fingerprint]] = {}
        self._prefix: list[tuple[str, Fingerprint]] = []
        self._regexps: list[tuple[re.Pattern[str], Fingerprint]] = []
        self._fallback: list[tuple[str, Fingerprint]] = []
        self._anchors: dict[bytes, list[tuple[bytes | None, str, Fingerprint]]] = {}
        contains: list[tuple[str, Fingerprint, list[bytes]]] = []
        for fp in fps:
            if fp.pattern_type == "regexp":
                self._regexps.append((re.compile(fp.pattern), fp))
                continue
            pattern = normalise(fp.pattern)
            if fp.pattern_type == "full":
                self._full.setdefault(pattern, []).append(fp)
            elif fp.pattern_type == "prefix":
                self._prefix.append((pattern, fp))
            else:
                contains.append((pattern, fp, sorted(set(inner_tokens(pattern)))))
        self._prefixes = tuple(p for p, _ in self._prefix)
        self._index_contains(contains)
        self._anchor_set = frozenset(self._anchors)

    def _index_contains(self, contains: list[tuple[str, Fingerprint, list[bytes]]]) -> None:
        # Rarity among the patterns themselves, then length, stands in for rarity in real pages.
        freq = Counter(tok for _, _, toks in contains for tok in toks)
        for pattern, fp, toks in contains:
            if not toks:
                self._fallback.append((pattern, fp))
                continue
            ranked = sorted(toks, key=lambda t: (freq[t], -len(t), t))
            second = ranked[1] if len(ranked) > 1 else None
            self._anchors.setdefault(ranked[0], []).append((second, pattern, fp))

    def __len__(self) -> int:
        return len(self._order)

    def search(self, text: str) -> list[Fingerprint]:
        """Every fingerprint whose pattern matches ``text`` (already normalised), in load order."""
        found: list[Fingerprint] = []
        if self._full:
            found.extend(self._full.get(text, ()))
        if self._prefixes and text.startswith(self._prefixes):
            found.extend(fp for p, fp in self._prefix if text.startswith(p))
        if self._anchor_set:
            toks = tokens(text)
            for anchor in toks.intersection(self._anchor_set):
                for second, pattern, fp in self._anchors[anchor]:
                    if (second is None or second in toks) and pattern in text:
                        found.append(fp)
        found.extend(fp for pattern, fp in self._fallback if pattern in text)
        found.extend(fp for rx, fp in self._regexps if rx.search(text))
        if len(found) > 1:
            found.sort(key=lambda fp: self._order[fp.name])
        return found
