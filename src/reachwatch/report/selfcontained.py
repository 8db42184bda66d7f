"""Find what in an HTML document could make a browser fetch something: a published report must
load nothing (no fonts, scripts, images or styles from anywhere).

Text is allowed to mention addresses; attributes and style sheets are not allowed to point at any.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

URL_ATTRS = frozenset({"src", "href", "action", "formaction", "poster", "srcset", "data", "xlink:href", "background", "ping", "manifest", "cite"})  # fmt: skip
_CSS_URL = re.compile(r"url\(\s*['\"]?(?!#)([^'\")]*)", re.IGNORECASE)
_CSS_IMPORT = re.compile(r"@import", re.IGNORECASE)
_SCHEME = re.compile(r"^\s*([a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)
LOCAL_OK = ("#", "data:")


class _Scanner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "iframe", "object", "embed", "link", "base"):
            self.found.append(f"<{tag}> element")
        self._in_style = tag == "style"
        for name, value in attrs:
            value = value or ""
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=...> event handler")
            elif name == "style":
                self._css(value, f"<{tag} style>")
            elif name in URL_ATTRS and not value.startswith(LOCAL_OK) and _SCHEME.match(value):
                self.found.append(f"<{tag} {name}={value!r}>")
            elif name == "content" and re.search(r"url\s*=", value, re.IGNORECASE):
                self.found.append(f"<{tag} content={value!r}> (refresh)")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self._in_style = False

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self._css(data, "<style>")

    def _css(self, css: str, where: str) -> None:
        self.found.extend(f"{where} url({m.group(1)})" for m in _CSS_URL.finditer(css))
        if _CSS_IMPORT.search(css):
            self.found.append(f"{where} @import")


def external_references(html: str) -> list[str]:
    """Everything in ``html`` that could load a resource; empty for a self-contained document.

    Relative links to the report's own data files (``<a href="x.csv">``) are not loads and are allowed.
    """
    scanner = _Scanner()
    scanner.feed(html)
    scanner.close()
    return scanner.found
