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
    header_keys,
    is_map,
    norm_host,
    tag_values,
    url_parts,
)


def flatten(measurement: Mapping[str, Any]) -> Observations:
    """Turn one measurement into :class:`Observations`. Never raises on bad input."""
    if not is_map(measurement):
        return Observations(test_name=None, input=None, hostname="", has_test_keys=False)
    raw_input = measurement.get("input")
    if isinstance(raw_input, list):  # some old reports carry the input as a list
        raw_input = raw_input[0] if raw_input else None
    url = as_str(raw_input)
    hostname = url_parts(url)[1]
    test_name = as_str(measurement.get("test_name"))
    tk = measurement.get("test_keys")
    if not is_map(tk):
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
    # NB: the hot loops below test ``is None`` before calling the as_* readers: most values
    # are well-formed, and a call costs more than the rest of the field's work
    out = []
    for q in entries:
        if not is_map(q):
            continue
        get = q.get
        failure = get("failure")
        tx = get("transaction_id")
        out.append(
            DNSLookup(
                norm_host(as_str(get("hostname")) or ""),
                as_str(get("engine")) or "",
                as_str(get("query_type")) or "",
                None if failure is None else as_failure(failure),
                answer_addrs(get("answers")),
                tag_values(get("tags"))[0] or 0,
                None if tx is None else as_int(tx),
                duplicate,
            )
        )
    return out


_MAPS = (dict, Mapping)  # is_map inline: dict first (see observations.text)


def answer_addrs(answers: Any) -> tuple[str, ...]:
    """The IPv4/IPv6 answers, in answer order (CNAMEs and malformed entries skipped)."""
    if not isinstance(answers, list):
        return ()
    addrs = []
    for answer in answers:  # a hot loop: CDN answers are long lists
        if isinstance(answer, _MAPS):
            ipv4, ipv6 = answer.get("ipv4"), answer.get("ipv6")
            if ipv4 and isinstance(ipv4, str):
                addrs.append(ipv4)
            if ipv6 and isinstance(ipv6, str):
                addrs.append(ipv6)
    return tuple(addrs)


def _tcp_connects(entries: list[Any]) -> list[TCPConnect]:
    out = []
    for t in entries:
        if not is_map(t):
            continue
        get = t.get
        ip, port = as_str(get("ip")), as_int(get("port"))
        if not ip or port is None:
            continue
        status = as_map(get("status"))
        failure = status.get("failure")
        if failure is not None:
            failure = as_failure(failure)
        elif status.get("success") is False:
            failure = "unknown_failure: connect failed"
        depth, fetch = tag_values(get("tags"))
        tx = get("transaction_id")
        out.append(TCPConnect(ip, port, failure, depth or 0, None if tx is None else as_int(tx), fetch))
    return out


def _tls_handshakes(entries: list[Any]) -> list[TLSHandshake]:
    out = []
    for s in entries:
        if not is_map(s):
            continue
        get = s.get
        address = as_str(get("address")) or ""
        depth, fetch = tag_values(get("tags"))
        failure, tx, received = get("failure"), get("transaction_id"), get("x_bytes_received")
        out.append(
            TLSHandshake(
                address,
                address.rsplit(":", 1)[0].strip("[]") if address else "",
                norm_host(as_str(get("server_name")) or ""),
                None if failure is None else as_failure(failure),
                depth or 0,
                None if tx is None else as_int(tx),
                fetch,
                None if received is None else as_int(received),
                get("no_tls_verify") is True,
            )
        )
    return out


def _requests(entries: list[Any]) -> list[HTTPTransaction]:
    """``requests`` is newest first: without depth tags, the last entry is depth 0 and the
    depth grows each time the URL changes (old probes also listed retries of the same URL)."""
    out = []
    inferred: list[int] | None = None
    for index, r in enumerate(entries):
        if not is_map(r):
            continue
        request, response = as_map(r.get("request")), as_map(r.get("response"))
        url = as_str(request.get("url")) or ""
        scheme, host = url_parts(url)
        code = as_int(response.get("code"))
        depth, _ = tag_values(r.get("tags"))
        if depth is None:
            inferred = inferred or inferred_depths(entries)
            depth = inferred[index]
        out.append(
            HTTPTransaction(
                url,
                scheme,
                host,
                as_failure(r.get("failure")),
                code if code and code > 0 else None,
                response.get("body_is_truncated") is True,
                depth,
                as_int(r.get("transaction_id")),
                as_int(r.get("x_bytes_received")),
                response,
            )
        )
    return out


def inferred_depths(entries: list[Any]) -> list[int]:
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
    if not is_map(raw) or not raw:
        return None
    dns_raw, http_raw = raw.get("dns"), raw.get("http_request")
    dns = None
    if is_map(dns_raw):
        addrs = tuple([a for a in as_list(dns_raw.get("addrs")) if isinstance(a, str) and _is_ip(a)])
        dns = ControlDNS(as_failure(dns_raw.get("failure")), addrs)
    http = None
    if is_map(http_raw):
        code = as_int(http_raw.get("status_code"))
        failure = as_failure(http_raw.get("failure"))
        # a fetch that neither failed nor got a status code (status_code "abc", say) is no control
        # page to compare with: as if the control had none
        if failure is not None or (code is not None and code > 0):
            http = ControlHTTP(
                failure,
                code if code and code > 0 else None,
                as_int(http_raw.get("body_length")),
                as_str(http_raw.get("title")) or "",
                header_keys(http_raw.get("headers")),
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
