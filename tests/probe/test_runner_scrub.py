"""The probe's own address, as its control helper saw it, out of what it writes."""

from __future__ import annotations

import orjson

from reachwatch.probe.control_client import th_request
from reachwatch.probe.runner import own_scrubber


def test_the_probe_asks_its_helper_where_it_is_seen_from() -> None:
    assert th_request("https://example.org/", [])["x_probe_address"] is True


def test_the_address_the_helper_saw_is_scrubbed_in_every_spelling() -> None:
    line = orjson.dumps({"body": "your IP: 203.0.113.9 (203-0-113-9.dsl.example)", "ok": "203.0.113.90x"})
    scrubbed = orjson.loads(own_scrubber(frozenset({"203.0.113.9"})).json(line))
    assert scrubbed["body"] == "your IP: [scrubbed] ([scrubbed].dsl.example)"
    # the placeholder every probe writes as probe_ip is never scrubbed
    assert (
        own_scrubber(frozenset({"127.0.0.1"})).json(b'{"probe_ip": "127.0.0.1"}')
        == b'{"probe_ip": "127.0.0.1"}'
    )
