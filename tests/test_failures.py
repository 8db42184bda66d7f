import asyncio
import errno
import socket
import ssl

import pytest

from reachwatch.failures import FAILURES, MeasurementFailure, classify, is_known


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TimeoutError(), "generic_timeout_error"),
        (ConnectionRefusedError(), "connection_refused"),
        (ConnectionResetError(), "connection_reset"),
        (OSError(errno.ENETUNREACH, "unreachable"), "network_unreachable"),
        (socket.gaierror(socket.EAI_NONAME, "no name"), "dns_nxdomain_error"),
        (asyncio.IncompleteReadError(b"", 10), "eof_error"),
        (ssl.SSLEOFError(), "eof_error"),
        (MeasurementFailure("http_too_many_redirects"), "http_too_many_redirects"),
    ],
)
def test_classify_names_each_exception_once(exc: BaseException, expected: str) -> None:
    assert classify(exc) == expected


def test_certificate_errors_are_split_by_openssl_code() -> None:
    for code, expected in [
        (10, "ssl_invalid_certificate"),
        (20, "ssl_unknown_authority"),
        (62, "ssl_invalid_hostname"),
    ]:
        exc = ssl.SSLCertVerificationError()
        exc.verify_code = code
        assert classify(exc) == expected


def test_unknown_errors_keep_their_text() -> None:
    failure = classify(ValueError("odd thing"))
    assert failure.startswith("unknown_failure: ValueError: odd thing")
    assert is_known(failure)


def test_vocabulary_is_closed() -> None:
    with pytest.raises(ValueError):
        MeasurementFailure("not_a_failure")
    assert all(name == name.lower() and " " not in name for name in FAILURES)
