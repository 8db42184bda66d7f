"""The lab's certificate authorities and per-host certificates (ECDSA P-256).

Three CAs: the *lab* CA that lab clients trust (``ca.pem``), an *untrusted* CA for sites whose
condition is ``cert = "untrusted"``, and the *censor* CA of the blockpage server. Leaf
certificates share one key and are issued lazily, one per host, by :class:`CertStore`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CAS = {"lab": "reachwatch lab CA", "untrusted": "reachwatch untrusted CA", "censor": "Censor CA"}
_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Authority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


MAX_COMMON_NAME = 64  # RFC 5280 ub-common-name
MAX_FILE_NAME = 255  # bytes in one path component (ext4, tmpfs...)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def new_ca(common_name: str) -> Authority:
    key = new_key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _DAY)
        .not_valid_after(now + 3650 * _DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(cert, key)


def issue(
    ca: Authority, leaf_key: ec.EllipticCurvePrivateKey, host: str, *, expired: bool = False
) -> x509.Certificate:
    """A server certificate for ``host`` (SAN dNSName), valid now unless ``expired``.

    A common name has at most 64 characters (RFC 5280's ub-common-name) and a DNS name up to 253:
    a longer host gets an empty subject and a critical SAN, as public CAs issue them (building
    the name raised, and every handshake for such a site failed)."""
    now = dt.datetime.now(dt.UTC)
    start, end = (now - 400 * _DAY, now - 30 * _DAY) if expired else (now - _DAY, now + 365 * _DAY)
    fits = len(host) <= MAX_COMMON_NAME
    return (
        x509.CertificateBuilder()
        .subject_name(_name(host) if fits else x509.Name([]))
        .issuer_name(ca.cert.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=not fits)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_pki(pki: Path) -> Path:
    """Create the three CAs and the shared leaf key under ``pki``; return the lab CA's PEM path."""
    pki.mkdir(parents=True, exist_ok=True)
    for kind, cn in CAS.items():
        ca = new_ca(cn)
        (pki / f"{kind}-ca.pem").write_bytes(cert_pem(ca.cert))
        (pki / f"{kind}-ca.key").write_bytes(key_pem(ca.key))
    (pki / "leaf.key").write_bytes(key_pem(new_key()))
    for path in pki.glob("*.key"):
        path.chmod(0o600)
    return pki / "lab-ca.pem"


def load_authority(pki: Path, kind: str) -> Authority:
    cert = x509.load_pem_x509_certificate((pki / f"{kind}-ca.pem").read_bytes())
    key = serialization.load_pem_private_key((pki / f"{kind}-ca.key").read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return Authority(cert, key)


class CertStore:
    """Server-side TLS contexts, one per (host, condition), issued on first use and cached."""

    def __init__(self, pki: Path) -> None:
        self.pki = pki
        self.cache = pki / "certs"
        self.cache.mkdir(exist_ok=True)
        key = serialization.load_pem_private_key((pki / "leaf.key").read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        self.leaf_key = key
        self.authorities = {kind: load_authority(pki, kind) for kind in CAS}
        self.contexts: dict[tuple[str, str], ssl.SSLContext] = {}

    def context(self, host: str, condition: str | None = None, *, ca: str = "lab") -> ssl.SSLContext:
        """``condition``: None, "expired", "wrong-host" or "untrusted"; ``ca`` picks the issuer."""
        key = (host, f"{ca}:{condition}")
        ctx = self.contexts.get(key)
        if ctx is None:
            ctx = self.contexts[key] = self._make(host, condition, ca)
        return ctx

    def _make(self, host: str, condition: str | None, ca: str) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.chain_file(host, condition, ca), self.pki / "leaf.key")
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def chain_file(self, host: str, condition: str | None = None, ca: str = "lab") -> Path:
        """Issue (once) and write leaf + issuer PEM for ``host``; the key is ``pki/leaf.key``."""
        name = f"{ca}-{condition or 'ok'}-{host}.pem"
        if len(name) > MAX_FILE_NAME:  # a host of up to 253 characters: named by its digest
            name = f"{ca}-{condition or 'ok'}-{hashlib.sha256(host.encode()).hexdigest()}.pem"
        path = self.cache / name
        if not path.exists():
            authority = self.authorities["untrusted" if condition == "untrusted" else ca]
            name = "wrong-host.invalid" if condition == "wrong-host" else host
            cert = issue(authority, self.leaf_key, name, expired=condition == "expired")
            path.write_bytes(cert_pem(cert) + cert_pem(authority.cert))
        return path

    def fresh_context(self, host: str, condition: str | None = None, ca: str = "lab") -> ssl.SSLContext:
        """An uncached context (to attach an sni_callback to)."""
        return self._make(host, condition, ca)
