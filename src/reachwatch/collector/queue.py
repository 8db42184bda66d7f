"""The client-side outbox: measurements wait on disk until a collector acknowledged them.

``Outbox(path).put(measurement)`` writes one file per measurement under ``path/pending`` (named by
its content hash, so putting the same measurement twice keeps one file; written to a temporary name,
fsynced, then renamed: a crash leaves either nothing or a whole file). ``await outbox.flush(url)``
sends them in batches to ``POST /api/v1/measurements``, compressed (zstd with the store's
dictionary, ~4.7x smaller: a volunteer on metered data pays for every byte; uncompressed to a
collector from before compressed uploads, which answers 415), and deletes a file only once the
collector answered 2xx for its batch. 429/503 are retried after ``Retry-After``; a line the collector rejects
(4xx) moves to ``path/rejected`` with the reason beside it, so it is not resent forever; the reason
names where the measurement came from (``FILE:LINE``, for those :meth:`Outbox.put_lines` put), and
:class:`FlushResult` lists the rejections of the flush.

Several processes may share an outbox (``reachwatch measure --collector`` and ``reachwatch submit``
on the same ``--outbox``): ``put`` needs no lock (a whole file appears by its rename), and flushes
take turns (``flock`` of ``path/pending``, waited for): two at once would each send the other's
files, and one would trip over the files the other deleted.

``put_lines(source, name)`` puts a file's JSON lines all or none (``reachwatch submit``): every line
is checked before the first is put, so a bad line queues nothing.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import dataclasses
import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import orjson

from reachwatch.collector.answers import (
    CUT_OFF,
    LINE_STATUSES,
    acknowledged,
    batch_line_reason,
    reason_of,
    retry_after,
    transport_failure,
)
from reachwatch.collector.outbox_files import (
    ORIGIN_SUFFIX,
    OutboxFull,
    batch_lines,
    check_line,
    fsync_dir,
    next_batch,
)
from reachwatch.errors import make_directory
from reachwatch.runtime import alive
from reachwatch.store.compression import compress


@dataclasses.dataclass(frozen=True)
class Rejection:
    """A measurement the collector refused: where it came from (``FILE:LINE``, every line that held
    it; none for a measurement put without one), why, and the file it was moved to."""

    origins: tuple[str, ...]
    reason: str
    path: Path

    def where(self) -> str:
        return ", ".join(self.origins) if self.origins else str(self.path)


@dataclasses.dataclass
class FlushResult:
    sent: int = 0
    rejected: int = 0
    remaining: int = 0
    uids: list[str] = dataclasses.field(default_factory=list)
    rejections: list[Rejection] = dataclasses.field(default_factory=list)
    #: why the last attempt kept measurements queued (unreachable, a 5xx, a 4xx about the request)
    error: str | None = None
    #: seconds the collector asked to be left alone (``Retry-After``) when the flush stopped busy
    retry_after: float = 0.0


#: Seconds between tries of the flush lock while another process flushes the outbox.
LOCK_POLL = 0.05
#: Lines per batch the outbox posts (``reachwatch submit`` and ``measure --collector``).
BATCH = 500


class Outbox:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.pending_dir = self.path / "pending"
        self.rejected_dir = self.path / "rejected"
        fix = "give --outbox a directory you can write to (it is made if missing)"
        for directory in (self.pending_dir, self.rejected_dir):
            make_directory(directory, "the outbox directory", fix=fix)
        self._remove_orphans()

    def _remove_orphans(self) -> None:
        """Delete the half-written files of :meth:`put`s that a kill cut short (``.NAME.PID.tmp``,
        the process gone): they hold nothing queued (the measurement was put again, or never
        acknowledged to its caller), yet stayed for ever; and origins left by a kill between a
        sent measurement's deletion and theirs."""
        for tmp in self.pending_dir.glob(".*.tmp"):
            pid = tmp.name.rsplit(".", 2)[-2]
            if pid.isdigit() and not alive(int(pid)):
                tmp.unlink(missing_ok=True)
        for origin in self.pending_dir.glob(f"*{ORIGIN_SUFFIX}"):
            if not origin.with_suffix(".json").exists():
                origin.unlink(missing_ok=True)

    def put(self, measurement: dict[str, Any] | bytes, origin: str | None = None) -> Path:
        """Queue one measurement (durable when this returns). ``origin`` (``FILE:LINE``) is noted
        beside it, to name it if the collector refuses it: a measurement put twice keeps one file
        and every origin."""
        data = measurement if isinstance(measurement, bytes) else orjson.dumps(measurement)
        data = data.strip()
        name = hashlib.sha256(data).hexdigest()[:32] + ".json"
        final = self.pending_dir / name
        tmp = self.pending_dir / f".{name}.{os.getpid()}.tmp"
        try:
            if origin is not None:
                # not fsynced: it only names the measurement in a rejection, and a crash that
                # loses it loses no measurement
                with open(final.with_suffix(ORIGIN_SUFFIX), "a", encoding="utf-8") as fh:
                    fh.write(origin.replace("\n", " ") + "\n")
            if final.exists():
                return final
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
            fsync_dir(self.pending_dir)
        except OSError as exc:  # a full disk, a read-only one: said, not a traceback
            tmp.unlink(missing_ok=True)
            raise OutboxFull(exc, self.pending_dir) from None
        return final

    def put_lines(self, source: BinaryIO, name: str) -> int:
        """Put every measurement of ``source`` (one JSON object a line; blank lines skipped, a
        UTF-8 byte order mark before the first allowed), all or none: every line is read and
        checked before the first is put, and a bad one raises :class:`UserError` naming
        ``name:line``, with nothing queued. The lines checked wait in an unnamed file in the
        outbox (a pipe cannot be read twice; memory holds one line at a time). Returns how many
        lines were put; each is noted as ``name:line`` (see :meth:`put`)."""
        with tempfile.TemporaryFile(dir=self.path) as spool:
            count = 0
            for n, line in enumerate(source, 1):
                if n == 1:
                    line = line.removeprefix(codecs.BOM_UTF8)  # as Windows editors save UTF-8
                line = line.strip()
                if line:
                    check_line(line, name, n)
                    try:
                        spool.write(b"%d %s\n" % (n, line))
                    except OSError as exc:
                        raise OutboxFull(exc, self.path, f"nothing from {name} was queued") from None
                    count += 1
            spool.seek(0)
            for put, line in enumerate(spool):  # each with its number in the source before it
                number, _, data = line.partition(b" ")
                try:
                    self.put(data, f"{name}:{int(number)}")
                except OutboxFull as exc:
                    raise OutboxFull(
                        exc.cause,
                        self.pending_dir,
                        f"{put} of the {count} measurements of {name} were queued (putting them "
                        "again queues none twice)",
                    ) from None
        return count

    def pending(self) -> list[Path]:
        """The queued measurements' files; anything else there (a directory, a dangling link: a
        hand-made mess) is left alone rather than sent or tripped over."""
        return sorted(
            p
            for p in self.pending_dir.iterdir()
            if p.suffix == ".json" and not p.name.startswith(".") and p.is_file()
        )

    async def flush(
        self, url: str, *, batch: int = BATCH, retry_for: float = 0.0, client: httpx.AsyncClient | None = None
    ) -> FlushResult:
        """Send everything pending; keep retrying an unreachable collector for ``retry_for`` seconds.
        A flush of this outbox by another process (or task) is waited for first; ``remaining``
        counts what this flush found and could not send (another process's new files are its own
        to send)."""
        async with self._turn():
            return await self._flush(url, batch=batch, retry_for=retry_for, client=client)

    @contextlib.asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """Hold the outbox's flush lock (``flock`` of the pending directory, so no lock file is
        left), waiting for it without blocking the loop: a cancelled wait leaves nothing held."""
        fd = os.open(self.pending_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(LOCK_POLL)
            yield
        finally:
            os.close(fd)  # the lock goes with it

    async def _flush(
        self, url: str, *, batch: int, retry_for: float, client: httpx.AsyncClient | None
    ) -> FlushResult:
        own = client is None
        http = client or httpx.AsyncClient(timeout=60.0)
        endpoint = url.rstrip("/") + "/api/v1/measurements"
        result = FlushResult()
        # retry_for counts from the first failure since the collector last took a batch: a long
        # flush whose collector restarts once is not given up at once (until session 19 it counted
        # from the flush's start)
        deadline: float | None = None
        size = ceiling = batch  # ceiling: lowered by a 413, which says the batch was too big
        cut_at = 0  # the batch size a connection was last cut at (maybe an early 413)
        busy = False  # the last answer was a 429 or 503
        compressed = True  # zstd, until a collector from before compressed uploads answers 415
        files: list[Path] = []

        def give_up_after(wait: float) -> bool:
            """Whether waiting ``wait`` more seconds would end past ``retry_for`` (started now, at
            a first failure)."""
            nonlocal deadline
            if deadline is None:
                deadline = _clock() + retry_for
            return _clock() + wait > deadline

        try:
            files = self.pending()
            while files:
                chunk = next_batch(files, size)
                lines, unreadable = batch_lines(chunk)
                if unreadable:
                    files = self._reject_all(unreadable, files, result)
                    continue
                body = b"\n".join(lines)
                headers = {"content-type": "application/x-ndjson"}
                if compressed:
                    body = compress(body)
                    headers["content-encoding"] = "zstd"
                try:
                    resp = await http.post(endpoint, content=body, headers=headers)
                except httpx.TransportError as exc:
                    result.error = f"cannot reach {endpoint}: {transport_failure(exc)}"
                    if len(chunk) > 1 and isinstance(exc, CUT_OFF):
                        # connected, then cut off while sending: maybe an early 413 for a body too
                        # big for this collector; a smaller batch tells (an unreachable one does not,
                        # nor one that never answers: each half would wait out the timeout again).
                        # Cut twice at one size, that size is too big for good
                        if len(chunk) == cut_at:
                            ceiling = max(1, len(chunk) // 2)
                        cut_at, size = len(chunk), max(1, len(chunk) // 2)
                    elif give_up_after(RETRY_PAUSE):
                        break
                    await asyncio.sleep(RETRY_PAUSE)
                    continue
                if resp.status_code in (429, 503):
                    result.error = f"{endpoint} answered {resp.status_code}: {reason_of(resp)}"
                    wait = retry_after(resp)
                    # its first Retry-After is always waited (a flush of measure --collector,
                    # with retry_for 0, would otherwise ask again at once); busy again, a wait
                    # that would end past retry_for is not (until session 19 it was, and then
                    # the flush stopped)
                    if give_up_after(wait) and busy:
                        result.retry_after = wait  # for the caller's next flush to wait
                        break  # they stay queued
                    busy = True
                    await asyncio.sleep(wait)
                    continue
                busy = False
                if resp.status_code == 415 and compressed:
                    compressed = False  # an older collector: the same batch again, uncompressed
                    continue
                if resp.status_code == 413 and size > 1:
                    size = ceiling = max(1, size // 2)
                    continue
                if 200 <= resp.status_code < 300:
                    uids = acknowledged(resp, len(chunk))
                    if uids is None:
                        # a captive portal's page, a proxy's or another service's 2xx: no
                        # acknowledgement of each measurement, so none is taken as stored
                        result.error = (
                            f"{endpoint} answered {resp.status_code} without a measurement uid for "
                            f"each of the {len(chunk)} measurements sent (is {url} a reachwatch "
                            "collector, reached directly?)"
                        )
                        break
                    result.uids.extend(uids)
                    for p in chunk:
                        p.unlink(missing_ok=True)
                        p.with_suffix(ORIGIN_SUFFIX).unlink(missing_ok=True)
                    fsync_dir(self.pending_dir)
                    result.sent += len(chunk)
                    files = files[len(chunk) :]
                    deadline, size = None, min(ceiling, size * 2)
                    continue
                if 400 <= resp.status_code < 500:
                    bad = self._bad_lines(resp, chunk)
                    if bad is None:
                        if resp.status_code in LINE_STATUSES and size > 1:
                            size = max(1, len(chunk) // 2)  # a refusal naming no line: find it alone
                            continue
                        # not about the measurements (a wrong URL, a proxy's 403, a 405...): they
                        # stay queued, and the reason is said
                        result.error = f"{endpoint} answered {resp.status_code}: {reason_of(resp)}"
                        if resp.status_code in (404, 405) and "base URL" not in result.error:
                            result.error += f" (is {url} the collector's base URL, as http://HOST:PORT?)"
                        break
                    files = self._reject_all(bad, files, result)
                    deadline = None
                    continue
                result.error = f"{endpoint} answered {resp.status_code}: {reason_of(resp)}"
                if give_up_after(1.0):  # 5xx: the collector's fault, keep the files
                    break
                await asyncio.sleep(1.0)
        finally:
            if own:
                await http.aclose()
        result.remaining = sum(p.exists() for p in files)
        return result

    def _bad_lines(self, resp: httpx.Response, chunk: list[Path]) -> list[tuple[Path, str]] | None:
        """The measurements a 4xx refuses, with the reason: the lines its ``errors`` name, or the
        one measurement sent (400, 413, 422); None when it names none (not about them)."""
        try:
            answer = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            answer = {}
        errors = answer.get("errors") if isinstance(answer, dict) else None
        if isinstance(errors, list) and errors:
            # the collector numbers the lines of the batch ("line 3: ..."), which are not the
            # lines of the user's file: said as the batch's
            named: dict[Path, str] = {}  # a line named twice is refused once, for its first reason
            for e in errors:
                if isinstance(e, dict) and isinstance(e.get("line"), int) and 0 < e["line"] <= len(chunk):
                    named.setdefault(
                        chunk[e["line"] - 1],
                        batch_line_reason(resp.status_code, e["line"], len(chunk), e.get("error")),
                    )
            if named:
                return list(named.items())
        if len(chunk) == 1 and resp.status_code in LINE_STATUSES:
            return [(chunk[0], f"{resp.status_code}: {reason_of(resp)}")]
        return None

    def _reject_all(
        self, refused: list[tuple[Path, str]], files: list[Path], result: FlushResult
    ) -> list[Path]:
        """:meth:`_reject` each (file, reason), counted in ``result``; ``files`` without them."""
        for path, reason in refused:
            result.rejections.append(self._reject(path, reason))
        result.rejected += len(refused)
        gone = {path for path, _ in refused}
        return [p for p in files if p not in gone]

    def _reject(self, path: Path, reason: str) -> Rejection:
        """Move a refused measurement to ``rejected/``, its reason and origins in a ``.error``
        beside it."""
        target = self.rejected_dir / path.name
        origin_file = path.with_suffix(ORIGIN_SUFFIX)
        try:
            origins = tuple(dict.fromkeys(origin_file.read_text(encoding="utf-8").splitlines()))
        except FileNotFoundError:
            origins = ()
        os.replace(path, target)
        rejection = Rejection(origins, reason, target)
        text = f"{reason}\n"
        if origins:
            text = f"from {rejection.where()}\n{text}"
        target.with_suffix(".error").write_text(text, encoding="utf-8")
        origin_file.unlink(missing_ok=True)
        return rejection


#: Seconds between tries of a collector that could not be reached
RETRY_PAUSE = 0.2
#: The clock ``retry_for`` is counted by (a test's to move)
_clock = time.monotonic
