"""One measurement to the values of its stored row: validate, attribute, scrub, hash, compress.

Pure functions of the measurement, the submitter's network and the collector's secret, run once
per measurement received: :func:`stage` in the request (every 4xx is decided there), then
:func:`finish_values` off the event loop (on the finisher thread, or in a batch worker process).
Compiled with mypyc (``compiled.txt``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import re
from typing import Any

import orjson
from pydantic import ValidationError

from reachwatch.collector import analysis
from reachwatch.collector.attribution import Network
from reachwatch.collector.http import ApiError, bad_json
from reachwatch.collector.ooni_protocol import (
    BASE_KEYS,
    MeasurementIn,
    base_fields,
    measurement_uid,
    model_fields,
)
from reachwatch.collector.privacy import LOCAL, Scrubber
from reachwatch.store.schema import COLUMN_NAMES, PENDING_ANALYSIS, Row, RowColumns, compress, compress_many


@dataclasses.dataclass(slots=True)
class Staged:
    """A validated, attributed, scrubbed measurement: the row but for its hashes, uid and ``raw``."""

    key: bytes
    canonical: bytes  #: the identity form (content as sent, without the report id)
    stored: bytes  #: the scrubbed JSON to store
    received: dt.datetime
    columns: dict[str, Any]


def finish(staged: Staged, raw: bytes | None = None) -> Row:
    """The row: keyed BLAKE2b of the identity, uid, probe id hash, zstd of the stored JSON (unless
    given as ``raw``). Meant for a worker thread: hashing (past 2 KB) and compression release the GIL."""
    return Row(*finish_values(staged, raw))


def finish_values(staged: Staged, raw: bytes | None = None, keep_gil: bool = True) -> tuple[Any, ...]:
    """:func:`finish` as a tuple in :data:`~reachwatch.store.schema.COLUMN_NAMES` order.
    ``keep_gil``: hash in pieces that keep the GIL (see :data:`_PIECE`); a batch worker process,
    which has no other thread, hashes in one call."""
    c = staged.columns
    content_hash = _keyed_hash(staged.canonical, staged.key, keep_gil)
    c["measurement_uid"] = measurement_uid(staged.received, c["probe_cc"], c["test_name"], content_hash)
    c["content_hash"] = content_hash
    c["probe_id_hash"] = _probe_id_hash(c["report_id"], staged.key)
    c["raw"] = compress(staged.stored) if raw is None else raw
    return tuple(c[name] for name in COLUMN_NAMES)


def finish_rows(staged: list[Staged], keep_gil: bool = True) -> RowColumns:
    """:func:`finish_values` of many, compressed in one call (which releases the GIL once), as one
    table in order."""
    raws = compress_many([s.stored for s in staged])
    return RowColumns.of_values(
        [finish_values(s, raw, keep_gil) for s, raw in zip(staged, raws, strict=True)]
    )


#: the last (report id, key, hash): a batch's lines mostly share their report; replaced whole, so
#: thread-safe
_last_probe_id: tuple[str, bytes | None, str] = ("", None, "")


def _probe_id_hash(report_id: str, key: bytes) -> str:
    global _last_probe_id
    last = _last_probe_id
    if last[0] == report_id and last[1] == key:
        return last[2]
    value = hashlib.blake2b(report_id.encode(), digest_size=8, key=key).hexdigest()
    _last_probe_id = (report_id, key, value)
    return value


#: hashlib releases the GIL for an update from 2,048 bytes: re-taking it while the event loop runs
#: Python waits up to a switch interval, so the finisher hashes in smaller pieces and keeps the GIL
_PIECE = 2047


def _keyed_hash(data: bytes, key: bytes, keep_gil: bool = True) -> str:
    h = hashlib.blake2b(digest_size=16, key=key)
    if len(data) < _PIECE or not keep_gil:
        h.update(data)
    else:
        view = memoryview(data)
        for i in range(0, len(view), _PIECE):
            h.update(view[i : i + _PIECE])
    return h.hexdigest()


def stage(
    m: Any,
    secret: bytes,
    verdict_now: bool,
    submitter: str,
    network: Network,
    report_id: str | None = None,
    where: str = "measurement",
) -> Staged:
    """Validate, attribute and scrub ``m`` (every 4xx is raised here); the hashing and compression
    left for :func:`finish`, run off the event loop (both release the GIL). ``verdict_now``: the
    verdict columns are computed here (for a store without an analysis backlog)."""
    if not isinstance(m, dict):
        raise ApiError(422, f"{where}: a measurement must be a JSON object")
    base = base_fields(m)
    if base is None:
        fields = {k: m[k] for k in BASE_KEYS if k in m}
        if "measurement_start_time" not in fields and "test_start_time" in m:
            # data format 0.1 (before 2016) has only the report's start; OONI's pipeline reads it so
            fields["measurement_start_time"] = m["test_start_time"]
        try:
            base = model_fields(MeasurementIn.model_validate(fields))
        except ValidationError as exc:
            raise ApiError(422, f"{where}: {validation_message(exc)}") from None
    try:
        start = dt.datetime.fromisoformat(base.measurement_start_time)
    except ValueError:
        raise ApiError(422, f"{where}: measurement_start_time is not a valid date") from None
    # test_keys (nearly all of the bytes) is serialised once and spliced into both the identity
    # and the stored form as an orjson Fragment; serialised at the same depth as inside the
    # measurement, so orjson's nesting limit applies exactly as to the whole
    test_keys = m["test_keys"]
    try:
        m["test_keys"] = orjson.Fragment(orjson.dumps({"test_keys": test_keys})[13:-1])
        # identity: the content as sent (key order kept, whitespace normalised), without the report id
        ident = {k: v for k, v in m.items() if k != "report_id"} if "report_id" in m else m
        canonical = orjson.dumps(ident)
    except TypeError as exc:
        m["test_keys"] = test_keys
        raise ApiError(422, f"{where}: {exc}") from None
    if report_id is not None:
        m["report_id"] = report_id
    claimed_asn, claimed_cc = base.probe_asn, base.probe_cc
    asn = network.asn or claimed_asn
    cc = network.cc or claimed_cc
    net_name = network.name if network.asn else base.probe_network_name
    m["probe_ip"] = LOCAL
    if network.attributed:
        m["probe_asn"], m["probe_cc"], m["probe_network_name"] = asn, cc, net_name
        if claimed_asn != asn:
            m["x_probe_asn_claimed"] = claimed_asn
        if claimed_cc != cc:
            m["x_probe_cc_claimed"] = claimed_cc
    else:
        m["x_unattributed"] = True
    # the stored JSON and every column taken from the measurement are scrubbed the same way
    scrubber = _scrubber(submitter, base.probe_ip or "")
    data = orjson.dumps(m)
    m["test_keys"] = test_keys
    stored = scrubber.json(data)
    url = base.input if isinstance(base.input, str) else (base.input[0] if base.input else None)
    url = scrubber.text(url)
    rid = scrubber.text(str(m.get("report_id") or "")) or ""
    if verdict_now:
        v = analysis.verdict(m if stored is data else orjson.loads(stored))
        verdict: dict[str, Any] = {f: getattr(v, f) for f in PENDING_ANALYSIS}
    else:
        verdict = PENDING_ANALYSIS
    return Staged(
        secret[:32],
        canonical,
        stored,
        dt.datetime.now(dt.UTC),
        {
            "report_id": rid,
            "input": url,
            "domain": analysis.domain(url),
            "probe_cc": cc,
            "probe_asn": asn,
            "probe_network_name": scrubber.text(net_name),
            "attributed": network.attributed,
            "x_probe_cc_claimed": claimed_cc if claimed_cc != cc else None,
            "x_probe_asn_claimed": claimed_asn if claimed_asn != asn else None,
            "measurement_start_time": start,
            "measurement_start_day": start.date(),
            "test_name": base.test_name,
            "confirmed": False,
            "category_code": scrubber.text(analysis.category(m)),
            "analysed": verdict_now,
            **verdict,
        },
    )


@functools.lru_cache(maxsize=4096)  # a batch repeats its submitter and probe_ip on every line
def _scrubber(submitter: str, probe_ip: str) -> Scrubber:
    return Scrubber((submitter, probe_ip))


def stage_lines(
    lines: list[tuple[int, memoryview]], *, secret: bytes, verdict_now: bool, submitter: str, network: Network
) -> tuple[list[Staged], list[dict[str, Any]]]:
    """Each line of a batch staged (:func:`stage`), or its error (line number, status, message)."""
    staged: list[Staged] = []
    errors: list[dict[str, Any]] = []
    for n, line in lines:
        try:
            m = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            errors.append({"line": n, "status": 400, "error": bad_json(f"line {n}", exc)})
            continue
        try:
            staged.append(stage(m, secret, verdict_now, submitter, network, None, f"line {n}"))
        except ApiError as exc:
            errors.append({"line": n, "status": exc.status, "error": exc.message})
    return staged, errors


#: the part of an error location that names a member of a union (pydantic's tag), not a field
_UNION_MEMBER = re.compile(r"[a-z]+-[a-z-]+|(?:list|dict)\[.*\]")


def validation_message(exc: ValidationError) -> str:
    """Up to five of pydantic's errors, each as ``where: what``. A value that fits no member of a
    union gets one error per member: where one says more than "should be a valid <type>", the
    type mismatches of the other members are left out, and the members' tags are not named."""
    errors = exc.errors(include_url=False, include_input=False)
    telling = {err["loc"][:1] for err in errors if not err["type"].endswith("_type")}
    parts: list[str] = []
    for err in errors:
        if err["type"].endswith("_type") and err["loc"][:1] in telling:
            continue
        where = ".".join(
            str(p) for p in err["loc"] if not (isinstance(p, str) and _UNION_MEMBER.fullmatch(p))
        )
        part = f"{where or 'body'}: {err['msg']}"
        if part not in parts:
            parts.append(part)
    return "; ".join(parts[:5])
