"""A raw web_connectivity measurement turned into rows a page can show: what happened, per step.

Everything here is hostile input (a censor's blockpage, forged headers, forged certificates):
values are kept as plain strings and shown escaped; nothing is interpreted as markup. Malformed
parts are shown as such rather than dropped.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reachwatch.report.model import Measurement

BODY_EXCERPT = 4000


@dataclass(frozen=True, slots=True)
class DnsRow:
    hostname: str
    query_type: str
    engine: str
    resolver: str
    failure: str | None
    answers: list[str]


@dataclass(frozen=True, slots=True)
class TcpRow:
    address: str
    success: bool
    failure: str | None


@dataclass(frozen=True, slots=True)
class TlsRow:
    address: str
    server_name: str
    version: str
    cipher: str
    failure: str | None
    certificates: list[str]


@dataclass(frozen=True, slots=True)
class HttpRow:
    method: str
    url: str
    failure: str | None
    request_headers: list[tuple[str, str]]
    code: str
    response_headers: list[tuple[str, str]]
    body: str
    body_note: str


@dataclass(frozen=True, slots=True)
class MeasurementView:
    uid: str
    input: str
    network: str
    when: str
    verdict: list[tuple[str, str]]
    dns: list[DnsRow] = field(default_factory=list)
    tcp: list[TcpRow] = field(default_factory=list)
    tls: list[TlsRow] = field(default_factory=list)
    http: list[HttpRow] = field(default_factory=list)
    control: str = ""


def _s(value: object) -> str:
    return "" if value is None else str(value)


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _answer(a: Mapping[str, Any]) -> str:
    kind = _s(a.get("answer_type"))
    value = a.get("ipv4") or a.get("ipv6") or a.get("hostname") or a.get("answer") or ""
    return f"{kind} {_s(value)}".strip()


def _headers(message: Mapping[str, Any]) -> list[tuple[str, str]]:
    pairs = _list(message.get("headers_list"))
    if pairs:
        return [(_s(p[0]), _s(p[1])) for p in pairs if isinstance(p, list | tuple) and len(p) == 2]
    return [(_s(k), _s(v)) for k, v in _map(message.get("headers")).items()]


def _body(body: object, truncated: object) -> tuple[str, str]:
    note = "truncated by the probe; " if truncated else ""
    if isinstance(body, Mapping) and body.get("format") == "base64":
        try:
            raw = base64.b64decode(_s(body.get("data")), validate=True)
        except (binascii.Error, ValueError):
            return "", note + "base64 body that does not decode"
        text = raw.decode("utf-8", errors="replace")
        note += f"binary body ({len(raw)} bytes), shown as UTF-8 with replacement characters; "
    else:
        text = _s(body)
    if len(text) > BODY_EXCERPT:
        note += f"first {BODY_EXCERPT} of {len(text)} characters"
        text = text[:BODY_EXCERPT]
    return text, note.rstrip("; ")


def certificate_subject(cert: object) -> str:
    """The subject of one ``{format: base64, data}`` DER certificate, or why it cannot be read."""
    data = _map(cert).get("data")
    try:
        der = base64.b64decode(_s(data), validate=True)
    except (binascii.Error, ValueError):
        return "(not base64)"
    try:
        from cryptography import x509

        parsed = x509.load_der_x509_certificate(der)
        return f"{parsed.subject.rfc4514_string()} (issuer {parsed.issuer.rfc4514_string()})"
    except ValueError as exc:
        return f"(unparseable certificate: {exc})"


def view(m: Measurement) -> MeasurementView:
    tk = m.test_keys
    verdict_keys = ("blocking", "accessible", "x_technique", "x_rule", "dns_consistency", "status_code_match",
                    "body_length_match", "headers_match", "title_match")  # fmt: skip
    dns = [
        DnsRow(_s(q.get("hostname")), _s(q.get("query_type")), _s(q.get("engine")),
               _s(q.get("resolver_address")), q.get("failure"), [_answer(_map(a)) for a in _list(q.get("answers"))])
        for q in map(_map, _list(tk.get("queries")) + _list(tk.get("x_dns_duplicate_responses")))
    ]  # fmt: skip
    tcp = [
        TcpRow(f"{_s(t.get('ip'))}:{_s(t.get('port'))}", bool(_map(t.get("status")).get("success")),
               _map(t.get("status")).get("failure"))
        for t in map(_map, _list(tk.get("tcp_connect")))
    ]  # fmt: skip
    tls = [
        TlsRow(_s(h.get("address")), _s(h.get("server_name")), _s(h.get("tls_version")), _s(h.get("cipher_suite")),
               h.get("failure"), [certificate_subject(c) for c in _list(h.get("peer_certificates"))])
        for h in map(_map, _list(tk.get("tls_handshakes")))
    ]  # fmt: skip
    http = []
    for r in map(_map, _list(tk.get("requests"))):
        req, resp = _map(r.get("request")), _map(r.get("response"))
        body, note = _body(resp.get("body"), resp.get("body_is_truncated"))
        http.append(
            HttpRow(_s(req.get("method")), _s(req.get("url")), r.get("failure"), _headers(req),
                    _s(resp.get("code")), _headers(resp), body, note)
        )  # fmt: skip
    control = tk.get("control")
    return MeasurementView(
        uid=m.measurement_uid,
        input=_s(m.input),
        network=f"{m.probe_network_name} ({m.probe_asn}, {m.probe_cc})",
        when=m.measurement_start_time,
        verdict=[(k, _s(tk.get(k))) for k in verdict_keys if k in tk],
        dns=dns,
        tcp=tcp,
        tls=tls,
        http=http,
        control=json.dumps(control, indent=1, ensure_ascii=False, sort_keys=True) if control else "",
    )
