"""``disposisi dev``: the whole system on one machine, on the embedded broker and store."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from services.router.rulebook import load_rulebook
from services.sla.policy import load_policy
from shared.contracts import Topics
from shared.embedded import (
    EmbeddedServer,
    EmbeddedServerError,
    die_with_parent,
    port_is_open,
    start_kafka,
    start_store,
)
from shared.kafka import ensure_topics
from shared.settings import Settings

SERVICES = ("intake", "router", "sla")


@dataclass
class DevOptions:
    data_dir: Path
    kafka_port: int = 9092
    mongo_port: int = 27017
    intake_port: int = 8080
    sla_port: int = 8081
    router_port: int = 8082


@dataclass
class Child:
    """A service process the supervisor keeps running until it is told to stop."""

    name: str
    command: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, env=self.env, stdin=subprocess.DEVNULL,
                                        preexec_fn=die_with_parent)

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def service_command(name: str) -> list[str]:
    return [sys.executable, "-m", "services.cli", name]


def start_servers(options: DevOptions) -> tuple[dict[str, str], list[EmbeddedServer]]:
    """Start the embedded broker and store unless the environment names external ones."""
    env: dict[str, str] = {}
    servers: list[EmbeddedServer] = []
    if "DISPOSISI_KAFKA_BOOTSTRAP_SERVERS" not in os.environ:
        kafka = start_kafka(options.kafka_port, options.data_dir)
        servers.append(kafka)
        env["DISPOSISI_KAFKA_BOOTSTRAP_SERVERS"] = kafka.address
    if "DISPOSISI_MONGODB_URL" not in os.environ:
        mongo = start_store(options.mongo_port, options.data_dir)
        servers.append(mongo)
        env["DISPOSISI_MONGODB_URL"] = f"mongodb://{mongo.address}/?directConnection=true"
    return env, servers


def service_env(options: DevOptions, server_env: dict[str, str]) -> dict[str, str]:
    return {**server_env,
            "DISPOSISI_INTAKE_PORT": str(options.intake_port),
            "DISPOSISI_SLA_PORT": str(options.sla_port),
            "DISPOSISI_ROUTER_PORT": str(options.router_port)}


async def create_topics(settings: Settings) -> None:
    load_policy(settings.sla_policy)  # refuse to start on a broken policy, before any child
    codes = load_rulebook(settings.rulebook).codes
    await ensure_topics(settings, [*Topics.fixed(), *(Topics.agency(c) for c in codes)])


class Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise Stop(signal.Signals(signum).name)


def supervise(children: list[Child]) -> None:
    """Keep children running (restart a crashed one) until SIGINT or SIGTERM."""
    while True:
        time.sleep(0.5)
        for child in children:
            if child.exited():
                assert child.process is not None
                child.restarts += 1
                print(f"disposisi dev: {child.name} exited with {child.process.returncode}; "
                      f"restarting (restart #{child.restarts})", flush=True)
                time.sleep(min(5.0, 0.5 * child.restarts))
                child.start()


def check_service_ports(options: DevOptions) -> None:
    """Fail at once with the flag to change, instead of a service crash-looping on a busy port."""
    for flag, port in (("--intake-port", options.intake_port), ("--sla-port", options.sla_port),
                       ("--router-port", options.router_port)):
        if port_is_open(port):
            raise EmbeddedServerError(f"port {port} is already in use; choose another with {flag}")


def run_dev(options: DevOptions) -> int:
    check_service_ports(options)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    servers: list[EmbeddedServer] = []
    children: list[Child] = []
    try:
        server_env, servers = start_servers(options)
        os.environ.update(service_env(options, server_env))  # the children inherit these
        env = dict(os.environ)
        settings = Settings()
        asyncio.run(create_topics(settings))
        children = [Child(name, service_command(name), env) for name in SERVICES]
        for child in children:
            child.start()
        print_addresses(options, settings, servers)
        supervise(children)
    except Stop as stop:
        print(f"disposisi dev: {stop}, stopping", flush=True)
    finally:
        for child in children:
            child.stop()
        for server in reversed(servers):
            server.stop()
    return 0


def print_addresses(options: DevOptions, settings: Settings, servers: list[EmbeddedServer]) -> None:
    host = "127.0.0.1"
    kinds = {s.name: s.address for s in servers}
    lines = [
        "Disposisi is running (Ctrl-C stops everything):",
        f"  kafka     {settings.kafka_bootstrap_servers}"
        f"{'  (embedded tansu)' if any('kafka' in k for k in kinds) else '  (external)'}",
        f"  mongodb   {settings.mongodb_url}"
        + (f"  (embedded {settings.embedded_store})" if any("mongo" in k for k in kinds) else "  (external)"),
        f"  intake    http://{host}:{options.intake_port}  (POST /v1/complaints, /docs)",
        f"  sla       http://{host}:{options.sla_port}  (/v1/tickets/{{id}}, /v1/reports/compliance, /docs)",
        f"  router    http://{host}:{options.router_port}  (/v1/rulebook, /docs)",
        f"  data      {options.data_dir.resolve()}",
    ]
    print("\n".join(lines), flush=True)
