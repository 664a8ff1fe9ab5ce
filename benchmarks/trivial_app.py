"""A trivial endpoint on intake's HTTP stack (FastAPI served by ``shared.runtime.serve``): the
ceiling the pipeline benchmark compares accepted submissions with.

    python -m benchmarks.trivial_app PORT
"""

import sys
from typing import Any

from fastapi import FastAPI, status

from shared.runtime import NO_NATIVE_TELEMETRY, serve


def create_app() -> FastAPI:
    app = FastAPI(title="trivial", **NO_NATIVE_TELEMETRY)  # as intake's

    @app.post("/v1/complaints", status_code=status.HTTP_202_ACCEPTED)
    async def accept(body: dict[str, Any]) -> dict[str, str]:
        return {"ticket_id": "TRIVIAL", "status": "received"}

    _ = accept
    return app


if __name__ == "__main__":
    serve(create_app(), "127.0.0.1", int(sys.argv[1]))
