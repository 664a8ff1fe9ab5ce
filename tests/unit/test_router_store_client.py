"""The router opens one store client and closes it on stop (it once opened two and closed
only the second, leaking the first's connection pool for the life of the process)."""

from typing import Any

import pytest

from services.router import app as router_app
from shared import mongo
from shared.settings import Settings


def test_the_router_opens_one_store_client(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[Any] = []
    real_connect = mongo.connect

    def counting_connect(*args: Any, **kwargs: Any) -> Any:
        client = real_connect(*args, **kwargs)
        opened.append(client)
        return client

    monkeypatch.setattr(mongo, "connect", counting_connect)  # the module the router calls
    # Nothing is contacted while the app is built: clients connect lazily.
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:9", mongodb_url="mongodb://127.0.0.1:9",
                        auth_secret="s" * 48)
    router_app.create_app(settings)
    assert len(opened) == 1
