"""The analysis flags stored at ingest for tests the verdict engine does not judge."""

from __future__ import annotations

from typing import Any

from reachwatch.collector.analysis import NOT_JUDGED, verdict_values


def measurement(test_name: str, **keys: Any) -> dict[str, Any]:
    return {"test_name": test_name, "input": None, "test_keys": keys}


def test_another_test_is_neither_an_anomaly_nor_a_failure_unless_it_failed() -> None:
    blocking, accessible, _technique, rule, anomaly, failure = verdict_values(measurement("telegram"))
    assert (blocking, accessible, rule, anomaly, failure) == (None, None, NOT_JUDGED, False, False)
    *_, anomaly, failure = verdict_values(measurement("ndt", failure="generic_timeout_error"))
    assert (anomaly, failure) == (False, True)


def test_a_web_connectivity_measurement_without_a_verdict_is_a_failure() -> None:
    *_, anomaly, failure = verdict_values(measurement("web_connectivity"))
    assert (anomaly, failure) == (False, True)
