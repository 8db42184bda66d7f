"""A rule of an OONI test other than web_connectivity (:mod:`reachwatch.verdict.other_tests`), and
the readers its conditions share: each takes any shape (missing keys, wrong types, nulls) and
never raises."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: on (the measurement, its test_keys: an object)
Condition = Callable[[dict[str, Any], dict[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class OtherRule:
    rule_id: str
    comment: str
    condition: Condition
    anomaly: bool  # OONI counts the measurement as an anomaly (blocking_general > 0.5)
    failure: bool  # OONI counts it as a failure (accuracy < 0.5): no usable result


def always(m: dict[str, Any], tk: dict[str, Any]) -> bool:
    return True


def as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_str(value: object) -> str:
    return value if isinstance(value, str) else ""


def tcp_counts(tk: dict[str, Any]) -> tuple[int, int]:
    """(reached, unreachable) of ``tcp_connect``, by each entry's ``status.success``."""
    reached = unreachable = 0
    for entry in as_list(tk.get("tcp_connect")):
        success = as_dict(as_dict(entry).get("status")).get("success")
        if success is True:
            reached += 1
        elif success is False:
            unreachable += 1
    return reached, unreachable


def requests_of(tk: dict[str, Any]) -> list[dict[str, Any]]:
    return [as_dict(r) for r in as_list(tk.get("requests"))]


def url_of(request: dict[str, Any]) -> str | None:
    url = as_dict(request.get("request")).get("url")
    return url if isinstance(url, str) else None


def version_of(text: object) -> tuple[int, ...] | None:
    """``3.17.2`` as (3, 17, 2); None if not a plain dotted version."""
    if not isinstance(text, str) or not re.fullmatch(r"[0-9]+(\.[0-9]+)*", text):
        return None
    return tuple(int(part) for part in text.split("."))


def started(m: dict[str, Any]) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(as_str(m.get("measurement_start_time")), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
