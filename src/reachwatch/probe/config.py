"""What a probe run is configured with: timeouts, the resolver, trust anchors, labels."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from reachwatch.errors import UserError

BODY_LIMIT = 512 * 1024
MAX_REDIRECTS = 10
MAX_ADDRESSES = 10
DEFAULT_PARALLEL = 100


@dataclass(frozen=True, slots=True)
class Timeouts:
    dns: float = 4.0
    tcp: float = 10.0
    tls: float = 10.0
    http: float = 10.0


@dataclass(frozen=True)
class ProbeConfig:
    control_url: str | None = None
    resolver: tuple[str, int] | None = None
    ca_file: Path | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    probe_asn: str = "AS0"
    probe_cc: str = "ZZ"
    probe_network_name: str = ""
    use_system_resolver: bool = True
    body_limit: int = BODY_LIMIT
    # the control helper's safety check: a failure string refuses the address, None allows it
    refuse_address: Callable[[str], str | None] | None = None

    @cached_property
    def ssl_context(self) -> ssl.SSLContext:
        """One verifying context for the whole run (system store + --ca-file), HTTP/1.1 only."""
        return make_ssl_context(self.ca_file)


def make_ssl_context(ca_file: Path | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if ca_file is not None:
        try:
            ctx.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise UserError(f"cannot load trust anchors: {exc}", where=str(ca_file)) from None
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def parse_resolver(text: str | None, resolv_conf: Path = Path("/etc/resolv.conf")) -> tuple[str, int]:
    """``IP``, ``IP:PORT`` or ``[IPv6]:PORT``; None means the first nameserver of resolv.conf."""
    if text is None:
        return (_first_nameserver(resolv_conf), 53)
    host, port = text.strip(), "53"
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif host.count(":") == 1:
        host, port = host.split(":")
    try:
        ip = ipaddress.ip_address(host)
        number = int(port)
        if not 0 < number < 65536:
            raise ValueError(port)
    except ValueError:
        raise UserError(
            f"--resolver {text!r} is not IP[:PORT]", fix="e.g. --resolver 127.0.0.1:5353 or 8.8.8.8"
        ) from None
    return (str(ip), number)


def _first_nameserver(path: Path) -> str:
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror}", where=str(path), fix="pass --resolver IP") from None
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                return str(ipaddress.ip_address(parts[1].split("%")[0]))
            except ValueError:
                continue
    raise UserError("no nameserver line", where=str(path), fix="pass --resolver IP")
