"""``disposisi audit verify|show``: check a tenant's audit chain, or read its latest entries,
from the configured store (DISPOSISI_MONGODB_URL, DISPOSISI_MONGODB_DATABASE)."""

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TextIO, TypeVar

from shared import mongo
from shared.audit import ChainCheck
from shared.audit_store import AuditLog
from shared.settings import Settings

T = TypeVar("T")


def add_audit_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    audit = commands.add_parser("audit", help="check or read the audit trail")
    actions = audit.add_subparsers(dest="audit_command", required=True)
    verify = actions.add_parser("verify", help="walk a tenant's hash chain; exit 1 at the first "
                                               "broken link")
    verify.add_argument("--tenant", help="tenant id (default: DISPOSISI_TENANT)")
    show = actions.add_parser("show", help="print a tenant's latest entries, oldest first")
    show.add_argument("--tenant", help="tenant id (default: DISPOSISI_TENANT)")
    show.add_argument("--ticket", help="only this ticket's entries")
    show.add_argument("--limit", type=int, default=50, help="how many entries (default 50)")
    show.add_argument("--json", action="store_true", help="one JSON object per line")


def run_audit(args: argparse.Namespace, settings: Settings | None = None,
              out: TextIO = sys.stdout) -> int:
    settings = settings or Settings()
    tenant = args.tenant or settings.tenant
    if args.audit_command == "verify":
        check = _with_log(settings, lambda log: log.verify(tenant))
        print(describe_check(tenant, check), file=out)
        return 0 if check.ok else 1
    if args.limit < 1:
        print("disposisi: --limit must be at least 1", file=sys.stderr)
        return 2
    entries = _with_log(settings, lambda log: log.latest(tenant, limit=args.limit,
                                                         ticket_id=args.ticket))
    for entry in entries:
        print(entry_json(entry) if args.json else entry_line(entry), file=out)
    return 0


def _with_log(settings: Settings,
                 use: Callable[[AuditLog], Coroutine[Any, Any, T]]) -> T:
    async def run() -> T:
        client = mongo.connect(settings)
        try:
            return await use(AuditLog(mongo.database(client, settings)))
        finally:
            await client.close()

    return asyncio.run(run())


def describe_check(tenant: str, check: ChainCheck) -> str:
    if check.broken is None:
        return (f"audit log of {tenant}: OK, {check.count} entries; head seq {check.head_seq}, "
                f"hash {check.head_hash}")
    return (f"audit log of {tenant}: BROKEN at {check.broken} "
            f"({check.count} entries before it verified)")


def entry_json(entry: dict[str, Any]) -> str:
    view = {k: v for k, v in entry.items() if k != "_id"}
    return json.dumps(view, default=str, ensure_ascii=False, sort_keys=True)


def entry_line(entry: dict[str, Any]) -> str:
    before, after = entry.get("before"), entry.get("after")
    change = ""
    if before is not None or after is not None:  # a creation has no "before" to show
        change = ("" if before is None else f" {_compact(before)}") + f" -> {_compact(after)}"
    request = f" request {entry['request_id']}" if entry.get("request_id") else ""
    return (f"#{entry.get('seq')} {entry.get('time')} {entry.get('action')} "
            f"{entry.get('ticket_id') or '-'} by {_who(entry.get('actor') or {})}{change}{request}")


def _who(actor: dict[str, Any]) -> str:
    """``petugas.dlh (person, officer, DLH)``; a channel's or service's key says its kind
    once: ``web (channel)``."""
    kind, role = actor.get("kind"), actor.get("role")
    details = [kind] if role == kind else [kind, role]
    if actor.get("agency"):
        details.append(actor["agency"])
    return f"{actor.get('name')} ({', '.join(str(d) for d in details)})"


def _compact(fields: object) -> str:
    return json.dumps(fields, default=str, ensure_ascii=False, separators=(",", ":"))
