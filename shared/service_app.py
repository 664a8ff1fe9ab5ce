"""The wiring every consumer service with an HTTP API shares: its broker, store, metrics,
tracing and sign-in; a lifespan that prepares the store, consumes and runs the service's loops
beside the API, then stops each part in bounded time; and the FastAPI app with health, local
docs, abuse limits and the one error shape. A service's app.py keeps only what differs: its
topics, indexes, loops, routers and state."""

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared import mongo
from shared.accounts import AccountStore
from shared.auth import Authenticator, document_credentials, guard
from shared.kafka import ensure_topics, make_broker
from shared.limits import install_abuse_limits
from shared.metrics import Metrics, install_metrics
from shared.mongo import Document
from shared.runtime import (
    NO_CDN_DOCS,
    ReadinessCheck,
    add_health,
    add_local_docs,
    add_store_errors,
    background,
    consuming,
    finish_within,
    serve,
    validation_error,
)
from shared.settings import Settings
from shared.telemetry import Tracing, bind, instrument_http, start_tracing
from shared.tenants import Tenants, load_tenants

Loop = Callable[[], Coroutine[Any, Any, None]]
Step = Callable[[], Awaitable[Any]]
Lifespan = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]


@dataclass
class ConsumerService:
    """The parts of one service process (``connect`` makes them)."""

    settings: Settings
    name: str
    tenants: Tenants
    metrics: Metrics
    broker: KafkaBroker
    client: AsyncMongoClient[Document]
    db: AsyncDatabase[Document]
    auth: Authenticator
    tracing: Tracing | None

    @classmethod
    def connect(cls, settings: Settings, name: str, *, traced: bool = False) -> "ConsumerService":
        """Broker, store client and sign-in of service ``name`` (nothing is reached yet);
        ``traced``: spans of its HTTP requests and consumed events (when an OTLP endpoint is
        set)."""
        tenants = load_tenants(settings)
        metrics = Metrics(name)
        broker = make_broker(settings, name, metrics=metrics)
        tracing = start_tracing(settings, name) if traced else None
        if tracing is not None:
            bind(broker, tracing)
        client = mongo.connect(settings, metrics=metrics)
        db = mongo.database(client, settings)
        auth = Authenticator(settings, AccountStore(db), tenants=tenants.ids)
        return cls(settings, name, tenants, metrics, broker, client, db, auth, tracing)

    def lifespan(self, *, topics: Sequence[str], prepare: Sequence[Step] = (),
                 loops: Sequence[Loop] = (),
                 around: Callable[[], contextlib.AbstractAsyncContextManager[Any]] | None = None,
                 closing: Mapping[str, Step] | None = None,
                 on_log_replaced: Step | None = None) -> Lifespan:
        """Start: the ``topics`` exist, the store answers, the accounts' and each ``prepare``
        step's indexes are made; then ``around`` (a server of the service's own) is entered,
        the consumers start and ``loops`` (with the metrics refresh) run beside the API. Stop:
        loops and consumers end, ``around`` is left, then each ``closing`` step (named for the
        log), the store client and the trace export end, each bounded."""
        settings = self.settings

        @contextlib.asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            await ensure_topics(settings, list(topics))
            await mongo.wait_until_reachable(self.db)
            for step in (self.auth.accounts.ensure_indexes, *prepare):
                await step()
            async with (around() if around is not None else contextlib.nullcontext()), \
                    consuming(self.broker, settings, on_log_replaced=on_log_replaced), \
                    background(*loops, lambda: self.metrics.refresh_forever(settings),
                               within=settings.loops_stop_seconds):
                yield
            for what, close in (closing or {}).items():
                await finish_within(close(), settings.store_close_seconds, what)
            await finish_within(self.client.close(), settings.store_close_seconds,
                                "the store client's close")
            if self.tracing is not None:  # sends the spans still buffered
                await finish_within(self.tracing.shutdown(), settings.store_close_seconds,
                                    "the trace export")

        return lifespan

    def app(self, *, title: str, description: str, lifespan: Lifespan,
            routers: Sequence[APIRouter], checks: Mapping[str, ReadinessCheck] | None = None,
            uploads: Callable[[str, str], bool] | None = None) -> FastAPI:
        """The service's API behind its sign-in guard, with ``/healthz``, ``/readyz`` (the
        broker, the consumers, the store and ``checks``), ``/metrics`` and ``/docs``;
        ``uploads``: the requests carrying files (``install_abuse_limits``)."""
        app = FastAPI(title=title, version="1", lifespan=lifespan, description=description,
                      dependencies=[guard(self.name)], **NO_CDN_DOCS)
        document_credentials(app)
        app.state.auth = self.auth
        app.add_exception_handler(RequestValidationError, validation_error)
        install_abuse_limits(app, self.settings, uploads=uploads)
        for router in routers:
            app.include_router(router)
        add_local_docs(app)
        add_health(app, self.settings, self.name, self.db, broker=self.broker, checks=checks)
        if self.tracing is not None:
            instrument_http(app, self.tracing)
        add_store_errors(app, self.settings)
        install_metrics(app, self.metrics)
        return app


def serve_on(app: FastAPI, settings: Settings, port: int) -> None:
    """Serve ``app`` on ``port`` of the settings' host until stopped (``runtime.serve``)."""
    serve(app, settings.http_host, port, shutdown_seconds=settings.http_shutdown_seconds)
