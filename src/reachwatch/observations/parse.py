"""Flatten a web_connectivity measurement (any version, 0.0.1 ... 0.5.x, ours) into records.

Nothing here raises on a malformed measurement: absent or ill-typed parts become empty tuples
or ``None`` ("unknown") values. The meaning of what was observed lives in ``reachwatch.verdict``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reachwatch.observations.records import (
    Control,
    ControlDNS,
    ControlHTTP,
    DNSLookup,
    HTTPTransaction,
    Observations,
    TCPConnect,
    TLSHandshake,
    endpoint,
)
from reachwatch.observations.text import (
    as_failure,
    as_int,
    as_list,
    as_map,
    as_str,
    body_bytes_and_text,
    header_keys,
    norm_host,
    tag_values,
    title_of,
    url_parts,
)

_ADDR_KEYS = ("ipv4", "ipv6")


def flatten(measurement: Mapping[str, Any]) -> Observations:
    """Turn one measurement into :class:`Observations`. Never raises on bad input."""
    if not isinstance(measurement, Mapping):
        return Observations(test_name=None, input=None, hostname="", has_test_keys=False)
    raw_input = measurement.get("input")
    if isinstance(raw_input, list):  # some old reports carry the input as a list
        raw_input = raw_input[0] if raw_input else None
    url = as_str(raw_input)
    hostname = url_parts(url)[1]
    test_name = as_str(measurement.get("test_name"))
    tk = measurement.get("test_keys")
    if not isinstance(tk, Mapping):
        return Observations(test_name=test_name, input=url, hostname=hostname, has_test_keys=False)
    dns = tuple(_queries(as_list(tk.get("queries")), False)) + tuple(
        _queries(as_list(tk.get("x_dns_duplicate_responses")), True)
    )
    http = tuple(_requests(as_list(tk.get("requests"))))
    extra = {
        key: value
        for key in ("http_experiment_failure", "dns_experiment_failure")
        if isinstance(value := tk.get(key), str) and value
    }
    return Observations(
        test_name=test_name,
        input=url,
        hostname=hostname,
        has_test_keys=True,
        dns=dns,
        tcp=tuple(_tcp_connects(as_list(tk.get("tcp_connect")))),
        tls=tuple(_tls_handshakes(as_list(tk.get("tls_handshakes")))),
        http=http,
        controls=_controls(tk, hostname),
        control_failure=as_failure(tk.get("control_failure")),
        extra=extra,
    )


def _queries(entries: list[Any], duplicate: bool) -> list[DNSLookup]:
    out = []
    for q in entries:
        if not isinstance(q, Mapping):
            continue
        addrs = []
        for answer in as_list(q.get("answers")):
            if isinstance(answer, Mapping):
                for key in _ADDR_KEYS:
                    value = answer.get(key)
                    if isinstance(value, str) and value:
                        addrs.append(value)
        depth, _ = tag_values(q.get("tags"))
        out.append(
            DNSLookup(
                hostname=norm_host(as_str(q.get("hostname")) or ""),
                engine=as_str(q.get("engine")) or "",
                query_type=as_str(q.get("query_type")) or "",
                failure=as_failure(q.get("failure")),
                addrs=tuple(addrs),
                depth=depth or 0,
                transaction_id=as_int(q.get("transaction_id")),
                duplicate=duplicate,
            )
        )
    return out


def _tcp_connects(entries: list[Any]) -> list[TCPConnect]:
    out = []
    for t in entries:
        if not isinstance(t, Mapping):
            continue
        ip, port = as_str(t.get("ip")), as_int(t.get("port"))
        if not ip or port is None:
            continue
        status = as_map(t.get("status"))
        failure = as_failure(status.get("failure"))
        if failure is None and status.get("success") is False:
            failure = "unknown_failure: connect failed"
        depth, fetch = tag_values(t.get("tags"))
        out.append(TCPConnect(ip, port, failure, depth or 0, as_int(t.get("transaction_id")), fetch))
    return out


def _tls_handshakes(entries: list[Any]) -> list[TLSHandshake]:
    out = []
    for s in entries:
        if not isinstance(s, Mapping):
            continue
        address = as_str(s.get("address")) or ""
        ip = address.rsplit(":", 1)[0].strip("[]") if address else ""
        depth, fetch = tag_values(s.get("tags"))
        out.append(
            TLSHandshake(
                address=address,
                ip=ip,
                server_name=norm_host(as_str(s.get("server_name")) or ""),
                failure=as_failure(s.get("failure")),
                depth=depth or 0,
                transaction_id=as_int(s.get("transaction_id")),
                fetch_body=fetch,
                bytes_received=as_int(s.get("x_bytes_received")),
                no_tls_verify=s.get("no_tls_verify") is True,
            )
        )
    return out


def _requests(entries: list[Any]) -> list[HTTPTransaction]:
    """``requests`` is newest first: without depth tags, the last entry is depth 0 and the
    depth grows each time the URL changes (old probes also listed retries of the same URL)."""
    out = []
    inferred = _inferred_depths(entries)
    for index, r in enumerate(entries):
        if not isinstance(r, Mapping):
            continue
        request, response = as_map(r.get("request")), as_map(r.get("response"))
        url = as_str(request.get("url")) or ""
        scheme, host = url_parts(url)
        failure = as_failure(r.get("failure"))
        code = as_int(response.get("code"))
        length, text = body_bytes_and_text(response.get("body"))
        depth, _ = tag_values(r.get("tags"))
        out.append(
            HTTPTransaction(
                url=url,
                scheme=scheme,
                hostname=host,
                failure=failure,
                status_code=code if code and code > 0 else None,
                body_length=length,
                body_is_truncated=response.get("body_is_truncated") is True,
                title=title_of(text) if text else "",
                header_keys=header_keys(response.get("headers"), response.get("headers_list")),
                depth=inferred[index] if depth is None else depth,
                transaction_id=as_int(r.get("transaction_id")),
                bytes_received=as_int(r.get("x_bytes_received")),
            )
        )
    return out


def _inferred_depths(entries: list[Any]) -> list[int]:
    depths = [0] * len(entries)
    depth, previous = -1, None
    for index in range(len(entries) - 1, -1, -1):
        url = as_str(as_map(as_map(entries[index]).get("request")).get("url"))
        if depth < 0 or url != previous:
            depth += 1
        depths[index], previous = depth, url
    return depths


def _controls(tk: Mapping[str, Any], hostname: str) -> tuple[Control | None, ...]:
    first = _control(tk.get("control"), 0, hostname) if tk.get("control_failure") is None else None
    hops: list[Control | None] = [first]
    for depth, entry in enumerate(as_list(tk.get("x_controls")), start=1):
        hop = as_map(entry)
        hops.append(_control(hop.get("control"), depth, url_parts(as_str(hop.get("url")))[1]))
    return tuple(hops)


def _control(raw: Any, depth: int, hostname: str) -> Control | None:
    if not isinstance(raw, Mapping) or not raw:
        return None
    dns_raw, http_raw = raw.get("dns"), raw.get("http_request")
    dns = None
    if isinstance(dns_raw, Mapping):
        addrs = tuple(a for a in as_list(dns_raw.get("addrs")) if isinstance(a, str) and _is_ip(a))
        dns = ControlDNS(as_failure(dns_raw.get("failure")), addrs)
    http = None
    if isinstance(http_raw, Mapping):
        code = as_int(http_raw.get("status_code"))
        http = ControlHTTP(
            failure=as_failure(http_raw.get("failure")),
            status_code=code if code and code > 0 else None,
            body_length=as_int(http_raw.get("body_length")),
            title=as_str(http_raw.get("title")) or "",
            header_keys=header_keys(http_raw.get("headers")),
        )
    tcp = {k: as_failure(as_map(v).get("failure")) for k, v in as_map(raw.get("tcp_connect")).items()}
    tls = {
        k: (norm_host(as_str(as_map(v).get("server_name")) or ""), as_failure(as_map(v).get("failure")))
        for k, v in as_map(raw.get("tls_handshake")).items()
    }
    asn = {}
    for ip, info in as_map(raw.get("ip_info")).items():
        number = as_int(as_map(info).get("asn"))
        asn[ip] = number if number and number > 0 else 0
    return Control(depth, hostname, dns, tcp, tls, http, asn)


def _is_ip(text: str) -> bool:
    """Cheap test that tells IP answers from CNAMEs in old control ``addrs`` lists."""
    return ":" in text or text.replace(".", "").isdigit()


__all__ = ["endpoint", "flatten"]
