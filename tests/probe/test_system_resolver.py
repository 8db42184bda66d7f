"""The system resolver sends a lost query again within the probe's DNS step (real glibc, in a
network namespace of the test's own with a resolver that never answers)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reachwatch.probe.dns import retry_lost_queries

NS = "rwsr"
ETC = Path("/etc/netns") / NS

# a resolver on the namespace's loopback that counts what it gets and answers nothing, and one
# system_lookup through it (getaddrinfo, as the probe makes it)
CHILD = """
import asyncio, collections, os, socket, sys, threading, time
from reachwatch.probe.dns import retry_lost_queries, system_lookup
from reachwatch.probe.trace import Trace
if sys.argv[1] == "retry":
    retry_lost_queries(2.0)
got = collections.Counter()
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 53))
sock.settimeout(0.1)
done = time.monotonic() + 2.5
def listen():
    while time.monotonic() < done:
        try:
            got[sock.recv(2048)[:2]] += 1
        except TimeoutError:
            pass
threading.Thread(target=listen, daemon=True).start()
async def main():
    return await system_lookup("blocked.example", timeout=2.0, trace=Trace(), depth=0)
loop = asyncio.new_event_loop()
_, entry = loop.run_until_complete(main())
time.sleep(max(0.0, done - time.monotonic()))
print(entry["failure"], sorted(got.values()), flush=True)
os._exit(0)  # not waiting for the lookup's thread, still inside getaddrinfo
"""


@pytest.fixture
def namespace() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and `ip` (a network namespace with its own resolv.conf)")
    subprocess.run(["ip", "netns", "add", NS], check=True)
    try:
        subprocess.run(["ip", "-n", NS, "link", "set", "lo", "up"], check=True)
        ETC.mkdir(parents=True, exist_ok=True)
        (ETC / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        yield NS
    finally:
        shutil.rmtree(ETC, ignore_errors=True)
        subprocess.run(["ip", "netns", "del", NS], check=False)


def _lookup(ns: str, mode: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "RES_OPTIONS"}
    run = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", CHILD, mode],
        capture_output=True, text=True, timeout=30, env=env, check=True,
    )  # fmt: skip
    return run.stdout.strip()


def test_a_lost_query_is_sent_again_each_second(namespace: str) -> None:
    # glibc's own first retry comes after 5 s, past the step (4 s by default, 2 s here): a single
    # lost datagram was a timeout
    assert _lookup(namespace, "default") == "generic_timeout_error [1, 1]"
    failure, counts = _lookup(namespace, "retry").split(" ", 1)
    assert failure in ("generic_timeout_error", "dns_temporary_failure")
    assert counts == "[2, 2]"  # A and AAAA, each at 0 and 1 s


def test_the_users_own_resolver_options_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RES_OPTIONS", raising=False)
    retry_lost_queries(4.0)
    assert os.environ["RES_OPTIONS"] == "timeout:1 attempts:4"
    monkeypatch.setenv("RES_OPTIONS", "ndots:2")
    retry_lost_queries(4.0)
    assert os.environ["RES_OPTIONS"] == "ndots:2"
