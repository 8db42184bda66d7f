"""The lab's certificates (no root needed): every host name the scenario accepts gets one."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509

from reachwatch.lab.ca import CertStore, write_pki

LABEL = "a" * 63
HOSTS = [
    "short.example",
    f"{'a' * 60}.{'b' * 60}.{'c' * 20}.example",  # 150: past a common name's 64 characters
    f"{LABEL}.{LABEL}.{LABEL}.{'d' * 53}.example",  # 253, the longest DNS name: past a file name too
]


def _handshake(store: CertStore, ca_file: Path, host: str) -> str | None:
    """A verified handshake for ``host`` against the store's certificate; the peer's SAN name."""
    server_ctx = store.context(host)
    client_ctx = ssl.create_default_context(cafile=str(ca_file))
    a, b = socket.socketpair()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(a, server_side=True):
                pass
        except (ssl.SSLError, OSError) as exc:
            errors.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client_ctx.wrap_socket(b, server_hostname=host) as tls:
            cert = tls.getpeercert()
    finally:
        thread.join(5)
    assert not errors, errors
    return next((v for k, v in cert.get("subjectAltName", ()) if k == "DNS"), None)


@pytest.mark.parametrize("host", HOSTS, ids=["short", "150", "253"])
def test_every_host_name_gets_a_verifiable_certificate(tmp_path: Path, host: str) -> None:
    ca_file = write_pki(tmp_path / "pki")
    store = CertStore(tmp_path / "pki")
    assert _handshake(store, ca_file, host) == host
    cert = x509.load_pem_x509_certificate(store.chain_file(host).read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    # a common name has at most 64 characters: a longer host is named by a critical SAN only
    assert san.critical == (len(host) > 64)
    assert cert.subject.rfc4514_string() == ("" if len(host) > 64 else f"CN={host}")
