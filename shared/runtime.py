"""What every service process shares: logging, HTTP error shapes, health, background loops."""

import asyncio
import contextlib
import logging
import math
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from faststream.kafka import KafkaBroker
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, PyMongoError
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.kafka import LOG_REPLACED_CHECK_SECONDS, ReplacedLogWatch, kafka_reachable
from shared.logs import configure_logging
from shared.mongo import Document
from shared.settings import Settings

log = logging.getLogger(__name__)


async def validation_error(request: Request, error: Exception) -> JSONResponse:
    """422 naming each bad field and its problem; `detail` keeps FastAPI's usual shape too,
    without the rejected input: a complaint's fields hold personal data, which an error must
    not echo back (nor to a log or a proxy in between)."""
    assert isinstance(error, RequestValidationError)
    detail = [{"type": e["type"], "loc": [_printable(p) for p in e["loc"]], "msg": _printable(e["msg"])}
              for e in error.errors()]
    errors = [{"field": ".".join(str(p) for p in e["loc"] if p != "body") or "body",
               "problem": e["msg"]} for e in detail]
    return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
                        content={"errors": errors, "detail": detail})


def _printable(part: object) -> str | int:
    # A field name is the caller's own key and may be a lone surrogate: UTF-8 must encode it.
    if isinstance(part, int):
        return part
    return str(part).encode("utf-8", "replace").decode("utf-8")


# A readiness check answers None when fine, else the problem in a few words.
ReadinessCheck = Callable[[], Awaitable[str | None]]

# `disposisi dev` sends this before it stops the system: the service stops taking new work over
# HTTP while its consumers keep draining the broker (see services/dev.py, stop_in_order).
STOP_ACCEPTING_SIGNAL = signal.SIGUSR1
_stopping = threading.Event()
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_STILL_ACCEPTED = frozenset({"/v1/auth/token"})  # signing in starts no work
STOPPING = {"errors": [{"field": None, "problem": "the service is stopping; retry later"}]}


def stop_accepting() -> None:
    """From now on writes over HTTP answer 503 and /readyz says stopping; consumers go on."""
    _stopping.set()


def add_health(app: FastAPI, settings: Settings, service: str,
               db: AsyncDatabase[Document] | None = None, *, broker: KafkaBroker | None = None,
               checks: Mapping[str, ReadinessCheck] | None = None) -> None:
    """``/healthz``: the process answers (200 while its event loop runs; restart it if not).
    ``/readyz``: it can do its work now: the broker answers, every subscriber of ``broker``
    has partitions assigned, the store answers, and each extra check passes; else 503 with
    each failed check named."""
    probes: dict[str, ReadinessCheck] = {"kafka": lambda: _kafka_problem(settings)}
    if broker is not None:
        probes["consumers"] = lambda: _consumers_problem(broker)
    if db is not None:
        probes["mongodb"] = lambda: _mongo_problem(db, settings.readiness_timeout_seconds)
    probes.update(checks or {})
    probes["accepting"] = _stopping_problem

    app.add_middleware(RefuseWritesWhileStopping, retry_after=settings.store_retry_after_seconds)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> JSONResponse:
        """Liveness: 200 while the process serves requests."""
        return JSONResponse({"service": service, "status": "alive"})

    @app.get("/readyz", tags=["health"], responses={503: {"description": "A check failed"}})
    async def readyz() -> JSONResponse:
        """Readiness: 200 when every check passes, else 503 naming each failed check."""
        results = await asyncio.gather(*(_bounded(probe, settings.readiness_timeout_seconds)
                                         for probe in probes.values()))
        report = {name: {"ok": problem is None, **({"problem": problem} if problem else {})}
                  for name, problem in zip(probes, results, strict=True)}
        failed = [name for name, problem in zip(probes, results, strict=True) if problem]
        return JSONResponse(status_code=503 if failed else 200,
                            content={"service": service, "ready": not failed, "failed": failed,
                                     "checks": report})

    _ = (healthz, readyz)


