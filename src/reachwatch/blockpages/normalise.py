"""Turn a response body into comparable text: what a blockpage *says*, not how it is dressed.

Blockpages served by one system differ between measurements only in the blocked URL, the time,
a request id or a client address. Normalising removes those so identical templates compare equal.
"""

from __future__ import annotations

import html
import re

_SCRIPT_STYLE = re.compile(r"<(script|style|noscript)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_HOST = re.compile(r"\b(?:[a-z0-9-]+\.)+[a-z]{2,}\b|\b\d{1,3}(?:\.\d{1,3}){3}\b", re.IGNORECASE)
_NUMBER = re.compile(r"\d+")
_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s+")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)

#: Only the start of a body is normalised: blockpages are small, real pages are not.
MAX_CHARS = 65536


def normalise(body: str) -> str:
    """Visible text only, lowercased, without URLs, host names, IP addresses or numbers."""
    text = body[:MAX_CHARS]
    text = _COMMENT.sub(" ", _SCRIPT_STYLE.sub(" ", text))
    text = html.unescape(_TAG.sub(" ", text)).lower()
    text = _NUMBER.sub(" ", _HOST.sub(" ", _URL.sub(" ", text)))
    return _SPACE.sub(" ", text).strip()


def words(text: str) -> frozenset[str]:
    """The set of words of normalised text (what Jaccard similarity compares)."""
    return frozenset(_WORD.findall(text))


def title(body: str) -> str | None:
    """The ``<title>`` element's text, whitespace collapsed, or None."""
    m = _TITLE.search(body[:MAX_CHARS])
    if not m:
        return None
    text = _SPACE.sub(" ", html.unescape(m.group(1))).strip()
    return text or None


def text_segments(body: str) -> list[str]:
    """Raw (not normalised) runs of text between tags, stripped, in page order.

    Used to propose ``contains`` patterns: a pattern must be a verbatim substring of the body.
    """
    text = _COMMENT.sub("<>", _SCRIPT_STYLE.sub("<>", body[:MAX_CHARS]))
    out = []
    for part in _TAG.split(text):
        for line in part.splitlines():
            line = line.strip()
            if line:
                out.append(line)
    return out
