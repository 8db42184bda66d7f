"""The per-measurement work of ``reachwatch analyze``: decode once, verdict, fingerprints.

Pure functions over Arrow record batches (columns in :data:`IN_COLUMNS`, results in
:data:`OUT_SCHEMA`), so chunks go to a process pool as a few buffers each way instead of a
pickled Python object per row. The body and header fingerprints run only where they can matter
(measurements judged anomalous: a blockpage is an HTTP difference, an injected page follows a
DNS hijack; and those the rules left undetermined for want of a usable control, where a confirming
fingerprint decides: ``verdict.rules.FINGERPRINT_RULES``); DNS answers are matched everywhere. Matching is a pure function of one answer,
header or body, and those recur (a network's blockpage and its sink addresses are the same in
every measurement of it), so each worker remembers the last few thousand results.
"""

from __future__ import annotations

import gc
import hashlib
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import zstandard

from reachwatch.collector.analysis import VerdictValues, confirmed_values, verdict_values
from reachwatch.fingerprints import Fingerprint, FingerprintMatcher
from reachwatch.fingerprints.match import body_text, dns_answers, json_list, response_headers
from reachwatch.store.compression import decompress
from reachwatch.store.schema import ANALYSIS_COLUMNS, ARROW_SCHEMA
from reachwatch.verdict import REDIRECT_SUFFIX
from reachwatch.verdict.rules import FINGERPRINT_RULES, UNDETERMINED

#: The code whose change makes stored verdicts stale.
RULE_SOURCES = ("verdict", "observations", "collector/analysis.py")

#: What a worker reads: the raw measurement, whether its verdict is stale, the stored values.
IN_COLUMNS = (
    "raw", "need_verdict", "blocking", "accessible", "x_technique", "x_rule", "anomaly", "failure",
    "confirmed", "analysed",
)  # fmt: skip
#: What a worker returns, row for row; ``changed``: the stored row differs (or was never analysed).
OUT_SCHEMA = pa.schema(
    [
        *(ARROW_SCHEMA.field(name) for name in (*ANALYSIS_COLUMNS, "confirmed")),
        ("fingerprint", pa.string()),
        ("changed", pa.bool_()),
    ]
)
#: Found fingerprints of one answer, header or body: (name, confirms blocking), in load order.
Found = tuple[tuple[str, bool], ...]
_CACHE_ENTRIES = 4096
_CACHED_BODY_CHARS = 32768  # bodies longer than this are matched every time (and not kept)


def rules_version() -> str:
    """A hash of the verdict code (rules, observations, the ingest mapping)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for name in RULE_SOURCES:
        path = root / name
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def fingerprints_version(fps: Iterable[Fingerprint]) -> str:
    """A hash of the fingerprint set (order-independent); "none" without fingerprints."""
    rows = sorted(f"{f.name}\0{f.location}\0{f.pattern_type}\0{f.pattern}\0{f.scope}" for f in fps)
    if not rows:
        return "none"
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]


@dataclass
class Timings:
    """Seconds spent per stage; ``cpu`` is the processes' own CPU time (per pid, cumulative)."""

    decode: float = 0.0
    verdict: float = 0.0
    fingerprints: float = 0.0
    batch: float = 0.0  # columns in and out of Arrow
    cpu: dict[int, float] | None = None

    def add(self, other: Timings) -> None:
        self.decode += other.decode
        self.verdict += other.verdict
        self.fingerprints += other.fingerprints
        self.batch += other.batch
        if other.cpu:
            self.cpu = {**(self.cpu or {}), **other.cpu}  # cumulative: the latest report per pid wins

    @property
    def worker_cpu(self) -> float:
        return sum((self.cpu or {}).values())


class _Finder:
    """The fingerprint matcher with a bounded memory of results per answer, header and body."""

    def __init__(self, fps: Sequence[Fingerprint]) -> None:
        self.matcher = FingerprintMatcher(fps)
        self.headers = any(fp.header_name for fp in fps)
        self._dns: dict[str, Found] = {}
        self._header: dict[tuple[str, str], Found] = {}
        self._body: dict[str, Found] = {}

    @staticmethod
    def _keep(cache: dict[Any, Found], key: Any, found: Found) -> None:
        if len(cache) >= _CACHE_ENTRIES:
            del cache[next(iter(cache))]  # the oldest
        cache[key] = found

    def dns(self, value: str) -> Found:
        found = self._dns.get(value)
        if found is None:
            found = tuple((fp.name, fp.confirms_blocking) for fp in self.matcher.match_dns(value))
            self._keep(self._dns, value, found)
        return found

    def header(self, name: str, value: str) -> Found:
        key = (name, value)
        found = self._header.get(key)
        if found is None:
            found = tuple((fp.name, fp.confirms_blocking) for fp in self.matcher.match_header(name, value))
            self._keep(self._header, key, found)
        return found

    def body(self, text: str) -> Found:
        if len(text) > _CACHED_BODY_CHARS:
            return tuple((fp.name, fp.confirms_blocking) for fp in self.matcher.match_body(text))
        found = self._body.get(text)
        if found is None:
            found = tuple((fp.name, fp.confirms_blocking) for fp in self.matcher.match_body(text))
            self._keep(self._body, text, found)
        return found

    def find(self, m: Mapping[str, Any], responses: bool) -> tuple[bool, str | None, str | None]:
        """(confirmed, name, where): the first confirming fingerprint and where it was found
        (``dns``, ``header``, ``body``), else the first found (``where`` None), in the order of
        ``FingerprintMatcher.match`` (DNS answers, then each response's headers and body; the
        responses only if ``responses``)."""
        keys = m.get("test_keys")
        if not isinstance(keys, Mapping):
            return False, None, None
        first: str | None = None
        for _, value in dns_answers(keys):
            for name, confirms in self.dns(value):
                if confirms:
                    return True, name, "dns"
                first = first or name
        if not responses:
            return False, first, None
        for request in json_list(keys.get("requests")):
            response = request.get("response") if isinstance(request, Mapping) else None
            if not isinstance(response, Mapping):
                continue
            if self.headers:
                for header, value in response_headers(response):
                    for name, confirms in self.header(header, value):
                        if confirms:
                            return True, name, "header"
                        first = first or name
            for name, confirms in self.body(body_text(response)):
                if confirms:
                    return True, name, "body"
                first = first or name
        return False, first, None


