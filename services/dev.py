"""``disposisi dev``: the whole system on one machine, on the embedded broker and store.

It supervises the broker, the store and the services (intake, router, SLA, notifications,
chat, console), restarting any that
crashes; prints where everything listens once every service answers ready; and on Ctrl-C or
SIGTERM stops them in an order that loses nothing it holds: intake after the broker's
submissions are consumed, the broker once router and SLA drained it, then router and SLA,
then the store.
"""

import asyncio
import functools
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from services.dev_accounts import chat_env, console_env, mailbox_env, prepare_dev_accounts
from services.drain import ALL_GROUPS, DrainResult, wait_drained
from services.router.rulebook import load_rulebook
from services.sla.policy import load_policy
from services.supervision import Supervised, Supervisor, say
from shared.contracts import Topics
from shared.embedded import (
    LOOPBACK,
    DataDirLock,
    EmbeddedServerError,
    die_with_parent,
    port_is_open,
    start_kafka,
    start_store,
)
from shared.kafka import ensure_topics
from shared.runtime import STOP_ACCEPTING_SIGNAL
from shared.settings import Settings, redact_url
from shared.tenants import load_tenants

SERVICES = ("intake", "router", "sla", "notify", "chat", "mailbox", "lapor")
CONSOLE = "console"  # pages only: holds nothing, so it starts last and stops first
KAFKA, MONGODB = "kafka", "mongodb"
TICK_SECONDS = 0.1


@dataclass
class DevOptions:
    data_dir: Path
    kafka_port: int = 9092
    mongo_port: int = 27017
    intake_port: int = 8080
    sla_port: int = 8081
    router_port: int = 8082
    console_port: int = 8083
    notify_port: int = 8084
    chat_port: int = 8085
    mailbox_port: int = 8086
    mailbox_smtp_port: int = 2525
    lapor_port: int = 8087

    def service_ports(self) -> dict[str, int]:
        """The HTTP port of each service (its /readyz)."""
        return {"intake": self.intake_port, "router": self.router_port, "sla": self.sla_port,
                CONSOLE: self.console_port, "notify": self.notify_port, "chat": self.chat_port,
                "mailbox": self.mailbox_port, "lapor": self.lapor_port}


def service_command(name: str) -> list[str]:
    return [sys.executable, "-m", "services.cli", name]


