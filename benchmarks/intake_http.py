"""Intake's HTTP layer alone: CPU per `POST /v1/complaints` through intake's own app (its
middlewares, the sign-in guard, the rate limit, body validation, the route, the answer), called
as ASGI in-process, with no server, store or broker: the grouped write answers at once with the
stored document, the publish queue and the API-key lookup are stubs.

    python -m benchmarks.intake_http --requests 1000 --rounds 15

On a shared machine the end-to-end rates of `benchmarks.pipeline` swing by a third between
runs; this figure (CPU time, the quickest round) moves by a few per cent, so a change of the
route's or the stack's cost shows here when it cannot show there. What it leaves out: uvicorn
(parsing, writing the answer, the access line), the store and Kafka clients, the event loop.
"""

import argparse
import asyncio
import json
import os
import time
from typing import Any

from starlette.types import Message

from services.intake.app import create_app
from services.intake.flows import Submission
from shared.logs import configure_logging
from shared.mongo import Document
from shared.permissions import Principal
from shared.settings import Settings

BODY = json.dumps({"channel": "web", "external_id": "http-5b8a4f8e-7f1e-4c7b-9a53-0a4a1b7c6d2e",
                   "text": "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut"}).encode()
KEY = "k" * 43  # a channel key's length (token_urlsafe(32))


class StoredAtOnce:
    """In place of ``flows.Grouped``: the submission as stored, without a store."""

    async def store(self, submission: Submission) -> Document:
        return {"_id": submission.key, "ticket_id": "BKL-261202-ABCDEFGH", "published": True,
                "fingerprint": submission.fingerprint, "duplicate": False,
                "event": {"data": {"channel": "web"}}}


def intake_app(*, rate_limits: bool) -> Any:
    settings = Settings(auth_secret="b" * 48, rate_limits_enabled=rate_limits)
    app = create_app(settings)
    app.state.grouped = StoredAtOnce()
    app.state.intake.publish_soon = lambda docs: None

    async def from_key(key: str) -> Principal:  # the authenticator's cached answer
        return Principal("channel", "web", settings.tenant, "channel")

    app.state.auth.from_key = from_key
    return app


async def post(app: Any) -> int:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/v1/complaints",
             "raw_path": b"/v1/complaints", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1:8080"), (b"x-api-key", KEY.encode()),
                         (b"content-type", b"application/json"),
                         (b"content-length", str(len(BODY)).encode())],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080), "state": {}}
    status = 0

    async def receive() -> Message:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(scope, receive, send)
    return status


async def rounds(app: Any, requests: int, count: int) -> list[float]:
    """CPU microseconds per request, one figure per round."""
    for _ in range(300):  # warm: first-use caches, lazily built validators
        if (status := await post(app)) != 202:
            raise RuntimeError(f"POST answered {status}")
    figures = []
    for _ in range(count):
        started = time.process_time()
        for _ in range(requests):
            await post(app)
        figures.append((time.process_time() - started) / requests * 1e6)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--rate-limits", action="store_true",
                        help="count each post against the limits (the pipeline benchmark turns "
                             "them off: one address posts everything)")
    args = parser.parse_args()
    with open(os.devnull, "w") as quiet:
        configure_logging("INFO", "json", stream=quiet)
        app = intake_app(rate_limits=args.rate_limits)
        figures = sorted(asyncio.run(rounds(app, args.requests, args.rounds)))
    print(f"intake POST /v1/complaints in-process: quickest round {figures[0]:.1f} us CPU per "
          f"request, median {figures[len(figures) // 2]:.1f} us ({args.rounds} rounds of "
          f"{args.requests}; no server, store or broker)")


if __name__ == "__main__":
    main()
