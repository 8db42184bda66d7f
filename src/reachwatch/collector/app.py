"""The collector's ASGI app (FastAPI, OpenAPI at /openapi.json): write routes and wiring.

Routes take the raw :class:`Request` and parse with orjson (pydantic validates at the edge); the
request-body schemas are declared for OpenAPI by hand so clients and fuzzers see them. The two
write routes are also answered straight from ASGI by :class:`CollectorApp` (the write lane).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import orjson
from fastapi import FastAPI
from pydantic import ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from reachwatch.collector import admin, health, probe_services, reads
from reachwatch.collector.analyser import close_pool
from reachwatch.collector.attribution import Attributor
from reachwatch.collector.batch import POOLED_BYTES, POOLED_LINES, BatchPool
from reachwatch.collector.batch_lines import EMPTY_BATCH, lines_of, newlines, rejected
from reachwatch.collector.config import Settings
from reachwatch.collector.error_handlers import add_error_handlers
from reachwatch.collector.finish import Staged
from reachwatch.collector.forwarded import TrustedProxies
from reachwatch.collector.http import (
    ApiError,
    json_response,
    parse_json,
    read_asgi_body,
    read_body,
    send_error,
    send_json,
)
from reachwatch.collector.ingest import Ingestor
from reachwatch.collector.linger import LingeringBody, closes_after
from reachwatch.collector.ooni_protocol import (
    BACKEND_VERSION,
    BatchSubmitted,
    MeasurementIn,
    ReportOpen,
    ReportOpened,
    Submission,
    Submitted,
    new_report_id,
    valid_report_id,
)
from reachwatch.collector.openapi import error_answers, inline_schema
from reachwatch.collector.openapi import json_body as _json_body
from reachwatch.collector.post_lane import PostLane, stage_post
from reachwatch.collector.prepare import stage_lines, validation_message
from reachwatch.collector.ratelimit import RateLimiter, network_key
from reachwatch.collector.submissions import REPORT, Kind
from reachwatch.collector.submitter import submitter_of
from reachwatch.collector.url_lists import Categories
from reachwatch.collector.vantage import KEY_FILE as VANTAGE_KEY_FILE
from reachwatch.collector.vantage import Vantages
from reachwatch.store import default_journal, open_store
from reachwatch.store.journal_left import note_journal, store_left_journal

log = logging.getLogger(__name__)
ERRORS = error_answers(
    (400, "bad JSON"),
    (404, "unknown"),
    (413, "body too large"),
    (415, "a Content-Encoding other than zstd, gzip, deflate"),
    (422, "invalid measurement"),
    (429, "rate limited"),
    (503, "busy, retry"),
)


def _json_bytes(body: bytes) -> Response:
    return Response(body, media_type="application/json")


Handler = Callable[[Scope, Receive, str], Awaitable[bytes]]


class CollectorApp(FastAPI):
    """FastAPI plus a write lane: ``POST /report/{report_id}`` and ``POST /api/v1/measurements``
    are answered straight from ASGI (no middleware stack, routing, dependency solving or Response
    object: about half the CPU of a bare FastAPI route). Their FastAPI routes stay declared with the
    same handlers, so OpenAPI documents them and a request that misses the lane is served the same.
    Errors are answered as the app's exception handlers would: ApiError as itself, anything else 500.
    """

    lane: dict[str, Handler]
    #: ``--trusted-proxy``: the submitter is then the one a trusted proxy's X-Forwarded-For names
    proxies: TrustedProxies | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.proxies is not None and scope["type"] == "http":
            self.proxies.rewrite(scope)
        if scope["type"] == "http" and closes_after(scope):  # an early answer must still be read
            body = LingeringBody(scope, receive, send)
            receive, send = body.receive, body.send
        if scope["type"] == "http" and scope["method"] == "POST" and getattr(self, "lane", None):
            path: str = scope["path"]
            if path.startswith("/report/"):
                arg = path[8:]
                handler = self.lane["/report/"] if arg and "/" not in arg else None
            else:
                arg, handler = "", self.lane.get(path)
            if handler is not None:
                scope["app"] = self
                await _answer(handler, arg, scope, receive, send)
                return
        try:
            await super().__call__(scope, receive, send)
        except Exception:
            if scope["type"] != "http":
                raise
            # already answered (500) and logged (its type only) by ``error_handlers._internal``: Starlette
            # re-raises for the server, whose log would get the whole traceback and whose
            # connection would be dropped under the client's next keep-alive request


async def _answer(handler: Handler, arg: str, scope: Scope, receive: Receive, send: Send) -> None:
    try:
        body = await handler(scope, receive, arg)
    except ApiError as exc:
        await send_error(send, exc)
        return
    except ClientDisconnect:
        return
    except Exception as exc:
        # never log the request (it carries the submitter's address): the exception type only
        log.error("internal error on POST %s: %s", scope["path"], type(exc).__name__)
        await send_json(send, b'{"error":"internal error"}', 500)
        return
    await send_json(send, body)


def create_app(settings: Settings) -> CollectorApp:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        journal = settings.journal_location()
        if default_journal(settings.store):  # a DuckDB file
            # what an earlier run left in a journal other than this run's goes in first (this
            # run's own journal is recovered as it opens); then where this run journals is noted
            await asyncio.to_thread(store_left_journal, settings.store, besides=journal)
            if settings.journal_dir is not None:
                await asyncio.to_thread(note_journal, settings.store, settings.journal_dir)
        store = open_store(settings.store, journal=journal, memory_limit=settings.db_memory)
        await store.open()
        attributor = Attributor(settings.asn_db, settings.country_db)
        ingestor = Ingestor(
            store,
            attributor,
            await store.secret(),
            identity=await store.identity(),
            max_pending=settings.max_pending,
        )
        if journal is not None:  # the day's vantage key kept for a restart that day
            ingestor.vantages = Vantages(Path(journal) / VANTAGE_KEY_FILE)
        if len(app.state.url_lists):  # categories for OONI probes' measurements, which name none
            ingestor.categories = Categories(app.state.url_lists)
        ingestor.start()
        pool = lane = None
        if settings.ingest_workers > 0:
            pool = BatchPool(
                settings.ingest_workers,
                secret=ingestor.secret,
                identity=ingestor.identity,
                verdict_now=ingestor.verdict_now,
            )
            await pool.start()
            lane = PostLane(pool, ingestor)
            lane.start()
        app.state.store, app.state.ingestor, app.state.batch_pool = store, ingestor, pool
        app.state.post_lane = lane
        app.state.limiter = RateLimiter(settings.rate, settings.burst, exempt=settings.rate_exempt)
        app.state.settings = settings
        try:
            yield
        finally:
            await app.state.reanalysis.stop()
            if lane is not None:
                await lane.stop()
            if pool is not None:
                await pool.close()
            await ingestor.stop()
            await store.close()
            attributor.close()
            close_pool()

    # no slash redirects: Starlette's name an absolute URL of the scheme the app sees, http:// behind a
    # proxy ending TLS (a downgrade); ``/report/{id}/`` and the like are a 404 as any unknown path
    app = CollectorApp(
        title="reachwatch collector", version="0.1.0", lifespan=lifespan, redirect_slashes=False
    )
    add_error_handlers(app)

    def rate_limit(client: str, asn: str | None, cost: int) -> None:
        limiter: RateLimiter = app.state.limiter
        if limiter.rate <= 0 or limiter.exempts(client):
            return
        wait = limiter.take(network_key(asn, client), cost)
        if wait == float("inf"):
            # waiting would not help (it was a 429 with Retry-After: 3600): a 413 says to split it,
            # and a client that halves on 413 (reachwatch's outbox) gets through
            most = int(limiter.burst)
            raise ApiError(
                413,
                f"a batch of {cost} lines (blank ones counted) is more than this collector takes from "
                f"one network at once (--burst {most}): send at most {most} lines per batch",
            )
        if wait:
            retry = str(max(1, int(wait + 0.999)))
            raise ApiError(429, "too many measurements from this network", headers={"Retry-After": retry})

    @app.post("/report", response_model=ReportOpened, responses=ERRORS, openapi_extra=_json_body(ReportOpen))
    async def open_report(request: Request) -> Response:
        data = parse_json(await read_body(request, settings.max_body))
        try:
            req = ReportOpen.model_validate(data)
        except ValidationError as exc:
            raise ApiError(422, validation_message(exc)) from None
        ingestor: Ingestor = request.app.state.ingestor
        client = submitter_of(request.scope)
        network = ingestor.network(client)
        rate_limit(client, network.asn, 1)
        rid = new_report_id(ingestor.secret, req, dt.datetime.now(dt.UTC))
        return json_response(
            {"report_id": rid, "backend_version": BACKEND_VERSION, "supported_formats": ["json"]}
        )

    #: report ids whose HMAC was checked, with the secret it was checked against (a probe posts many
    #: measurements to one report); bounded: emptied when full
    checked: dict[str, bytes] = {}

    async def ingest_one(scope: Scope, body: bytes, kind: Kind) -> bytes:
        """One measurement, by every route that takes one (``POST /report/{id}``, OONI's
        ``submit_measurement``): ``kind`` says how the body holds it and its report id
        (:func:`~reachwatch.collector.submissions.unwrap`, its 4xx raised there); then validation,
        attribution, scrubbing, the duplicate check and the commit as for a batch line. Staged in a
        batch worker where there are some (:mod:`~reachwatch.collector.post_lane`), else here.
        ``body`` is held by nothing else, so that it is freed while the commit is awaited."""
        ingestor: Ingestor = app.state.ingestor
        submitter = submitter_of(scope)
        network = ingestor.network(submitter)
        rate_limit(submitter, network.asn, 1)
        lane: PostLane | None = app.state.post_lane
        if lane is not None:
            uid = await lane.submit(
                body, kind, submitter=submitter, network=network, vantage=ingestor.vantage(submitter)
            )
            return orjson.dumps({"measurement_uid": uid})

        def stage_it(raw: bytes) -> Staged:
            return stage_post(ingestor, kind, raw, submitter, network)

        # a big one on a thread: its content (a pathological one takes seconds to scrub) must not
        # hold the event loop; the thread lets the loop have the GIL at every switch interval
        staged = await asyncio.to_thread(stage_it, body) if len(body) >= POOLED_BYTES else stage_it(body)
        del body  # the request is not needed while the commit is awaited
        (uid,) = await ingestor.submit([staged])
        return orjson.dumps({"measurement_uid": uid})

    async def submit_one(scope: Scope, receive: Receive, report_id: str) -> bytes:
        ingestor: Ingestor = app.state.ingestor
        if checked.get(report_id) is not ingestor.secret:
            if not valid_report_id(ingestor.secret, report_id):
                raise ApiError(404, "unknown report id: open one with POST /report")
            if len(checked) >= 65_536:
                checked.clear()
            checked[report_id] = ingestor.secret
        body = await read_asgi_body(scope, receive, settings.max_body)
        return await ingest_one(scope, body, (REPORT, report_id))

    async def submit_many(scope: Scope, receive: Receive, _: str) -> bytes:
        """JSON lines in, uids out in input order. All or nothing: any bad line rejects the batch (4xx
        with the line numbers) and nothing is stored."""
        body = await read_asgi_body(scope, receive, settings.max_body)
        ingestor: Ingestor = app.state.ingestor
        submitter = submitter_of(scope)
        network = ingestor.network(submitter)
        pool: BatchPool | None = app.state.batch_pool
        # a big batch goes whole to a worker process: counted here by its newlines, not split (an
        # upper bound of its lines, blank ones included, for the rate limit)
        counted = newlines(body) + (not body.endswith(b"\n"))
        if pool is not None and (counted >= POOLED_LINES or len(body) >= POOLED_BYTES):
            rate_limit(submitter, network.asn, counted)
            # the lines the workers have in hand count too: a flood of big batches is a 503 at
            # once, not a wait for a free worker
            ingestor.check_room(counted, coming=pool.lines)
            rows = await pool.rows(
                body,
                newlines=counted,
                submitter=submitter,
                network=network,
                vantage=ingestor.vantage(submitter),
            )
            del body  # not needed while the commit is awaited
            uids = await ingestor.submit_rows(rows)
        else:
            lines = lines_of(body)
            if not lines:
                raise ApiError(400, EMPTY_BATCH)
            rate_limit(submitter, network.asn, len(lines))
            stage_them = functools.partial(
                stage_lines,
                lines,
                secret=ingestor.secret,
                verdict_now=ingestor.verdict_now,
                submitter=submitter,
                network=network,
                identity=ingestor.identity,
                vantage=ingestor.vantage(submitter),
            )
            # a big body without the workers (--ingest-workers 0) on a thread, as a big single post
            staged, errors = (
                await asyncio.to_thread(stage_them) if len(body) >= POOLED_BYTES else stage_them()
            )
            if errors:
                raise rejected(errors)
            del body, lines  # not needed while the commit is awaited
            uids = await ingestor.submit(staged)
        return orjson.dumps({"measurement_uids": uids})

    app.lane = {"/report/": submit_one, "/api/v1/measurements": submit_many}
    app.proxies = TrustedProxies(settings.trusted_proxies) if settings.trusted_proxies else None

    # the same handlers as FastAPI routes: what OpenAPI documents, and what serves without the lane
    @app.post(
        "/report/{report_id}",
        response_model=Submitted,
        responses=ERRORS,
        openapi_extra=_json_body(Submission),
    )
    async def submit(report_id: str, request: Request) -> Response:
        return _json_bytes(await submit_one(request.scope, request.receive, report_id))

    @app.post("/report/{report_id}/close", responses=ERRORS)
    async def close_report(report_id: str, request: Request) -> Response:
        if not valid_report_id(request.app.state.ingestor.secret, report_id):
            raise ApiError(404, "unknown report id")
        # nothing in it is used, but it is read as every route's is: 413 past --max-body, 400, 415, 408
        await read_body(request, settings.max_body)
        return json_response({})

    # JSON lines, and a batch of one as application/json: the body is read the same whatever its
    # Content-Type, and a JSON generator (a fuzzer, or a client of the spec) writes an object on
    # one line; without it, nothing that reads the spec could send a measurement here
    measurement = inline_schema(MeasurementIn.model_json_schema())
    batch_body = {
        "requestBody": {
            "required": True,
            "description": "JSON lines: one measurement (a JSON object) per line; one measurement on "
            "one line may be sent as application/json",
            "content": {
                "application/x-ndjson": {
                    "schema": {"type": "string", "description": "one measurement (JSON object) per line"},
                    "x-measurement-schema": measurement,
                },
                "application/json": {"schema": measurement},
            },
        }
    }

    @app.post(
        "/api/v1/measurements", response_model=BatchSubmitted, responses=ERRORS, openapi_extra=batch_body
    )
    async def submit_batch(request: Request) -> Response:
        """JSON lines in, uids out in input order. All or nothing: any bad line rejects the batch (4xx
        with the line numbers) and nothing is stored."""
        return _json_bytes(await submit_many(request.scope, request.receive, ""))

    reads.add_routes(app)
    probe_services.add_routes(app, settings, ingest_one, rate_limit)
    health.add_routes(app)
    admin.add_routes(app, settings)
    _add_dashboard(app)
    return app


def _add_dashboard(app: FastAPI) -> None:
    """The dashboard (``reachwatch.web``) at /dashboard/, reading the store the app opens. Its
    pages' slashed forms are a 404 as the app's are (no absolute redirect); the bare /dashboard
    leads to it by a relative one, which keeps the scheme the browser used."""
    from reachwatch.web import mount
    from reachwatch.web.store_source import StoreSource, lazy_reader

    dashboard = mount(StoreSource(lazy_reader(lambda: app.state.store)), "/dashboard")
    if isinstance(dashboard.app, Router):
        dashboard.app.redirect_slashes = False
    app.router.routes.append(dashboard)

    async def to_dashboard(_: Request) -> Response:
        return RedirectResponse("/dashboard/", status_code=307)

    app.router.routes.append(Route("/dashboard", to_dashboard, methods=["GET", "HEAD"]))
