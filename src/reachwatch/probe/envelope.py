"""The df-000 base keys around test_keys: who measured, when, with what, under which report."""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime
from typing import Any

from reachwatch import SOFTWARE_NAME, __version__
from reachwatch.probe.config import ProbeConfig

TEST_NAME = "web_connectivity"
TEST_VERSION = "0.5.0"
DATA_FORMAT_VERSION = "0.2.0"
PROBE_IP = "127.0.0.1"  # never the real one


def utc_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def asn_number(asn: str) -> int:
    digits = asn.upper().removeprefix("AS")
    return int(digits) if digits.isdigit() else 0


def make_report_id(started: datetime, probe_cc: str, probe_asn: str) -> str:
    """``20261128T235800Z_webconnectivity_PK_64501_n1_<16 random letters>``, as OONI's collector does."""
    letters = "".join(secrets.choice(string.ascii_letters) for _ in range(16))
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}_webconnectivity_{probe_cc}_{asn_number(probe_asn)}_n1_{letters}"


class Envelope:
    """Base keys shared by every measurement of one run; ``wrap`` adds the per-URL ones."""

    def __init__(self, cfg: ProbeConfig, started: datetime | None = None) -> None:
        self.started = started or datetime.now(UTC)
        self.report_id = make_report_id(self.started, cfg.probe_cc, cfg.probe_asn)
        self.base: dict[str, Any] = {
            "annotations": {"engine_name": SOFTWARE_NAME, "platform": "linux"},
            "data_format_version": DATA_FORMAT_VERSION,
            "probe_asn": cfg.probe_asn,
            "probe_cc": cfg.probe_cc,
            "probe_ip": PROBE_IP,
            "probe_network_name": cfg.probe_network_name,
            "report_id": self.report_id,
            "resolver_asn": "AS0",
            "resolver_ip": cfg.resolver[0] if cfg.resolver else "",
            "resolver_network_name": "",
            "software_name": SOFTWARE_NAME,
            "software_version": __version__,
            "test_helpers": {"backend": {"address": cfg.control_url or "", "type": "https"}},
            "test_name": TEST_NAME,
            "test_start_time": utc_text(self.started),
            "test_version": TEST_VERSION,
        }

    def wrap(self, url: str, started: datetime, runtime: float, test_keys: dict[str, Any]) -> dict[str, Any]:
        return {
            **self.base,
            "input": url,
            "measurement_start_time": utc_text(started),
            "test_keys": test_keys,
            "test_runtime": round(runtime, 6),
        }
