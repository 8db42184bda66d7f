"""``analyse_batch``: where the rules cannot decide for want of a usable control, a known blockpage's
fingerprint does (rules ``fingerprint.*``); where no fingerprint confirms, the rules' outcome stays."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest

from reachwatch.analyze.work import IN_COLUMNS, analyse_batch, init_worker
from reachwatch.collector.analysis import verdict_values
from reachwatch.fingerprints import Fingerprint
from reachwatch.store.compression import compress

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "verdict"))
import verdict_builders as vb

FPS = [
    Fingerprint(name="local.order", location="body", pattern_type="contains", pattern="Access Denied By Order", scope="nat"),
    Fingerprint(name="local.sink", location="dns", pattern_type="full", pattern=vb.OTHER_IP, scope="isp"),
]  # fmt: skip
URL = "http://example.org/"
CONTROL_TIMED_OUT = {"http_failure": "generic_timeout_error"}


def analysed(m: dict[str, Any], *, stored: tuple[Any, ...] | None = None) -> dict[str, Any]:
    """The row ``analyse_batch`` makes of one measurement: its verdict made anew, or (``stored``:
    blocking, accessible, x_technique, x_rule, anomaly, failure) kept unless stale."""
    old = stored or (None, None, None, None, False, True)
    columns: dict[str, list[Any]] = {
        "raw": [compress(orjson.dumps(m))],
        "need_verdict": [stored is None],
        **{name: [value] for name, value in zip(IN_COLUMNS[2:8], old, strict=True)},
        "confirmed": [False],
        "analysed": [stored is not None],
    }
    batch = pa.RecordBatch.from_pydict(
        columns,
        schema=pa.schema(
            [("raw", pa.binary()), ("need_verdict", pa.bool_()), ("blocking", pa.string()),
             ("accessible", pa.bool_()), ("x_technique", pa.string()), ("x_rule", pa.string()),
             ("anomaly", pa.bool_()), ("failure", pa.bool_()), ("confirmed", pa.bool_()), ("analysed", pa.bool_())]
        ),
    )  # fmt: skip
    result, _ = analyse_batch(batch)
    return {name: values[0] for name, values in result.to_pydict().items()}


@pytest.fixture(autouse=True)
def fingerprints() -> None:
    init_worker(FPS)


def test_a_page_for_the_probe_and_a_failed_control_is_undetermined() -> None:
    """Not http-blockpage (OONI 1.4): the site may refuse the control alone (session 14's outside check)."""
    row = analysed(vb.single(URL, {}, CONTROL_TIMED_OUT))
    assert (row["blocking"], row["accessible"], row["x_technique"], row["x_rule"]) == (
        None, None, None, "http.control-failed"
    )  # fmt: skip
    assert (row["anomaly"], row["failure"], row["confirmed"]) == (False, True, False)


@pytest.mark.parametrize("ctrl", [CONTROL_TIMED_OUT, None], ids=["control fetch failed", "no control"])
def test_a_known_blockpage_decides_where_the_control_cannot(ctrl: dict[str, Any] | None) -> None:
    m = vb.single(URL, {"body": vb.BLOCKPAGE, "code": 403}, ctrl or {})
    if ctrl is None:
        m["test_keys"]["control"] = None
    assert verdict_values(m)[3] in ("http.control-failed", "control.unavailable")  # the rules alone
    row = analysed(m)
    assert (row["blocking"], row["accessible"], row["x_technique"], row["x_rule"]) == (
        "http-diff", False, "http-blockpage", "fingerprint.blockpage"
    )  # fmt: skip
    assert (row["anomaly"], row["failure"], row["confirmed"], row["fingerprint"]) == (
        True,
        False,
        True,
        "local.order",
    )


def test_a_known_sink_address_decides_where_the_control_cannot() -> None:
    m = vb.single(URL, {"addrs": (vb.OTHER_IP,), "tcp_failure": "connection_refused"}, {})
    m["test_keys"]["control"] = None
    row = analysed(m)
    assert (row["blocking"], row["x_technique"], row["x_rule"], row["confirmed"]) == (
        "dns", "dns-hijack", "fingerprint.dns", True
    )  # fmt: skip


def test_a_decided_verdict_is_not_overridden_by_a_fingerprint() -> None:
    """The control fetched the page, the probe got the blockpage: the rules decide, confirmed."""
    row = analysed(vb.single(URL, {"body": vb.BLOCKPAGE, "code": 403}, {}))
    assert (row["x_rule"], row["x_technique"], row["confirmed"]) == ("http.blockpage", "http-blockpage", True)


def test_a_fingerprints_verdict_is_made_again_when_the_fingerprints_change() -> None:
    """A stored fingerprint.* verdict is not kept as it is: without the fingerprint it goes."""
    m = vb.single(URL, {"body": vb.BLOCKPAGE, "code": 403}, CONTROL_TIMED_OUT)
    decided = ("http-diff", False, "http-blockpage", "fingerprint.blockpage", True, False)
    init_worker([fp for fp in FPS if fp.location != "body"])
    row = analysed(m, stored=decided)
    assert (row["x_rule"], row["blocking"], row["confirmed"], row["changed"]) == (
        "http.control-failed", None, False, True
    )  # fmt: skip