class RefuseWritesWhileStopping:
    """ASGI middleware: once ``stop_accepting`` was called, writes answer 503 (sign-in still
    works). Plain ASGI rather than ``@app.middleware("http")``, whose per-request task and
    streams cost more than the rest of a submission's HTTP handling."""

    def __init__(self, app: ASGIApp, retry_after: int) -> None:
        self.app = app
        self.retry_after = retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (_stopping.is_set() and scope["type"] == "http" and scope["method"] in _WRITES
                and scope["path"] not in _STILL_ACCEPTED):
            refusal = JSONResponse(status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                                   content=STOPPING, headers={"Retry-After": str(self.retry_after)})
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _stopping_problem() -> str | None:
    return "stopping: not accepting new work" if _stopping.is_set() else None


async def _bounded(probe: ReadinessCheck, within: float) -> str | None:
    try:
        async with asyncio.timeout(within):
            return await probe()
    except TimeoutError:
        return f"no answer within {within:g} s"
    except Exception as error:
        return f"check failed: {type(error).__name__}"


async def _kafka_problem(settings: Settings) -> str | None:
    # Inside the check's own bound, so an unreachable broker is reported as such.
    if await kafka_reachable(settings, within=0.8 * settings.readiness_timeout_seconds):
        return None
    return "broker unreachable"


async def _consumers_problem(broker: KafkaBroker) -> str | None:
    """Each subscriber's consumer must hold partitions: before its group assigns them (or
    while the group rebalances, or after the broker lost its topics) nothing is consumed."""
    waiting = []
    for subscriber in broker.subscribers:
        consumer = getattr(subscriber, "consumer", None)
        if consumer is None or not consumer.assignment():
            topics = ",".join(getattr(subscriber, "topic_names_for_subscribe", []))
            waiting.append(f"{topics} ({getattr(subscriber, 'group_id', None)})")
    return f"no partitions assigned: {'; '.join(waiting)}" if waiting else None


async def _mongo_problem(db: AsyncDatabase[Document], within: float) -> str | None:
    try:
        await asyncio.wait_for(db.command("ping"), within)
        return None
    except Exception:
        return "store unreachable"


STORE_UNAVAILABLE = {"errors": [{"field": None, "problem": "store unavailable, retry later"}]}


class Unavailable(HTTPException):
    """Something the answer needs (the store, the identity provider) cannot be reached: 503
    with Retry-After, in the one error shape of every service (``add_store_errors``)."""

    def __init__(self, problem: str, *, retry_after: int) -> None:
        super().__init__(status.HTTP_503_SERVICE_UNAVAILABLE, problem,
                         headers={"Retry-After": str(retry_after)})


def unavailable_body(problem: str) -> dict[str, Any]:
    return {"errors": [{"field": None, "problem": problem}]}


def add_store_errors(app: FastAPI, settings: Settings) -> None:
    """A store that cannot be reached answers 503 with Retry-After (the client may retry;
    nothing was accepted), not a bare 500 after a long wait. So does an ``Unavailable`` raised
    by sign-in or the permission guard: every 503 has the body ``{"errors": [...]}``."""

    async def store_error(request: Request, error: Exception) -> JSONResponse:
        if not store_unreachable(error):
            log.exception("store error on %s %s", request.method, request.url.path,
                          exc_info=error)
            return JSONResponse(status_code=500, content={
                "errors": [{"field": None, "problem": "internal store error"}]})
        log.warning("store unavailable on %s %s: %s", request.method, request.url.path,
                    type(error).__name__)
        return JSONResponse(status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                            content=STORE_UNAVAILABLE,
                            headers={"Retry-After": str(settings.store_retry_after_seconds)})

    async def unavailable(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, Unavailable)
        return JSONResponse(status_code=error.status_code, content=unavailable_body(error.detail),
                            headers=error.headers)

    app.add_exception_handler(PyMongoError, store_error)
    app.add_exception_handler(Unavailable, unavailable)


def store_unreachable(error: BaseException) -> bool:
    """Connection lost, no server to select, or a call that timed out."""
    return isinstance(error, ConnectionFailure) or (isinstance(error, PyMongoError)
                                                    and error.timeout)


@contextlib.asynccontextmanager
async def background(*loops: Callable[[], Coroutine[Any, Any, None]],
                     within: float = 10.0) -> AsyncIterator[None]:
    """Run loops beside the service; cancel them on shutdown, waiting at most ``within``
    seconds for them to end (``cancel_and_wait``)."""
    tasks = [asyncio.create_task(loop()) for loop in loops]
    try:
        yield
    finally:
        await cancel_and_wait(tasks, within, "background loop")


