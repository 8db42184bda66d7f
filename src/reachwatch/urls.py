"""What makes a URL measurable: one check shared by every place a URL comes in.

Test lists, URL arguments, ``--control``/``--collector``, the control helper's requests and
redirect ``Location`` headers all come from outside. ``urllib.parse`` accepts hosts that cannot be
looked up (``a example``, ``a..b``) and raises ``ValueError`` on others (``http://[::1/``); both
must become a named problem, never an exception deep inside DNS or HTTP code.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, urlsplit

# one label of a name on the wire (after IDNA): letters, digits, '-' and '_' (seen in real names)
_LABEL = re.compile(r"^[a-z0-9_-]{1,63}$")


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def ascii_host(host: str) -> str:
    """The host as it travels on the wire: IDNA (punycode) for a Unicode name, else unchanged.

    Raises ``UnicodeError`` for a name IDNA cannot encode (an empty or too long label...).
    """
    if host.isascii():
        return host
    return host.encode("idna").decode("ascii")


def host_problem(host: str) -> str | None:
    """Why ``host`` (as ``urlsplit().hostname`` gives it) cannot be looked up, or None."""
    if is_ip_literal(host):
        return None
    try:
        wire = ascii_host(host).lower()
    except UnicodeError:
        return f"host {host!r} is not a valid domain name (an empty or too long label?)"
    name = wire[:-1] if wire.endswith(".") else wire
    if not name or len(name) > 253:
        return f"host {host!r} is not a valid domain name (1 to 253 characters)"
    labels = name.split(".")
    if "" in labels:
        return f"host {host!r} is not a valid domain name: it has an empty label ('..')"
    bad = next((label for label in labels if not _LABEL.match(label)), None)
    if bad is not None:
        return (
            f"host {host!r} is not a valid domain name: label {bad!r} may only have letters, "
            "digits, '-' and '_' (1 to 63 of them)"
        )
    if labels[-1].isdigit():
        return f"host {host!r} is neither a domain name nor a valid IP address"
    return None


def is_https(url: str) -> bool:
    """Whether the URL's scheme is https, in any case (RFC 3986: ``HTTPS://`` is https too)."""
    return url[:6].lower() == "https:"


def split_url(url: str) -> tuple[SplitResult | None, str | None]:
    """``(parts, None)`` for an absolute http(s) URL with a valid host and port, else ``(None, why)``."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        return None, f"{url!r} contains control characters (a tab or a line break?)"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return None, f"{url!r} is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return None, f"{url!r} is not an http:// or https:// URL"
    host = parts.hostname
    if not host:
        return None, f"{url!r} has no host name"
    if port == 0:
        return None, f"{url!r} has port 0"
    problem = host_problem(host)
    if problem is not None:
        return None, f"{url!r}: {problem}"
    return parts, None
