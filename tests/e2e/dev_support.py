"""`disposisi dev` as a user runs it: a real process on free ports and a data directory."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from shared.embedded import free_port
from tests.conftest import DEMO_POLICY
from tests.e2e.support import wait_healthy

BANNER = "Disposisi is running"


class DevSystem:
    def __init__(self, data_dir: Path, log_path: Path, **env_overrides: str) -> None:
        self.data_dir = data_dir
        self.ports = {name: free_port() for name in ("kafka", "mongo", "intake", "sla", "router",
                                                            "console", "notify", "chat", "mailbox",
                                                            "mailbox-smtp", "lapor")}
        env = {k: v for k, v in os.environ.items() if not k.startswith("DISPOSISI_")}
        env["DISPOSISI_SLA_POLICY"] = str(DEMO_POLICY)
        # no model fit on the packaged training corpus at every start of a test system (the
        # second opinion is tested where a test gives it examples)
        env["DISPOSISI_SECOND_OPINION_TRAINING"] = "[]"
        for name, value in os.environ.items():  # testing against real servers: dev must use them
            if name.startswith("DISPOSISI_KAFKA_") or name == "DISPOSISI_MONGODB_URL":
                env[name] = value
        env.update(env_overrides)
        self.env = env
        self.log_path = log_path
        self.log = log_path.open("ab")
        self.process = subprocess.Popen(self.command(self.ports), env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        self.intake = f"http://127.0.0.1:{self.ports['intake']}"
        self.sla = f"http://127.0.0.1:{self.ports['sla']}"
        self.router = f"http://127.0.0.1:{self.ports['router']}"
        self.console = f"http://127.0.0.1:{self.ports['console']}"
        self.chat = f"http://127.0.0.1:{self.ports['chat']}"
        self.lapor = f"http://127.0.0.1:{self.ports['lapor']}"
        self.kafka = os.environ.get("DISPOSISI_KAFKA_BOOTSTRAP_SERVERS",
                                    f"127.0.0.1:{self.ports['kafka']}")
        self.mongodb_url = os.environ.get(
            "DISPOSISI_MONGODB_URL", f"mongodb://127.0.0.1:{self.ports['mongo']}/?directConnection=true")

    def command(self, ports: dict[str, int]) -> list[str]:
        flags = [f"--{name}-port={port}" for name, port in ports.items()]
        return [sys.executable, "-m", "services.cli", "dev", f"--data-dir={self.data_dir}", *flags]

    def wait_ready(self) -> None:
        for url in (self.intake, self.sla, self.router, self.console, self.chat, self.lapor):
            wait_healthy(url, self.process)

    def credentials(self) -> dict[str, Any]:
        """What `disposisi dev` wrote for the demo tenant on its first start."""
        found: dict[str, Any] = json.loads((self.data_dir / "dev-credentials.json").read_text())
        return found

    def channel_headers(self) -> dict[str, str]:
        return {"X-API-Key": self.credentials()["api_keys"]["web"]}

    async def sign_in(self, http: httpx.AsyncClient, username: str) -> dict[str, str]:
        """Sign in as a demo user with the OAuth2 password form; the bearer header."""
        password = self.credentials()["users"][username]["password"]
        answer = await http.post(f"{self.sla}/v1/auth/token",
                                 data={"username": username, "password": password})
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def output_tail(self, lines: int = 80) -> str:
        """The log's last lines: where a failed test's server-side traceback is."""
        self.log.flush()
        return "\n".join(self.output().splitlines()[-lines:])

    def wait_for_output(self, text: str, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.process.poll() is not None:
                raise RuntimeError(f"disposisi dev exited with {self.process.returncode} before "
                                   f"printing {text!r}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"disposisi dev did not print {text!r} within {timeout:.0f} s")
            time.sleep(0.2)

    def pids(self) -> dict[str, int]:
        pids: dict[str, int] = json.loads((self.data_dir / "processes.json").read_text())
        return pids
