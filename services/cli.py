"""The ``disposisi`` command."""

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from services import admin_cli
from services.lapor import cli as lapor_cli
from services.router import cli as router_cli
from services.router.rulebook import RulebookError
from services.sla.cli import add_calendar_commands, run_calendar
from services.sla.policy import PolicyError
from services.tail import add_tail_command, run_tail
from shared.audit_cli import add_audit_commands, run_audit
from shared.embedded import EmbeddedServerError
from shared.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="disposisi", description="Disposisi complaint routing")
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev", help="run everything on the embedded broker and store")
    dev.add_argument("--data-dir", type=Path, default=Path(".disposisi"))
    dev.add_argument("--kafka-port", type=int, default=9092)
    dev.add_argument("--mongo-port", type=int, default=27017)
    dev.add_argument("--intake-port", type=int, default=8080)
    dev.add_argument("--sla-port", type=int, default=8081)
    dev.add_argument("--router-port", type=int, default=8082)
    dev.add_argument("--console-port", type=int, default=8083)
    dev.add_argument("--notify-port", type=int, default=8084)
    dev.add_argument("--chat-port", type=int, default=8085)
    dev.add_argument("--mailbox-port", type=int, default=8086)
    dev.add_argument("--mailbox-smtp-port", type=int, default=2525)
    dev.add_argument("--lapor-port", type=int, default=8087)
    for name in ("intake", "router", "sla", "console", "notify", "chat", "mailbox"):
        commands.add_parser(name, help=f"run the {name} service alone (settings from DISPOSISI_*)")
    commands.add_parser("status", help="readiness of every service, consumer lag, outbox and "
                                       "reconciliation backlogs (exit 1 if anything is not ready)")
    spec = commands.add_parser("asyncapi", help="print the AsyncAPI document of all topics")
    spec.add_argument("--format", choices=["yaml", "json"], default="yaml")
    router_cli.add_commands(commands)
    add_calendar_commands(commands)
    admin_cli.add_commands(commands)
    add_audit_commands(commands)
    add_tail_command(commands)
    lapor_cli.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except (RulebookError, PolicyError, EmbeddedServerError, ValidationError) as error:
        print(f"disposisi: {error}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "dev":
        from services.dev import DevOptions, run_dev

        return run_dev(DevOptions(args.data_dir, args.kafka_port, args.mongo_port,
                                  args.intake_port, args.sla_port, args.router_port,
                                  args.console_port, args.notify_port, args.chat_port,
                                  args.mailbox_port, args.mailbox_smtp_port, args.lapor_port))
    if args.command == "status":
        from services.status import run_status

        return run_status(Settings())
    if args.command == "asyncapi":
        from shared.asyncapi import document

        print(document(args.format))
        return 0
    if args.command in ("route", "rules"):
        return router_cli.run(args)
    if args.command == "calendar":
        return run_calendar(args)
    if args.command == "admin":
        return admin_cli.run(args)
    if args.command == "audit":
        return run_audit(args)
    if args.command == "tail":
        return run_tail(args)
    if args.command == "lapor" and getattr(args, "lapor_command", None):
        return lapor_cli.run(args)
    return _run_service(args.command)


def _run_service(name: str) -> int:
    settings = Settings()
    if name == "intake":
        from services.intake.app import run
    elif name == "router":
        from services.router.app import run
    elif name == "console":
        from services.console.app import run
    elif name == "notify":
        from services.notify.app import run
    elif name == "chat":
        from services.chat.app import run
    elif name == "mailbox":
        from services.mailbox.app import run
    elif name == "lapor":
        from services.lapor.app import run
    else:
        from services.sla.app import run
    run(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
