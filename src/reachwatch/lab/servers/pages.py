"""Deterministic HTML: one page per site and the blockpage."""

from __future__ import annotations

import hashlib
import html

_WORDS = [
    "access",
    "network",
    "report",
    "freedom",
    "press",
    "river",
    "market",
    "council",
    "school",
    "harvest",
    "station",
    "energy",
    "library",
    "archive",
    "museum",
    "festival",
    "election",
    "weather",
    "garden",
    "bridge",
    "mountain",
    "village",
    "ocean",
    "science",
    "history",
    "music",
    "theatre",
    "football",
    "cricket",
    "recipe",
    "travel",
    "health",
    "budget",
    "railway",
]


PAGE_SIZE = 6000  # bytes of text in a site's page, unless the site is throttled (see topology)


def site_page(host: str, size: int = PAGE_SIZE) -> bytes:
    """A page whose ``<title>`` names the site and whose text depends only on the host."""
    seed = hashlib.sha256(host.encode()).digest()
    words: list[str] = []
    counter = length = 0
    while length < size:
        block = [_WORDS[b % len(_WORDS)] for b in hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()]
        words.extend(block)
        length += sum(map(len, block)) + len(block)
        counter += 1
    paragraphs = [" ".join(words[i : i + 60]) for i in range(0, len(words), 60)]
    name = html.escape(host)
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{name}</title></head>\n'
        f"<body><h1>Welcome to {name}</h1>\n{body}\n</body></html>\n"
    ).encode()


def not_found_page(host: str) -> bytes:
    name = html.escape(host)
    return f"<!DOCTYPE html>\n<html><head><title>Not found</title></head><body>No site {name}</body></html>\n".encode()


BLOCKPAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Access denied</title></head>\n"
    b"<body><h1>This website has been blocked</h1>\n"
    b"<p>Access to this website is prohibited under the regulations of the telecommunications "
    b"authority. (reachwatch lab blockpage)</p></body></html>\n"
)
