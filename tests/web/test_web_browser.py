"""The dashboard in real headless Chromium: hostile measurement content runs nothing, injects nothing."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette

from reachwatch.report.chromium import find_chromium
from reachwatch.web import MemorySource, mount

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        find_chromium() is None, reason="needs Chromium at /usr/bin/chromium (apt-get install chromium)"
    ),
]
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="needs the playwright package (pip install playwright)"
)


@pytest.fixture(scope="module")
def server(source: MemorySource) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = Starlette(routes=[mount(source, "/dash")])
    srv = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/dash"
    srv.should_exit = True
    thread.join(5)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def _open(browser: object, url: str) -> tuple[object, list[str], list[str]]:
    page = browser.new_page()  # type: ignore[attr-defined]
    requests: list[str] = []
    dialogs: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(url, wait_until="load")
    page.wait_for_timeout(300)
    return page, requests, dialogs


def test_canary_the_payloads_do_attack_an_unprotected_page(browser: object, hostile_body: str) -> None:
    """The detectors below can see an attack: the same payloads, unescaped and without a CSP, do run."""
    page = browser.new_page()  # type: ignore[attr-defined]
    page.set_content(f"<pre>{hostile_body.split('<meta')[0]}</pre>")  # a refresh would navigate away
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned") is not None
    assert page.query_selector("#injected") is not None
    page.close()


def test_hostile_measurement_runs_nothing_and_injects_nothing(
    server: str, browser: object, hostile_uid: str
) -> None:
    page, requests, dialogs = _open(browser, f"{server}/measurement/{hostile_uid}")
    assert page.evaluate("window.__pwned === undefined")
    assert page.evaluate("parent.__pwned === undefined")
    for selector in (
        "#injected",
        "script",
        "iframe",
        "img",
        "body meta[http-equiv]",
        "link",
        "base",
        "svg[onload]",
    ):
        assert page.query_selector_all(selector) == [], selector
    # the payloads are there, as text, inside <pre>
    bodies = page.eval_on_selector_all("pre.raw", "els => els.map(e => e.textContent)")
    assert any("<script>window.__pwned=1</script>" in b for b in bodies)
    assert any("</pre><h1 id=injected>injected</h1><pre>" in b for b in bodies)
    assert page.locator("h1").count() == 1
    assert "<script>window.__pwned=1</script>" in page.inner_text("main")  # in the certificate subject too
    assert not dialogs
    assert [u for u in requests if not u.startswith(server)] == []
    assert page.url.startswith(server)
    page.close()


def test_csp_header_blocks_any_script(server: str, browser: object, hostile_uid: str) -> None:
    page, _, _ = _open(browser, f"{server}/measurement/{hostile_uid}")
    response = page.request.get(f"{server}/measurement/{hostile_uid}")
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp and "script-src" not in csp
    # even markup added by a bug would not run: inline script is refused by the policy
    page.evaluate("""() => { const s = document.createElement('script'); s.textContent = 'window.__late = 1';
                             document.body.appendChild(s); }""")
    assert page.evaluate("window.__late === undefined")
    page.close()


@pytest.mark.parametrize("path", ["/", "/country/PK", "/domain/awamiworkersparty.org?cc=PK", "/asn/AS64504"])
def test_pages_render_styled_and_offline(server: str, browser: object, path: str, tmp_path: Path) -> None:
    page, requests, _ = _open(browser, server + path)
    assert [u for u in requests if not u.startswith(server)] == []
    # the hashed inline style applied (not blocked by the CSP)
    assert page.evaluate("getComputedStyle(document.querySelector('main')).maxWidth") == "1000px"
    assert page.locator("h1").count() == 1
    page.close()
