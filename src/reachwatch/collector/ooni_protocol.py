"""OONI's collector protocol: request/response models, report ids and measurement uids.

Report ids are self-validating (``..._n1_<nonce><mac>``, keyed with the collector's secret), so no
state is needed to accept a measurement for a report opened before a restart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import string
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

BACKEND_VERSION = "reachwatch-collector-0.1.0"
ASN = r"^AS[0-9]{1,10}$"
CC = r"^[A-Z]{2}$"
NAME = r"^[A-Za-z0-9_.\-]{1,64}$"
START_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"
_ALNUM = string.ascii_letters + string.digits


class ReportOpen(BaseModel):
    model_config = ConfigDict(extra="ignore")
    probe_asn: str = Field(pattern=ASN)
    probe_cc: str = Field(pattern=CC)
    software_name: str = Field(pattern=NAME)
    software_version: str = Field(pattern=NAME)
    test_name: str = Field(pattern=r"^[a-z_]{1,64}$")
    test_version: str = Field(pattern=NAME)
    data_format_version: str = Field(pattern=NAME)
    format: Literal["json"]


class ReportOpened(BaseModel):
    report_id: str
    backend_version: str
    supported_formats: list[str]


class MeasurementIn(BaseModel):
    """The base keys a measurement must have; everything else is kept as sent."""

    model_config = ConfigDict(extra="allow")
    input: str | list[str] | None = Field(default=None, max_length=4096)
    measurement_start_time: str = Field(pattern=START_TIME)
    probe_asn: str = Field(pattern=ASN)
    probe_cc: str = Field(pattern=CC)
    probe_ip: str | None = Field(default=None, max_length=64)
    probe_network_name: str | None = Field(default=None, max_length=1024)
    report_id: str | None = Field(default=None, max_length=256)
    software_name: str = Field(max_length=128)
    software_version: str = Field(max_length=128)
    test_name: str = Field(pattern=r"^[a-z_]{1,64}$")
    data_format_version: str = Field(max_length=32)
    annotations: dict[str, Any] | None = None
    test_keys: dict[str, Any]


BASE_KEYS = tuple(MeasurementIn.model_fields)


class Submission(BaseModel):
    model_config = ConfigDict(extra="ignore")
    format: Literal["json"]
    content: MeasurementIn


class Submitted(BaseModel):
    measurement_uid: str


class BatchSubmitted(BaseModel):
    measurement_uids: list[str]


def _mac(secret: bytes, text: str, size: int) -> str:
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()[:size]


def new_report_id(secret: bytes, req: ReportOpen, now: dt.datetime) -> str:
    test = req.test_name.replace("_", "")
    prefix = f"{now:%Y%m%dT%H%M%SZ}_{test}_{req.probe_cc}_{req.probe_asn[2:]}_n1_"
    nonce = "".join(secrets.choice(_ALNUM) for _ in range(8))
    return prefix + nonce + _mac(secret, prefix + nonce, 12)


def valid_report_id(secret: bytes, report_id: str) -> bool:
    if len(report_id) > 200 or len(report_id) < 20 or not report_id.isascii():
        return False
    body, mac = report_id[:-12], report_id[-12:]
    return hmac.compare_digest(_mac(secret, body, 12), mac)


_second: list[Any] = [None, ""]  # the last second formatted (strftime is most of this function)


def measurement_uid(now: dt.datetime, probe_cc: str, test_name: str, content_hash: str) -> str:
    """OONI's uid shape: ``20261128235800.123456_PK_webconnectivity_<16 hex>``."""
    second = now.replace(microsecond=0)
    if _second[0] != second:
        _second[:] = [second, f"{second:%Y%m%d%H%M%S}"]
    return f"{_second[1]}.{now.microsecond:06d}_{probe_cc}_{test_name.replace('_', '')}_{content_hash[:16]}"