RECANCEL_SECONDS = 0.5


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], within: float, what: str) -> None:
    """Cancel the tasks and wait for them to end, cancelling again each RECANCEL_SECONDS any
    that still runs; after ``within`` seconds one still running is logged and left. One cancel
    is not enough: on Python 3.11 ``asyncio.wait_for`` (PyMongo's connect and send use it, and
    aiokafka) returns its result instead of raising when the cancel arrives just as the
    awaited call finished. A loop then runs on as if never cancelled, and a shutdown that
    waited for it waited forever, with an idle event loop (seen under load, mostly in the SLA
    service with its ten loops)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    pending = {task for task in tasks if not task.done()}
    while pending:
        left = deadline - loop.time()
        if left <= 0:
            log.warning("%d %s(s) still running %g s after being cancelled; leaving them: %s",
                        len(pending), what, within, ", ".join(t.get_name() for t in pending))
            break
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=min(RECANCEL_SECONDS, left))
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.warning("%s %s ended with %r", what, task.get_name(), task.exception())


async def finish_within(step: Awaitable[Any], within: float, what: str) -> None:
    """Await ``step`` for at most ``within`` seconds, then log and leave it. A task and
    ``asyncio.wait``, not ``asyncio.timeout``: a timeout works by cancelling, and the cancel
    can be lost (see ``cancel_and_wait``)."""
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=within)
    if not done:
        log.warning("%s did not finish within %g s; leaving it", what, within)
        task.cancel()
    elif not task.cancelled() and task.exception() is not None:
        log.warning("%s failed: %r", what, task.exception())


@contextlib.asynccontextmanager
async def consuming(broker: KafkaBroker, settings: Settings, *,
                    on_log_replaced: Callable[[], Awaitable[None]] | None = None,
                    ) -> AsyncIterator[None]:
    """Connect the broker's producer now and start its subscribers in the background, so the
    HTTP port opens without waiting for them. A subscriber's start returns only once its group
    assigned it partitions, and after a kill -9 the group first waits out the dead member's
    session (10-25 s measured): meanwhile ``/healthz`` answers and ``/readyz`` says
    ``consumers`` not ready, and the HTTP API (stored, then published) already works. A start
    that fails (the broker went away) is tried again. Stopping is bounded: the producer's
    flush waits on every pending send, and a send the broker never acknowledges (a partition
    a restarted broker no longer has) would otherwise hold the process forever. Beside them,
    consumers left past the end of a replaced log are rewound, and ``on_log_replaced`` runs
    when that happens (``_rewind_replaced_logs_forever``)."""
    await broker.connect()
    starting = asyncio.create_task(_start_subscribers(broker, settings.consumer_start_retry_seconds),
                                   name="start consumers")
    rewinding = asyncio.create_task(_rewind_replaced_logs_forever(broker, on_log_replaced),
                                    name="rewind consumers past a replaced log's end")
    try:
        yield
    finally:
        await cancel_and_wait([starting, rewinding], settings.loops_stop_seconds,
                              "consumer task")
        await finish_within(broker.stop(), settings.broker_stop_seconds, "the broker client's stop")


async def _rewind_replaced_logs_forever(broker: KafkaBroker,
                                       on_log_replaced: Callable[[], Awaitable[None]] | None,
                                       ) -> None:
    """After the embedded broker's restart, no consumer stays on offsets of the lost log
    (``ReplacedLogWatch``); once one was rewound, ``on_log_replaced`` runs (intake
    republishes what the lost log may have held)."""
    watch = ReplacedLogWatch()
    while True:
        await asyncio.sleep(LOG_REPLACED_CHECK_SECONDS)
        replaced = False
        for subscriber in broker.subscribers:
            consumer = getattr(subscriber, "consumer", None)
            if consumer is None:
                continue
            try:
                moved = await watch.check(consumer)
            except Exception as error:  # checked again next turn; the loop must not end
                log.warning("checking %s for a replaced log failed: %s",
                            getattr(subscriber, "group_id", None), error)
                continue
            if moved:
                replaced = True
                log.warning("the broker's log was replaced (restarted empty): %s read again from "
                            "the beginning of %s", getattr(subscriber, "group_id", None),
                            ", ".join(f"{tp.topic}[{tp.partition}]" for tp in moved))
        if replaced and on_log_replaced is not None:
            try:
                await on_log_replaced()
            except Exception as error:  # reconciliation still catches it, later
                log.warning("acting on the replaced log failed: %s", error)


async def _start_subscribers(broker: KafkaBroker, retry_seconds: float) -> None:
    # Side by side: each group's join may wait on its own dead member.
    await asyncio.gather(*(_start_one(s, retry_seconds) for s in broker.subscribers))
    for publisher in broker.publishers:
        await publisher.start()
    broker.running = True


async def _start_one(subscriber: Any, retry_seconds: float) -> None:
    while True:
        try:
            await subscriber.start()
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("starting the consumer of %s failed, retrying in %g s: %s",
                        getattr(subscriber, "topic_names_for_subscribe", "?"), retry_seconds, error)
            with contextlib.suppress(Exception):
                await subscriber.stop()
            await asyncio.sleep(retry_seconds)


DOCS_ASSETS = "/docs-assets"
_SWAGGER_UI = Path(__file__).resolve().parent / "static" / "swagger-ui"
# Pass to every FastAPI(...): its own /docs and /redoc load their scripts from a CDN, which an
# office intranet may not reach; add_local_docs serves /docs from files shipped in the package.
NO_CDN_DOCS: dict[str, Any] = {"docs_url": None, "redoc_url": None}
# FastAPI's own OpenTelemetry hooks, off: traces come from shared.telemetry (its own provider
# and the FastAPI instrumentation, when configured), never from the global providers these
# hooks look up, and that lookup (environment reads) ran on every request.
NO_NATIVE_TELEMETRY: dict[str, Any] = {
    "telemetry": {"tracing": False, "metrics": False, "logs": False}}


def add_local_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) with its script, style and icon served by the service itself
    (vendored swagger-ui-dist, see shared/static/swagger-ui/VERSION.txt): no request leaves
    the machine. Added as plain routes, outside the app's sign-in guard, as FastAPI's are."""
    if app.docs_url is not None or app.redoc_url is not None:
        raise ValueError("create the app with **NO_CDN_DOCS: its own /docs loads from a CDN")
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = "/docs/oauth2-redirect"

    async def docs(request: Request) -> Response:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title} · API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
            oauth2_redirect_url=redirect_url,
            # the default validator badge would call an outside host
            swagger_ui_parameters={"validatorUrl": None})

    async def oauth2_redirect(request: Request) -> Response:
        return get_swagger_ui_oauth2_redirect_html()

    app.mount(DOCS_ASSETS, StaticFiles(directory=_SWAGGER_UI), name="docs-assets")
    app.add_route("/docs", docs, include_in_schema=False)
    app.add_route(redirect_url, oauth2_redirect, include_in_schema=False)


