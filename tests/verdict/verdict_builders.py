"""Small builders of web_connectivity measurements, in our probe's shape (docs/contracts.md)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

SITE_IP = "198.18.0.10"  # the lab's site addresses are OONI-bogons: same as the control's = fine
OTHER_IP = "93.184.216.99"  # a hijacked answer: another network
PAGE = "<html><head><title>Example Domain Welcome Page</title></head><body>" + "x" * 900 + "</body></html>"
BLOCKPAGE = "<html><head><title>Access Denied By Order</title></head><body>blocked</body></html>"
HEADERS = {"Content-Type": "text/html", "X-Site-Id": "origin", "Date": "now"}


def _port(url: str) -> int:
    return 443 if url.startswith("https") else 80


def hop(
    url: str,
    depth: int,
    *,
    addrs: tuple[str, ...] = (SITE_IP,),
    dns_failure: str | None = None,
    tcp_failure: str | None = None,
    tls_failure: str | None = None,
    tls_bytes: int = 0,
    http_failure: str | None = None,
    code: int | None = 200,
    body: str = PAGE,
    http_bytes: int = 0,
    headers: dict[str, str] | None = None,
    location: str | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """The probe's events for one hop; operations after the first failure are not attempted."""
    host = urlsplit(url).hostname or ""
    tags = [f"depth={depth}"]
    tx = 100 * depth + 1
    answers = [{"answer_type": "A", "ipv4": a, "ttl": 60} for a in addrs]
    out: dict[str, list[dict[str, Any]]] = {
        "queries": [],
        "tcp_connect": [],
        "tls_handshakes": [],
        "requests": [],
    }
    out["queries"].append(
        {"hostname": host, "query_type": "A", "engine": "getaddrinfo", "resolver_address": "",
         "failure": dns_failure, "answers": [] if dns_failure else answers, "tags": tags, "transaction_id": tx}
    )  # fmt: skip
    if dns_failure:
        return out
    ip, port = addrs[0], _port(url)
    tx += 1
    out["tcp_connect"].append(
        {"ip": ip, "port": port, "status": {"success": tcp_failure is None, "failure": tcp_failure, "blocked": None},
         "tags": tags, "transaction_id": tx}
    )  # fmt: skip
    if tcp_failure:
        return out
    if port == 443:
        out["tls_handshakes"].append(
            {"network": "tcp", "address": f"{ip}:{port}", "server_name": host, "failure": tls_failure,
             "no_tls_verify": False, "tags": tags, "transaction_id": tx, "x_bytes_received": tls_bytes}
        )  # fmt: skip
        if tls_failure:
            return out
    response: dict[str, Any] = {"code": code, "headers": dict(headers or HEADERS), "body": body,
                                "body_is_truncated": False}  # fmt: skip
    if location:
        response["headers"]["Location"] = location
    if code is None:
        response = {"code": 0, "headers": {}, "body": ""}
    out["requests"].append(
        {"request": {"method": "GET", "url": url, "headers": {}, "body": ""}, "response": response,
         "failure": http_failure, "tags": tags, "transaction_id": tx, "x_bytes_received": http_bytes}
    )  # fmt: skip
    return out


def control(
    url: str,
    *,
    addrs: tuple[str, ...] = (SITE_IP,),
    dns_failure: str | None = None,
    tcp_failure: str | None = None,
    tls_failure: str | None = None,
    http_failure: str | None = None,
    status: int = 200,
    body: str = PAGE,
    title: str = "Example Domain Welcome Page",
    asn: int = 0,
) -> dict[str, Any]:
    host = urlsplit(url).hostname or ""
    port = _port(url)
    ctrl: dict[str, Any] = {
        "dns": {"failure": dns_failure, "addrs": [] if dns_failure else list(addrs)},
        "tcp_connect": {} if dns_failure else {f"{a}:{port}": {"status": tcp_failure is None, "failure": tcp_failure} for a in addrs},
        "tls_handshake": {},
        "http_request": {"body_length": -1, "failure": http_failure, "title": "", "headers": {}, "status_code": -1},
        "ip_info": {a: {"asn": asn, "flags": 0} for a in addrs},
    }  # fmt: skip
    if port == 443 and not dns_failure and not tcp_failure:
        ctrl["tls_handshake"] = {f"{a}:{port}": {"server_name": host, "status": tls_failure is None,
                                                 "failure": tls_failure} for a in addrs}  # fmt: skip
    if http_failure is None:
        ctrl["http_request"] = {"body_length": len(body), "failure": None, "title": title, "headers": dict(HEADERS),
                                "status_code": status, "discovered_h3_endpoint": ""}  # fmt: skip
    return ctrl


def measurement(
    hops: list[dict[str, list[dict[str, Any]]]],
    url: str,
    ctrl: dict[str, Any] | None,
    x_controls: list[dict[str, Any]] | None = None,
    control_failure: str | None = None,
) -> dict[str, Any]:
    tk: dict[str, Any] = {"queries": [], "tcp_connect": [], "tls_handshakes": [], "requests": []}
    for h in hops:
        for key in ("queries", "tcp_connect", "tls_handshakes"):
            tk[key].extend(h[key])
        tk["requests"][:0] = h["requests"]  # newest first
    tk["control"] = ctrl
    tk["control_failure"] = control_failure
    tk["x_controls"] = x_controls or []
    tk["x_dns_duplicate_responses"] = []
    return {
        "test_name": "web_connectivity", "input": url, "software_name": "reachwatch",
        "report_id": "r1", "test_keys": tk, "data_format_version": "0.2.0",
    }  # fmt: skip


def single(url: str, probe: dict[str, Any], ctrl: dict[str, Any]) -> dict[str, Any]:
    """A one-hop measurement: probe options for :func:`hop`, control options for :func:`control`."""
    return measurement([hop(url, 0, **probe)], url, control(url, **ctrl))


def redirected(url: str, probe: dict[str, Any], ctrl: dict[str, Any]) -> dict[str, Any]:
    """The same, reached after a redirect from another host (per-hop control in x_controls)."""
    start = ("https" if url.startswith("https") else "http") + "://start.example/"
    first = hop(start, 0, code=302, body="", location=url)
    final_page = control(url, **ctrl)
    first_ctrl = control(start)
    first_ctrl["http_request"] = final_page["http_request"]  # the helper follows redirects
    return measurement(
        [first, hop(url, 1, **probe)], start, first_ctrl, [{"url": url, "control": final_page}]
    )
