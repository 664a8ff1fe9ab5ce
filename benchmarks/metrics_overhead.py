"""What the metrics cost on the hot paths, per event, in one process (no servers):

- an HTTP request through the metrics middleware, against the same minimal ASGI app without it;
- a store command seen by the command listener;
- a batch's routing decisions counted (per decision);
- a fired escalation notice counted (per notice);
- a scrape of a registry holding a realistic number of series.

    python -m benchmarks.metrics_overhead --n 20000
"""

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

from shared.contracts import Topics
from shared.metrics import FiredNotice, HttpMetrics, Metrics


async def _asgi_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _per_call(n: int, call: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    for _ in range(n):
        await call()
    return (time.perf_counter() - started) / n * 1e6


async def run(n: int) -> dict[str, float]:
    metrics = Metrics("bench")
    wrapped = HttpMetrics(_asgi_app, metrics.http_seconds)
    route = SimpleNamespace(path="/v1/complaints")
    scope = {"type": "http", "method": "POST", "route": route}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    async def send(message: Any) -> None:
        return None

    plain = await _per_call(n, lambda: _asgi_app(scope, receive, send))
    measured = await _per_call(n, lambda: wrapped(scope, receive, send))
    listener = metrics.store_listener()
    event = SimpleNamespace(command_name="insert", duration_micros=800)
    started = time.perf_counter()
    for _ in range(n):
        listener.succeeded(event)  # type: ignore[arg-type]
    store = (time.perf_counter() - started) / n * 1e6
    data = SimpleNamespace(agency="DLH", routing=SimpleNamespace(confidence=0.9))
    routed = [SimpleNamespace(topic=Topics.ROUTED, event=SimpleNamespace(tenant="t", data=data)),
              SimpleNamespace(topic="disposisi.agency.DLH", event=None)]
    started = time.perf_counter()
    for _ in range(n):
        metrics.routing.routed(routed)  # type: ignore[arg-type]
    routing = (time.perf_counter() - started) / n * 1e6
    notices = [FiredNotice("response", 2, True, 0.4)]
    started = time.perf_counter()
    for _ in range(n):
        metrics.sla.fired(notices)
    fired = (time.perf_counter() - started) / n * 1e6
    for agency in range(40):  # a city's agencies by four clock states, 60 routes, 10 outboxes
        for state in ("on_time", "due_soon", "overdue", "paused"):
            metrics.sla.open_tickets.labels("t", f"A{agency}", state).set(agency)
    started = time.perf_counter()
    scrapes = max(1, n // 100)
    for _ in range(scrapes):
        body = metrics.exposition()
    scrape = (time.perf_counter() - started) / scrapes * 1e3
    return {"http_overhead_us": measured - plain, "store_command_us": store,
            "routing_decision_us": routing, "fired_notice_us": fired, "scrape_ms": scrape,
            "scrape_bytes": float(len(body))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    figures = asyncio.run(run(parser.parse_args().n))
    for name, value in figures.items():
        print(f"{name:>22}: {value:.2f}")


if __name__ == "__main__":
    main()