def serve(app: FastAPI, host: str, port: int, *, shutdown_seconds: float = 15.0) -> None:
    """Serve until SIGINT/SIGTERM. On stop, requests still open after ``shutdown_seconds`` (a
    live page's stream, a client that stalls mid-request) are cancelled, so no peer can hold
    the stop; then the app's lifespan ends, bounded in each step."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    signal.signal(STOP_ACCEPTING_SIGNAL, lambda signum, frame: stop_accepting())
    # log_config=None: uvicorn's lines go through the structured handler (shared/logs.py).
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower(), log_config=None,
                timeout_graceful_shutdown=math.ceil(shutdown_seconds),
                **http_server_options(settings))


def http_server_options(settings: Settings) -> dict[str, Any]:
    """What every service's HTTP server runs with; the tests serve apps with it too."""
    return {"lifespan": "on", "timeout_keep_alive": settings.http_keep_alive_seconds}


async def every(seconds: float, step: Callable[[], Awaitable[Any]], name: str) -> None:
    """Call ``step`` forever; a failing step is logged and tried again next turn. Run as a
    task of its own (``background``), which takes ``name``, so a stop's warning names it."""
    task = asyncio.current_task()
    if task is not None:
        task.set_name(name)
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("%s failed: %s", name, error)
        await asyncio.sleep(seconds)