def launch_service(name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    # A session of its own: Ctrl-C in a terminal signals the whole foreground process group,
    # and the supervisor, not the terminal, decides when and in which order services stop.
    return subprocess.Popen(service_command(name), env=env, stdin=subprocess.DEVNULL,
                            preexec_fn=die_with_parent, start_new_session=True)


def start_servers(options: DevOptions, supervisor: Supervisor, topics: list[str]) -> dict[str, str]:
    """Start the embedded store and broker unless the environment names external ones; return
    the settings that point the services at them. The broker's topics are created the moment
    it listens (see ``create_topics_now``)."""
    env: dict[str, str] = {}
    dropped = drop_credentials(os.environ, kafka="DISPOSISI_KAFKA_BOOTSTRAP_SERVERS" not in os.environ,
                               mongodb="DISPOSISI_MONGODB_URL" not in os.environ)
    if dropped:
        say(f"the embedded servers have no users or TLS; ignoring {', '.join(dropped)}")
    if "DISPOSISI_MONGODB_URL" not in os.environ:
        supervisor.start(Supervised(
            MONGODB, lambda: start_store(options.mongo_port, options.data_dir).process))
        env["DISPOSISI_MONGODB_URL"] = f"mongodb://{LOOPBACK}:{options.mongo_port}/?directConnection=true"
    if "DISPOSISI_KAFKA_BOOTSTRAP_SERVERS" not in os.environ:
        bootstrap = f"{LOOPBACK}:{options.kafka_port}"
        create = functools.partial(create_topics_now, bootstrap, topics)
        supervisor.start(Supervised(
            KAFKA, lambda: start_kafka(options.kafka_port, options.data_dir).process,
            after_restart=create))
        create()
        env["DISPOSISI_KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    return env


# Settings meant for an external broker or store (shared/credentials.py), which the embedded
# ones on loopback do not take.
KAFKA_CREDENTIALS = ("DISPOSISI_KAFKA_SECURITY_PROTOCOL", "DISPOSISI_KAFKA_SASL_", "DISPOSISI_KAFKA_SSL_")
MONGODB_CREDENTIALS = ("DISPOSISI_MONGODB_USERNAME", "DISPOSISI_MONGODB_PASSWORD",
                       "DISPOSISI_MONGODB_AUTH_SOURCE", "DISPOSISI_MONGODB_TLS")


def drop_credentials(env: MutableMapping[str, str], *, kafka: bool, mongodb: bool) -> list[str]:
    """Remove from ``env`` the credential settings of the servers dev runs embedded, so that
    neither dev nor the services it starts offer them there; returns the names removed."""
    prefixes = (KAFKA_CREDENTIALS if kafka else ()) + (MONGODB_CREDENTIALS if mongodb else ())
    dropped = sorted(name for name in env if prefixes and name.startswith(prefixes))
    for name in dropped:
        del env[name]
    return dropped


def service_env(options: DevOptions, server_env: dict[str, str]) -> dict[str, str]:
    return {**server_env,
            "DISPOSISI_INTAKE_PORT": str(options.intake_port),
            "DISPOSISI_SLA_PORT": str(options.sla_port),
            "DISPOSISI_ROUTER_PORT": str(options.router_port),
            "DISPOSISI_CONSOLE_PORT": str(options.console_port),
            "DISPOSISI_NOTIFY_PORT": str(options.notify_port),
            "DISPOSISI_CHAT_PORT": str(options.chat_port),
            "DISPOSISI_CHAT_INTAKE_URL": f"http://{LOOPBACK}:{options.intake_port}",
            "DISPOSISI_MAILBOX_PORT": str(options.mailbox_port),
            "DISPOSISI_MAILBOX_SMTP_PORT": str(options.mailbox_smtp_port),
            "DISPOSISI_MAILBOX_INTAKE_URL": f"http://{LOOPBACK}:{options.intake_port}",
            "DISPOSISI_LAPOR_PORT": str(options.lapor_port),
            "DISPOSISI_LAPOR_INTAKE_URL": f"http://{LOOPBACK}:{options.intake_port}",
            "DISPOSISI_CONSOLE_INTAKE_URL": f"http://{LOOPBACK}:{options.intake_port}",
            "DISPOSISI_CONSOLE_SLA_URL": f"http://{LOOPBACK}:{options.sla_port}",
            "DISPOSISI_CONSOLE_NOTIFY_URL": f"http://{LOOPBACK}:{options.notify_port}",
            # readable lines in a terminal; production's default is JSON
            "DISPOSISI_LOG_FORMAT": os.environ.get("DISPOSISI_LOG_FORMAT", "console")}


def topic_names(settings: Settings) -> list[str]:
    tenants = load_tenants(settings)
    queues: list[str] = []
    for tenant in tenants:
        load_policy(tenant.policy)  # refuse to start on a broken policy, before any child
        queues += [tenants.agency_topic(tenant.id, c) for c in load_rulebook(tenant.rulebook).codes]
    return [*Topics.fixed(), *queues]


async def create_topics(settings: Settings) -> None:
    await ensure_topics(settings, topic_names(settings))


def create_topics_now(bootstrap: str, topics: list[str]) -> None:
    """The embedded broker keeps topics in memory: a (re)started one has none. Tansu
    acknowledges records sent to a topic that does not exist yet and they are not read back,
    and clients that waited for the broker send the moment it listens; so this runs right
    then, with the names computed once at start-up."""
    settings = Settings(kafka_bootstrap_servers=bootstrap)
    asyncio.run(ensure_topics(settings, topics))
    say(f"topics created on the broker at {bootstrap}")


class Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise Stop(signal.Signals(signum).name)


def check_service_ports(options: DevOptions) -> None:
    """Fail at once with the flag to change, instead of a service crash-looping on a busy port."""
    for name, port in {**options.service_ports(), "mailbox-smtp": options.mailbox_smtp_port}.items():
        if port_is_open(port):
            raise EmbeddedServerError(f"port {port} is already in use; choose another with "
                                      f"--{name}-port")


def run_dev(options: DevOptions) -> int:
    lock = DataDirLock(options.data_dir)
    lock.acquire()
    try:
        check_service_ports(options)
        return _run(options)
    finally:
        lock.release()


def _run(options: DevOptions) -> int:
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    supervisor = Supervisor(options.data_dir / "processes.json")
    settings: Settings | None = None
    try:
        topics = topic_names(Settings())
        os.environ.update(service_env(options, start_servers(options, supervisor, topics)))
        prepare_dev_accounts(options.data_dir)  # the signing key and, once, the demo accounts
        os.environ.update(console_env(options.data_dir))
        os.environ.update(chat_env(options.data_dir))
        os.environ.update(mailbox_env(options.data_dir))
        settings = Settings()  # the children inherit the same environment
        asyncio.run(ensure_topics(settings, topics))  # on an external broker: create if missing
        env = dict(os.environ)
        for name in (*SERVICES, CONSOLE):
            supervisor.start(Supervised(name, functools.partial(launch_service, name, env)))
        watch(supervisor, options, settings)
    except Stop as stop:
        say(f"{stop}, stopping")
    finally:
        stop_in_order(supervisor, settings)
    return 0


def watch(supervisor: Supervisor, options: DevOptions, settings: Settings) -> None:
    """Supervise until a signal; print the banner once every service answers ready."""
    started = time.monotonic()
    announced = warned = False
    next_probe = 0.0
    while True:
        supervisor.tick()
        now = time.monotonic()
        if not announced and now >= next_probe:
            waiting = services_not_ready(options)
            if not waiting:
                print_addresses(options, settings, supervisor)
                announced = True
            elif not warned and now - started > settings.dev_ready_timeout_seconds:
                say(f"not ready after {settings.dev_ready_timeout_seconds:.0f} s: "
                    + "; ".join(f"{name} ({why})" for name, why in waiting.items()))
                warned = True
            next_probe = now + 0.5
        time.sleep(TICK_SECONDS)


def services_not_ready(options: DevOptions) -> dict[str, str]:
    """Each service that does not answer ready yet, with why."""
    waiting: dict[str, str] = {}
    for name, port in options.service_ports().items():
        why = _not_ready(f"http://{LOOPBACK}:{port}")
        if why is not None:
            waiting[name] = why
    return waiting


def _not_ready(base: str) -> str | None:
    # /readyz checks the service's dependencies; a service without it yet falls back to /healthz.
    for path in ("/readyz", "/healthz"):
        try:
            with urllib.request.urlopen(base + path, timeout=2.0) as answer:
                return None if answer.status == 200 else f"{path} answered {answer.status}"
        except urllib.error.HTTPError as error:
            if error.code == 404 and path == "/readyz":
                continue
            return f"{path} answered {error.code}"
        except OSError as error:
            return f"not answering ({getattr(error, 'reason', error)})"
    return "no health endpoint"


# What `stop_in_order` waits for: every consumer group at its topics' ends, intake's outbox
# empty. Replaceable in tests of the order.
Drain = Callable[[Settings, Mapping[str, Sequence[str]], float], DrainResult]


def drain_broker(settings: Settings, groups: Mapping[str, Sequence[str]], deadline: float) -> DrainResult:
    return asyncio.run(wait_drained(settings, groups, deadline=deadline, outbox=True))


def stop_in_order(supervisor: Supervisor, settings: Settings | None,
                  drain: Drain = drain_broker) -> None:
    """First the services stop taking work over HTTP while their consumers go on; once the
    consumers drained the broker, it is killed at once; then the services, then the store. A
    second signal skips the draining that is left.

    Why this order: channel adapters publish submissions straight to the broker, and the
    embedded broker keeps them in memory only. Intake therefore consumes until the broker is
    gone, and the broker is killed (not terminated) the moment the drain is seen complete: a
    memory-only broker has nothing to flush, and each second it lived on it would acknowledge
    submissions nobody consumes any more (19 lost in one fault-suite run when intake was
    stopped first). What HTTP accepted is in the store, published by the outbox or, failing
    that, by the reconciliation."""
    drain_first = settings is not None and KAFKA in supervisor.processes and all(
        name in supervisor.processes for name in SERVICES)
    supervisor.stop(CONSOLE)
    try:
        if drain_first:
            assert settings is not None
            started = time.monotonic()
            supervisor.send_signal(STOP_ACCEPTING_SIGNAL, *SERVICES)
            result = drain(settings, ALL_GROUPS, started + settings.drain_timeout_seconds)
            supervisor.stop(KAFKA, signum=signal.SIGKILL)
            _report("the consumers", result)
            say(f"drained in {time.monotonic() - started:.1f} s")
    except Stop:
        say("second signal: stopping without draining")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):  # stopping now; let nothing cut it short
            signal.signal(signum, signal.SIG_IGN)
        supervisor.stop(KAFKA, signum=signal.SIGKILL)
        supervisor.stop(*SERVICES)
        supervisor.stop(MONGODB)
        supervisor.stop_all()


def _report(what: str, result: DrainResult) -> None:
    if not result.drained:
        say(f"{what} did not drain in time: {result.describe()}")


def print_addresses(options: DevOptions, settings: Settings, supervisor: Supervisor) -> None:
    embedded_kafka = KAFKA in supervisor.processes
    embedded_mongo = MONGODB in supervisor.processes
    lines = [
        "Disposisi is running (Ctrl-C stops everything):",
        f"  kafka     {settings.kafka_bootstrap_servers}"
        f"{'  (embedded tansu)' if embedded_kafka else '  (external)'}",
        f"  mongodb   {redact_url(settings.mongodb_url)}"
        f"{'  (embedded ' + settings.embedded_store + ')' if embedded_mongo else '  (external)'}",
        f"  intake    http://{LOOPBACK}:{options.intake_port}  (POST /v1/complaints, /docs)",
        f"  sla       http://{LOOPBACK}:{options.sla_port}"
        "  (/v1/tickets/{id}, /v1/reports/compliance, /docs)",
        f"  router    http://{LOOPBACK}:{options.router_port}  (/v1/rulebook, /docs)",
        f"  console   http://{LOOPBACK}:{options.console_port}  (/login, /inbox, /submit, /track)",
        f"  notify    http://{LOOPBACK}:{options.notify_port}  (/v1/deliveries, /docs; "
        f"directory: {settings.notify_directory or 'none, nobody is notified'})",
        f"  chat      http://{LOOPBACK}:{options.chat_port}  (/webhooks/whatsapp, /webhooks/sms)",
        f"  mailbox   http://{LOOPBACK}:{options.mailbox_port}  (SMTP {LOOPBACK}:"
        f"{options.mailbox_smtp_port} for {', '.join(settings.mailbox_addresses) or 'no address'}; "
        f"replies via {settings.mailbox_relay_host}:{settings.mailbox_relay_port})",
        f"  lapor     http://{LOOPBACK}:{options.lapor_port}  (/v1/lapor/updates, /docs; "
        f"disposisi lapor import/export)",
        f"  data      {options.data_dir.resolve()}",
    ]
    print("\n".join(lines), flush=True)
