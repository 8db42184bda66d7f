"""One measurement to the values of its stored row: validate, attribute, scrub, hash, compress.

Pure functions of the measurement, the submitter's network and the collector's secret, run once
per measurement received: :func:`stage` in the request (every 4xx is decided there), then
:func:`~reachwatch.collector.finish.finish_values` off the event loop (on the finisher thread, or
in a batch worker process).
Compiled with mypyc (``compiled.txt``).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any

import orjson
from pydantic import ValidationError

from reachwatch.collector import analysis
from reachwatch.collector.attribution import Network
from reachwatch.collector.base_keys import fast_base
from reachwatch.collector.finish import Staged
from reachwatch.collector.http import ApiError, bad_json
from reachwatch.collector.ipv6_text import TooManySpellings
from reachwatch.collector.measurement_json import line_loader, minified
from reachwatch.collector.ooni_protocol import (
    BASE_KEYS,
    MeasurementIn,
    canonical_asn,
    model_fields,
)
from reachwatch.collector.privacy import LOCAL, Scrubber
from reachwatch.store.schema import (
    ANALYSIS_COLUMNS,
    COLUMN_NAMES,
    EARLIEST,
    LATEST,
    LEGACY_IDENTITY,
    ORJSON_IDENTITIES,
    PENDING_ANALYSIS,
    SIMDJSON_IDENTITY,
)

#: The columns :func:`stage` writes, in the order it writes them: the store's (checked below)
_STAGED_COLUMNS = (
    "measurement_uid",
    "content_hash",
    "report_id",
    "input",
    "domain",
    "probe_cc",
    "probe_asn",
    "probe_network_name",
    "attributed",
    "x_probe_cc_claimed",
    "x_probe_asn_claimed",
    "measurement_start_time",
    "measurement_start_day",
    "test_name",
    "blocking",
    "accessible",
    "x_technique",
    "x_rule",
    "anomaly",
    "confirmed",
    "failure",
    "category_code",
    "probe_id_hash",
    "raw",
    "analysed",
)
if _STAGED_COLUMNS != COLUMN_NAMES:
    raise ImportError("prepare.stage writes the columns of an older schema: update _STAGED_COLUMNS")
#: (blocking, accessible, x_technique, x_rule, anomaly, failure) of a row stored before its verdict
_PENDING: tuple[Any, ...] = tuple(PENDING_ANALYSIS[name] for name in ANALYSIS_COLUMNS)


def stage(
    m: Any,
    secret: bytes,
    verdict_now: bool,
    submitter: str,
    network: Network,
    report_id: str | None = None,
    where: str = "measurement",
    received: dt.datetime | None = None,
    *,
    identity: str,
    vantage: str | None = None,
) -> Staged:
    """Validate, attribute and scrub ``m`` (every 4xx is raised here); the hashing and compression
    left for :func:`~reachwatch.collector.finish.finish`, run off the event loop (both release the GIL). ``verdict_now``: the
    verdict columns are computed here (for a store without an analysis backlog). ``received``:
    when it arrived (now if not given; a batch's lines share their request's). ``identity``: the
    store's content hash (:meth:`~reachwatch.store.Store.identity`). ``vantage``: the submitter's
    vantage point, hashed (:class:`~reachwatch.collector.vantage.Vantages`), counted as its probe."""
    if not isinstance(m, dict):
        raise ApiError(422, f"{where}: a measurement must be a JSON object")
    fast = fast_base(m)
    start: dt.datetime | None = None
    if fast is not None:
        base, start = fast
    else:
        fields = {k: m[k] for k in BASE_KEYS if k in m}
        if type(fields.get("test_keys")) is orjson.Fragment:  # an object, as text (measurement_json)
            fields["test_keys"] = {}
        if "measurement_start_time" not in fields and "test_start_time" in m:
            # data format 0.1 (before 2016) has only the report's start; OONI's pipeline reads it so
            fields["measurement_start_time"] = m["test_start_time"]
        try:
            base = model_fields(MeasurementIn.model_validate(fields))
        except ValidationError as exc:
            raise ApiError(422, f"{where}: {validation_message(exc)}") from None
    if start is None:
        try:
            start = dt.datetime.fromisoformat(base.measurement_start_time)
        except ValueError:
            raise ApiError(422, f"{where}: measurement_start_time is not a valid date") from None
    if not EARLIEST <= start <= LATEST:
        raise ApiError(
            422,
            f"{where}: measurement_start_time {base.measurement_start_time} is outside "
            f"{EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d}, the times the store keeps: check the probe's clock",
        )
    # test_keys (nearly all of the bytes) is serialised once and spliced into both the identity
    # and the stored form as an orjson Fragment: as measurement_json.line_loader gives it (its text
    # made compact, or simdjson's), or, given as Python values, as orjson writes it (compact already:
    # json_text), at the same depth as inside the measurement, so orjson's nesting limit applies
    # exactly as to the whole; simdjson's form for a store hashing it
    test_keys = m["test_keys"]
    try:
        if type(test_keys) is orjson.Fragment:
            if identity in ORJSON_IDENTITIES:
                raise RuntimeError("a measurement loaded for a simdjson identity, staged for an orjson one")
            m["test_keys"] = test_keys
        elif identity == SIMDJSON_IDENTITY:
            m["test_keys"] = minified(test_keys)
        else:
            m["test_keys"] = orjson.Fragment(orjson.dumps({"test_keys": test_keys})[13:-1])
        # identity: the content as sent (key order kept, whitespace normalised), without the report id
        ident = m.copy()  # the table copied whole (order kept), not rebuilt key by key
        ident.pop("report_id", None)
        canonical = orjson.dumps(ident)
    except TypeError as exc:
        m["test_keys"] = test_keys
        raise ApiError(422, f"{where}: {_unserialisable(exc)}") from None
    if report_id is not None:
        m["report_id"] = report_id
    claimed_cc = base.probe_cc
    # the columns hold one form per network (AS0001 -> AS1, as attribution gives them), compared
    # so; the stored JSON keeps the probe's own spelling (in x_probe_asn_claimed once overridden)
    sent_asn = base.probe_asn
    claimed_asn = canonical_asn(sent_asn)
    asn = network.asn or claimed_asn
    cc = network.cc or claimed_cc
    if not network.asn:
        net_name = base.probe_network_name
    elif network.name is not None:
        net_name = network.name
    else:  # the databases know the network, not its name: the probe's, if it named that network
        net_name = base.probe_network_name if claimed_asn == asn else None
    m["probe_ip"] = LOCAL
    # each part the databases gave replaces the claim, kept beside it as sent where it differs
    # (the probe's own spelling of the same ASN too); a part they did not give stays the claim, as
    # sent, and the row is then not attributed (x_attributed names what was)
    if network.asn:
        m["probe_asn"], m["probe_network_name"] = asn, net_name
        if sent_asn != asn:
            m["x_probe_asn_claimed"] = sent_asn
        if base.probe_network_name is not None and base.probe_network_name != net_name:
            m["x_probe_network_name_claimed"] = base.probe_network_name
    if network.cc:
        m["probe_cc"] = cc
        if claimed_cc != cc:
            m["x_probe_cc_claimed"] = claimed_cc
    if not network.attributed:
        m["x_unattributed"] = True
        if network.asn:
            m["x_attributed"] = ["probe_asn", "probe_network_name"] if network.name else ["probe_asn"]
        elif network.cc:
            m["x_attributed"] = ["probe_cc"]
    # the stored JSON, the identity form and every column taken from the measurement are scrubbed
    # the same way
    scrubber = _scrubber(submitter, base.probe_ip or "")
    try:
        if scrubber:
            canonical, stored, scrubbed = _scrubbed_forms(m, ident, canonical, scrubber)
        else:
            stored, scrubbed = orjson.dumps(m), False
        url = base.input if isinstance(base.input, str) else (base.input[0] if base.input else None)
        url = scrubber.text(url)
        rid = scrubber.text(str(m.get("report_id") or "")) or ""
        network_name = scrubber.text(net_name)
        category = scrubber.text(analysis.category(m))
    except TooManySpellings as exc:
        raise ApiError(
            422,
            f"{where}: it holds more than {exc.args[0]} different texts around the first group of "
            "the probe's IPv6 address, too many to scrub in bounded time: not stored",
        ) from None
    finally:
        m["test_keys"] = test_keys
    verdict: tuple[Any, ...] = (
        analysis.verdict_values(
            m if not scrubbed and type(test_keys) is not orjson.Fragment else orjson.loads(stored)
        )
        if verdict_now
        else _PENDING
    )
    values: list[Any] = [
        None,  # measurement_uid, content_hash: finish_values
        None,
        rid,
        url,
        analysis.domain(url),
        cc,
        asn,
        network_name,
        network.attributed,
        claimed_cc if claimed_cc != cc else None,
        claimed_asn if claimed_asn != asn else None,
        start,
        start.date(),
        base.test_name,
        *verdict[:5],  # blocking, accessible, x_technique, x_rule, anomaly
        False,  # confirmed
        verdict[5],  # failure
        category,
        None,  # probe_id_hash, raw: finish_values
        None,
        verdict_now,  # analysed
    ]
    return Staged(
        secret[:32],
        canonical,
        stored,
        received or dt.datetime.now(dt.UTC),
        values,
        identity == LEGACY_IDENTITY,
        vantage,
    )


def _scrubbed_forms(
    m: dict[str, Any], ident: dict[str, Any], canonical: bytes, scrubber: Scrubber
) -> tuple[bytes, bytes, bool]:
    """(identity form, stored JSON, whether anything was scrubbed) of a measurement whose
    ``test_keys`` is a Fragment: ``m`` as stored, ``ident`` (and its JSON, ``canonical``) as sent.

    The identity is of the scrubbed content: hashed as sent, a resend answering the first uid
    told whoever sent the public copy with a guessed address put back whether the guess was the
    probe's (an outside check, session 17). Where nothing is scrubbed it stays the JSON as sent;
    otherwise it is the scrubbed top level, a NUL (which no JSON text holds), the scrubbed
    ``test_keys``. ``test_keys`` (nearly all of the bytes) is scrubbed once for both forms, and the
    top levels apart (small): scrubbing the whole of each again would read it twice."""
    whole = orjson.dumps(m["test_keys"])  # a Fragment's text (it has no accessor): a copy
    test_keys = scrubber.json(whole)
    ident_top = orjson.dumps({k: v for k, v in ident.items() if k != "test_keys"})
    ident_top_scrubbed = scrubber.json(ident_top)
    if test_keys is not whole or ident_top_scrubbed is not ident_top:
        canonical = ident_top_scrubbed + b"\x00" + test_keys
    m["test_keys"] = orjson.Fragment(test_keys)
    top = {k: v for k, v in m.items() if k != "test_keys"}
    top_json = orjson.dumps(top)
    top_scrubbed = scrubber.json(top_json)
    if top_scrubbed is top_json:
        return canonical, orjson.dumps(m), test_keys is not whole
    values = orjson.loads(top_scrubbed)
    if len(values) != len(top):  # keys that differed only by an address are one key now
        return canonical, scrubber.json(orjson.dumps(m)), True
    rest = iter(values.items())
    rebuilt: dict[str, Any] = {}
    for key in m:  # in the measurement's order, test_keys where it was
        if key == "test_keys":
            rebuilt[key] = m[key]
        else:
            name, value = next(rest)
            rebuilt[name] = value
    return canonical, orjson.dumps(rebuilt), True


#: the deepest nesting of arrays and objects orjson writes back (it parses deeper)
MAX_DEPTH = 254


def _unserialisable(exc: TypeError) -> str:
    """What orjson could not write back, said so that the sender knows what to change."""
    if "Recursion limit" in str(exc):
        return (
            f"arrays and objects nested more than {MAX_DEPTH} levels deep: the measurement is "
            "stored as sent, so send it less deeply nested"
        )
    return str(exc)


@functools.lru_cache(maxsize=4096)  # a batch repeats its submitter and probe_ip on every line
def _scrubber(submitter: str, probe_ip: str) -> Scrubber:
    return Scrubber((submitter, probe_ip))


def stage_lines(
    lines: list[tuple[int, memoryview]],
    *,
    secret: bytes,
    verdict_now: bool,
    submitter: str,
    network: Network,
    identity: str,
    vantage: str | None = None,
) -> tuple[list[Staged], list[dict[str, Any]]]:
    """Each line of a batch staged (:func:`stage`), or its error (line number, status, message)."""
    staged: list[Staged] = []
    errors: list[dict[str, Any]] = []
    received = dt.datetime.now(dt.UTC)  # once (~1.2 us a call): the lines arrived together
    parse = line_loader(identity)
    for n, line in lines:
        try:
            m = parse(line)
        except orjson.JSONDecodeError as exc:
            errors.append({"line": n, "status": 400, "error": bad_json(f"line {n}", exc, line)})
            continue
        try:
            staged.append(
                stage(
                    m,
                    secret,
                    verdict_now,
                    submitter,
                    network,
                    None,
                    f"line {n}",
                    received,
                    identity=identity,
                    vantage=vantage,
                )
            )
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
