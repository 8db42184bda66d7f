"""The one closed failure vocabulary: OONI's failure strings.

Every exception raised by sockets, ssl, dnspython or h11 while measuring is turned into one of
these strings here, at the I/O boundary, and nowhere else. The strings are OONI's (see
ooni/probe-cli ``internal/netxlite/errorsx``), so that our measurements read like theirs.
Anything we cannot classify becomes ``unknown_failure: <text>``, OONI's own catch-all, so the
raw error is kept rather than swallowed.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from typing import Final

# name -> meaning; the vocabulary is closed: classify() returns only these (or unknown_failure: ...)
FAILURES: Final[dict[str, str]] = {
    "generic_timeout_error": "the operation did not complete in time",
    "connection_refused": "the peer (or a middlebox) answered the SYN with a RST",
    "connection_reset": "the connection was reset (RST) after it was established",
    "connection_aborted": "the connection was aborted locally",
    "eof_error": "the peer closed the connection before the operation completed",
    "network_unreachable": "no route to the network",
    "host_unreachable": "no route to the host",
    "address_not_available": "the local address is not available",
    "broken_pipe": "writing to a connection the peer has closed",
    "dns_nxdomain_error": "the resolver says the name does not exist",
    "dns_no_answer": "the resolver answered with no record of the asked type",
    "dns_refused_error": "the resolver refused the query",
    "dns_server_misbehaving": "the resolver failed (SERVFAIL) or sent a malformed reply",
    "dns_temporary_failure": "the system resolver reported a temporary failure",
    "dns_non_recoverable_failure": "the system resolver reported a non-recoverable failure",
    "dns_reply_with_wrong_query_id": "a reply arrived that does not answer our query",
    "ssl_invalid_hostname": "the certificate is not valid for the server name",
    "ssl_unknown_authority": "the certificate is signed by an authority we do not trust",
    "ssl_invalid_certificate": "the certificate is invalid (for instance, expired)",
    "ssl_failed_handshake": "the TLS handshake failed",
    "http_invalid_redirect_location_host": "a redirect pointed to a URL without a host",
    "http_unexpected_redirect_url": "a redirect pointed to a URL we cannot fetch",
    "http_too_many_redirects": "more than the allowed number of redirects",
    "http_invalid_response": "the server sent something that is not HTTP",
    "http_body_too_large": "the body exceeded the hard limit",
    "http_request_failed": "the server (e.g. the control helper) answered with an error status",
    "bogon_address_refused": "the control helper does not connect to loopback, private or other bogon addresses",
    "interrupted": "the measurement was cancelled",
}

UNKNOWN_PREFIX: Final = "unknown_failure: "

# OpenSSL X509_V_ERR_* codes -> failure
_X509_FAILURES: Final[dict[int, str]] = {
    9: "ssl_invalid_certificate",  # CERT_NOT_YET_VALID
    10: "ssl_invalid_certificate",  # CERT_HAS_EXPIRED
    18: "ssl_unknown_authority",  # DEPTH_ZERO_SELF_SIGNED_CERT
    19: "ssl_unknown_authority",  # SELF_SIGNED_CERT_IN_CHAIN
    20: "ssl_unknown_authority",  # UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    21: "ssl_unknown_authority",  # UNABLE_TO_VERIFY_LEAF_SIGNATURE
    62: "ssl_invalid_hostname",  # HOSTNAME_MISMATCH
    64: "ssl_invalid_hostname",  # IP_ADDRESS_MISMATCH
}

_ERRNO_FAILURES: Final[dict[int, str]] = {
    errno.ECONNREFUSED: "connection_refused",
    errno.ECONNRESET: "connection_reset",
    errno.ECONNABORTED: "connection_aborted",
    errno.ETIMEDOUT: "generic_timeout_error",
    errno.ENETUNREACH: "network_unreachable",
    errno.EHOSTUNREACH: "host_unreachable",
    errno.EADDRNOTAVAIL: "address_not_available",
    errno.EPIPE: "broken_pipe",
}

_GAI_FAILURES: Final[dict[int, str]] = {
    socket.EAI_NONAME: "dns_nxdomain_error",
    socket.EAI_AGAIN: "dns_temporary_failure",
    socket.EAI_FAIL: "dns_non_recoverable_failure",
}
if hasattr(socket, "EAI_NODATA"):
    _GAI_FAILURES[socket.EAI_NODATA] = "dns_no_answer"


class MeasurementFailure(Exception):
    """Raised by measurement code for a failure it has already named (e.g. too many redirects)."""

    def __init__(self, failure: str, detail: str = "") -> None:
        if failure not in FAILURES:
            raise ValueError(f"{failure!r} is not in the failure vocabulary")
        self.failure = failure
        super().__init__(detail or failure)


def classify(exc: BaseException) -> str:
    """Name an exception with OONI's failure string. The single place that does so."""
    if isinstance(exc, MeasurementFailure):
        return exc.failure
    if isinstance(exc, TimeoutError):
        return "generic_timeout_error"
    if isinstance(exc, asyncio.CancelledError):
        return "interrupted"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _X509_FAILURES.get(exc.verify_code, "ssl_invalid_certificate")
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return "eof_error"
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or "").upper()
        if "RESET" in reason:
            return "connection_reset"
        return "ssl_failed_handshake"
    if isinstance(exc, asyncio.IncompleteReadError):
        return "eof_error"
    if isinstance(exc, socket.gaierror):
        return _GAI_FAILURES.get(exc.errno or 0, "dns_server_misbehaving")
    if isinstance(exc, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(exc, ConnectionResetError):
        return "connection_reset"
    if isinstance(exc, ConnectionAbortedError):
        return "connection_aborted"
    if isinstance(exc, BrokenPipeError):
        return "broken_pipe"
    if isinstance(exc, EOFError):
        return "eof_error"
    if isinstance(exc, OSError) and exc.errno in _ERRNO_FAILURES:
        return _ERRNO_FAILURES[exc.errno]
    failure = _classify_libraries(exc)
    if failure:
        return failure
    return f"{UNKNOWN_PREFIX}{type(exc).__name__}: {exc}"[:200]


def _classify_libraries(exc: BaseException) -> str | None:
    """dnspython and h11 failures, imported lazily so this module stays light."""
    import dns.exception
    import dns.resolver
    import h11

    if isinstance(exc, dns.resolver.NXDOMAIN):
        return "dns_nxdomain_error"
    if isinstance(exc, (dns.resolver.NoAnswer, dns.resolver.NoNameservers)):
        return "dns_no_answer" if isinstance(exc, dns.resolver.NoAnswer) else "dns_server_misbehaving"
    if isinstance(exc, dns.exception.Timeout):
        return "generic_timeout_error"
    if isinstance(exc, (dns.exception.FormError, dns.exception.SyntaxError)):
        return "dns_server_misbehaving"
    if isinstance(exc, dns.exception.DNSException):
        return "dns_server_misbehaving"
    if isinstance(exc, h11.RemoteProtocolError):
        return "http_invalid_response"
    return None


def is_known(failure: str | None) -> bool:
    """True for None (success) and for every string this module can produce."""
    return failure is None or failure in FAILURES or failure.startswith(UNKNOWN_PREFIX)
