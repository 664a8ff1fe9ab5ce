"""What every service process shares: logging, HTTP error shapes, health, background loops."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pymongo.asynchronous.database import AsyncDatabase

from shared.kafka import kafka_reachable
from shared.mongo import Document
from shared.settings import Settings

log = logging.getLogger(__name__)


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


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


def add_health(app: FastAPI, settings: Settings, service: str,
               db: AsyncDatabase[Document] | None = None) -> None:
    @app.get("/healthz", tags=["health"])
    async def healthz() -> JSONResponse:
        """200 when this service reaches Kafka (and MongoDB, if it uses it), else 503 saying
        which failed."""
        checks = {"kafka": await kafka_reachable(settings)}
        if db is not None:
            checks["mongodb"] = await _mongo_ok(db)
        ok = all(checks.values())
        return JSONResponse(status_code=200 if ok else 503,
                            content={"service": service, "ok": ok, "checks": checks})

    _ = healthz


async def _mongo_ok(db: AsyncDatabase[Document]) -> bool:
    try:
        await asyncio.wait_for(db.command("ping"), 2.0)
        return True
    except Exception:
        return False


@contextlib.asynccontextmanager
async def background(*loops: Callable[[], Coroutine[Any, Any, None]]) -> AsyncIterator[None]:
    """Run loops beside the service; cancel them on shutdown."""
    tasks = [asyncio.create_task(loop()) for loop in loops]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def serve(app: FastAPI, host: str, port: int) -> None:
    configure_logging()
    uvicorn.run(app, host=host, port=port, log_level="info", lifespan="on")


async def every(seconds: float, step: Callable[[], Awaitable[Any]], name: str) -> None:
    """Call ``step`` forever; a failing step is logged and tried again next turn."""
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("%s failed: %s", name, error)
        await asyncio.sleep(seconds)
