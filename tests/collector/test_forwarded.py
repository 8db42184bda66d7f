"""Which submitter a trusted proxy's X-Forwarded-For names (the collector's own rule)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from collector.conftest import collector
from collector.test_app import web
from reachwatch.collector.config import Settings
from reachwatch.collector.forwarded import TrustedProxies


def _scope(peer: str, *headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {"type": "http", "client": (peer, 40000), "headers": list(headers), "scheme": "http"}


@pytest.mark.parametrize(
    ("forwarded", "submitter"),
    [
        (b"198.51.100.7", "198.51.100.7"),
        (b" 198.51.100.7 ", "198.51.100.7"),
        (b"192.0.2.200, 198.51.100.7", "198.51.100.7"),  # what a client wrote is never taken
        (b"198.51.100.7:5060", "198.51.100.7"),
        (b"[2001:db8::7]:5060", "2001:db8::7"),
        (b"2001:DB8::7", "2001:db8::7"),
        (b"198.51.100.7, 10.0.0.2", "198.51.100.7"),  # a second trusted proxy passed over
        (b"10.0.0.3, 10.0.0.2", "10.0.0.3"),  # begun on a trusted host
        # no address in the nearest entry that is not a trusted proxy: an unknown submitter
        (b"198.51.100.7,", ""),
        (b"198.51.100.7, ", ""),
        (b"", ""),
        (b"proxy.example", ""),
        (b"198.51.100.7, unknown", ""),
        (b"198.51.100.028", ""),
        (b"192.0.2.1%eth0", ""),
        # an IPv6 zone is dropped: the address is the submitter's all the same
        (b"fe80::1%eth0", "fe80::1"),
        (b"[fe80::1%eth0]:5060", "fe80::1"),
        # an IPv4-mapped entry (a dual-stack proxy's) is its IPv4 address, a trusted proxy's too
        (b"::ffff:198.51.100.7", "198.51.100.7"),
        (b"[::FFFF:C633:6407]:5060", "198.51.100.7"),
        (b"198.51.100.7, ::ffff:10.0.0.2", "198.51.100.7"),
    ],
)
def test_the_submitter_is_the_nearest_entry_no_trusted_proxy_added(forwarded: bytes, submitter: str) -> None:
    proxies = TrustedProxies("127.0.0.1,10.0.0.0/8")
    scope = _scope("127.0.0.1", (b"x-forwarded-for", forwarded))
    proxies.rewrite(scope)
    assert scope["client"] == (submitter, 0)


def test_several_headers_are_one_list() -> None:
    scope = _scope("127.0.0.1", (b"x-forwarded-for", b"192.0.2.200"), (b"x-forwarded-for", b"198.51.100.7"))
    TrustedProxies("127.0.0.1").rewrite(scope)
    assert scope["client"] == ("198.51.100.7", 0)


def test_an_untrusted_peer_names_no_one() -> None:
    scope = _scope("203.0.113.5", (b"x-forwarded-for", b"198.51.100.7"), (b"x-forwarded-proto", b"https"))
    TrustedProxies("127.0.0.1").rewrite(scope)
    assert scope["client"] == ("203.0.113.5", 40000) and scope["scheme"] == "http"


def test_the_proxys_own_request_is_its_own() -> None:
    """Without the header (a health check of the proxy's own), the peer is the client."""
    scope = _scope("127.0.0.1", (b"x-forwarded-proto", b"https"))
    TrustedProxies("127.0.0.1").rewrite(scope)
    assert scope["client"] == ("127.0.0.1", 40000) and scope["scheme"] == "https"


def test_any_peer_trusted_takes_the_entry_the_proxy_added() -> None:
    scope = _scope("203.0.113.5", (b"x-forwarded-for", b"192.0.2.200, 198.51.100.7"))
    TrustedProxies("*").rewrite(scope)
    assert scope["client"] == ("198.51.100.7", 0)


def test_a_proxy_seen_as_an_ipv4_mapped_address_is_trusted() -> None:
    """A collector listening on ``::`` sees an IPv4 proxy as ``::ffff:127.0.0.1``."""
    scope = _scope("::ffff:127.0.0.1", (b"x-forwarded-for", b"198.51.100.7"))
    TrustedProxies("127.0.0.1").rewrite(scope)
    assert scope["client"] == ("198.51.100.7", 0)
    scope = _scope("127.0.0.1", (b"x-forwarded-for", b"198.51.100.7"))
    TrustedProxies("::ffff:127.0.0.0/120").rewrite(scope)
    assert scope["client"] == ("198.51.100.7", 0)


async def test_a_forwarded_address_with_a_zone_is_scrubbed(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """``X-Forwarded-For: fe80::1%eth0`` made the submitter unknown: nothing was scrubbed."""
    m = web(real_measurements)[0]
    m["test_keys"]["x_seen"] = "from fe80::1%eth0 (fe80::1)"
    settings = Settings(store=str(tmp_path / "m.duckdb"), rate=0, trusted_proxies="127.0.0.1")
    async with collector(settings, client="127.0.0.1") as (_, http):
        r = await http.post(
            "/api/v1/measurements", content=orjson.dumps(m), headers={"X-Forwarded-For": "fe80::1%eth0"}
        )
        stored = (await http.get(f"/api/v1/measurement/{r.json()['measurement_uids'][0]}")).json()
    assert stored["test_keys"]["x_seen"] == "from [scrubbed]%eth0 ([scrubbed])"


def test_a_proxy_that_sends_only_forwarded_names_an_unknown_submitter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """RFC 7239 ``Forwarded`` is not read (a proxy that writes one header passes the other on as a
    client wrote it): a request from a trusted proxy with it and without X-Forwarded-For was the
    proxy's own, every submitter attributed to the proxy's network. Its submitter is unknown, and
    the log says, once, to make the proxy send X-Forwarded-For."""
    proxies = TrustedProxies("127.0.0.1")
    for _ in range(3):
        scope = _scope("127.0.0.1", (b"forwarded", b"for=198.51.100.7;proto=https"))
        proxies.rewrite(scope)
        assert scope["client"] == ("", 0)
    warned = [r for r in caplog.records if "X-Forwarded-For" in r.getMessage()]
    assert len(warned) == 1 and "198.51.100.7" not in caplog.text
    # with X-Forwarded-For, Forwarded (a client's, passed on) is not looked at
    scope = _scope("127.0.0.1", (b"forwarded", b"for=192.0.2.200"), (b"x-forwarded-for", b"198.51.100.7"))
    proxies.rewrite(scope)
    assert scope["client"] == ("198.51.100.7", 0)
    # from a peer not trusted, neither is
    scope = _scope("203.0.113.5", (b"forwarded", b"for=198.51.100.7"))
    proxies.rewrite(scope)
    assert scope["client"] == ("203.0.113.5", 40000)