_finder: _Finder | None = None


def init_worker(fps: Sequence[Fingerprint]) -> None:
    global _finder
    _finder = _Finder(fps) if fps else None
    # The matcher's thousands of objects live as long as the worker: keep the collector off them.
    gc.collect()
    gc.freeze()


def to_ipc(batch: pa.RecordBatch) -> bytes:
    """A batch as one Arrow IPC stream (pickling a slice would copy its parent's buffers)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


def from_ipc(data: bytes) -> pa.RecordBatch:
    return pa.ipc.open_stream(data).read_next_batch()


def analyse_ipc(data: bytes) -> tuple[bytes, Timings]:
    """:func:`analyse_batch` between processes: IPC bytes in, IPC bytes out."""
    result, timings = analyse_batch(from_ipc(data))
    return to_ipc(result), timings


_BY_FINGERPRINT = frozenset(rule.rule_id for rule in FINGERPRINT_RULES.values())


def _stored(old: list[Any]) -> VerdictValues:
    """The stored verdict values of a row whose verdict is not stale."""
    return old[0], old[1], old[2], old[3], bool(old[4]), bool(old[5])


def analyse_batch(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, Timings]:
    """Verdicts and fingerprints of one batch (:data:`IN_COLUMNS`), as :data:`OUT_SCHEMA`."""
    clock = time.perf_counter
    t = Timings()
    cpu0 = time.process_time()
    start = t0 = clock()
    raws = batch.column("raw").to_pylist()
    need = batch.column("need_verdict").to_pylist()
    stored = [batch.column(name).to_pylist() for name in IN_COLUMNS[2:]]
    t.batch += clock() - t0
    finder = _finder
    decode = verdict = fingerprints = 0.0
    out: list[tuple[Any, ...]] = []
    append = out.append
    for raw, need_verdict, *old in zip(raws, need, *stored, strict=True):
        t0 = clock()
        try:
            m = orjson.loads(decompress(raw))
        except (orjson.JSONDecodeError, zstandard.ZstdError, ValueError, TypeError):
            m = {}  # unreadable: judged as an empty measurement (no test_keys)
        t1 = clock()
        if not isinstance(m, dict):  # JSON, but not an object: the stored verdict stays
            new = (*old[:6], False, None)
            t2 = t3 = t1
        else:
            # a verdict a fingerprint made is made again: the fingerprints may have changed
            stale = need_verdict or old[3] in _BY_FINGERPRINT
            columns: VerdictValues = verdict_values(m) if stale else _stored(old)
            t2 = clock()
            if finder is None:
                confirmed, name = False, None
            else:
                # responses are matched where they can matter: an anomaly (a blockpage is an HTTP
                # difference) or a verdict the rules could not reach for want of a usable control
                undetermined = (
                    columns[3] is not None and columns[3].removesuffix(REDIRECT_SUFFIX) in UNDETERMINED
                )
                confirmed, name, where = finder.find(m, columns[4] or undetermined)
                if confirmed and where is not None:
                    columns = confirmed_values(columns, where)
            new = (*columns, confirmed, name)
            t3 = clock()
        decode += t1 - t0
        verdict += t2 - t1
        fingerprints += t3 - t2
        append((*new, not old[7] or tuple(old[:7]) != new[:7]))
    t0 = clock()
    values: list[tuple[Any, ...]] = list(zip(*out, strict=True)) if out else [()] * len(OUT_SCHEMA)
    result = pa.RecordBatch.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(values, OUT_SCHEMA, strict=True)], schema=OUT_SCHEMA
    )
    end = clock()
    t.batch += end - t0
    # stages are timed by the clock (cheap); scaled to this batch's CPU time (the core is shared)
    cpu = time.process_time()
    scale = min(1.0, (cpu - cpu0) / (end - start)) if end > start else 1.0
    t.decode, t.verdict, t.fingerprints = decode * scale, verdict * scale, fingerprints * scale
    t.batch *= scale
    t.cpu = {os.getpid(): cpu}
    return result, t
