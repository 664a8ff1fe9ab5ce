"""``disposisi admin``: users, API keys and the permission table, against the configured store
(``DISPOSISI_MONGODB_URL``, ``DISPOSISI_MONGODB_DATABASE``).

Passwords and keys are printed once, when made: only their hashes are stored. Every change
(a user or key created or revoked) is appended to its tenant's audit log as ``user_change`` /
``key_change``, by the OS user running the command; the entry holds names, roles and key
ids, never a password or a key.
"""

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from shared import mongo
from shared.accounts import (
    AccountError,
    AccountStore,
    ApiKeyDoc,
    KeyKind,
    Role,
    UserDoc,
    generate_password,
)
from shared.audit import Actor, AuditAction, AuditRecord, Fields
from shared.audit_store import AuditLog
from shared.contracts import Channel
from shared.permissions import markdown_table
from shared.settings import Settings

CLI_ROLE = "admin-cli"  # the audit role of whoever runs these commands


def add_commands(commands: Any) -> None:
    admin = commands.add_parser("admin", help="users, API keys and permissions (on the configured store)")
    sub = admin.add_subparsers(dest="admin_command", required=True)
    user = sub.add_parser("create-user", help="create a user; prints a generated password once")
    user.add_argument("--tenant", required=True)
    user.add_argument("--username", required=True)
    user.add_argument("--role", required=True, choices=[r.value for r in Role])
    user.add_argument("--agency", help="agency code (officer and agency_head only)")
    user.add_argument("--password-stdin", action="store_true",
                      help="read the password from the first line of stdin instead")
    key = sub.add_parser("create-api-key", help="create a channel's (or a service's) key; prints it once")
    key.add_argument("--tenant", required=True)
    who = key.add_mutually_exclusive_group(required=True)
    who.add_argument("--channel", choices=[c.value for c in Channel])
    who.add_argument("--service", help="a Disposisi service's own key (for service-to-service HTTP)")
    revoke = sub.add_parser("revoke", help="revoke a user or an API key at once")
    target = revoke.add_mutually_exclusive_group(required=True)
    target.add_argument("--username")
    target.add_argument("--key-id")
    listing = sub.add_parser("users", help="list users and API keys (never secrets)")
    listing.add_argument("--tenant")
    sub.add_parser("permissions", help="print the permission table as Markdown")


class AuditFailed(RuntimeError):
    """The change was made but its audit entry could not be appended."""


@dataclass(frozen=True)
class Admin:
    """The stores a command changes, and who is running it."""

    accounts: AccountStore
    audit: AuditLog
    actor: Actor

    async def record(self, tenant: str, action: AuditAction, key: str, *,
                     before: Fields | None, after: Fields) -> None:
        try:
            await self.audit.append([AuditRecord(tenant=tenant, key=key, action=action,
                                                 actor=self.actor, before=before, after=after)])
        except Exception as error:  # the store died after the change: say so, never hide it
            raise AuditFailed(f"the change was made, but the audit log could not record it: "
                              f"{error}") from error


Command = Callable[[Admin, argparse.Namespace], Awaitable[None]]


def cli_actor() -> Actor:
    """The OS user running the command (the store has no sign-in of its own)."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (e.g. an arbitrary container uid)
        name = "unknown"
    return Actor(name=name[:200], role=CLI_ROLE, kind="person")


def run(args: argparse.Namespace) -> int:
    if args.admin_command == "permissions":
        print(markdown_table())
        return 0
    try:
        asyncio.run(_with_store(COMMANDS[args.admin_command], args))
    except AccountError as error:
        print(f"disposisi admin: {error}", file=sys.stderr)
        return 2
    except AuditFailed as error:
        print(f"disposisi admin: {error}", file=sys.stderr)
        return 1
    return 0


async def _with_store(action: Command, args: argparse.Namespace) -> None:
    settings = Settings()
    client = mongo.connect(settings)
    try:
        db = mongo.database(client, settings)
        admin = Admin(AccountStore(db), AuditLog(db), cli_actor())
        await admin.accounts.ensure_indexes()
        await admin.audit.ensure_indexes()
        await action(admin, args)
    finally:
        await client.close()


def user_fields(user: UserDoc) -> Fields:
    return {"username": user["_id"], "role": user["role"], "agency": user["agency"],
            "revoked": user["revoked"]}


def key_fields(key: ApiKeyDoc) -> Fields:
    return {"key_id": key["_id"], "kind": key["kind"], "name": key["name"],
            "revoked": key["revoked"]}


async def _create_user(admin: Admin, args: argparse.Namespace) -> None:
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else generate_password()
    user = await admin.accounts.create_user(tenant=args.tenant, username=args.username,
                                            role=Role(args.role), agency=args.agency,
                                            password=password)
    print(f"created user {user['_id']} ({user['role']}"
          f"{', ' + user['agency'] if user['agency'] else ''}) of tenant {user['tenant']}")
    if not args.password_stdin:
        print(f"password (shown once): {password}")
    await admin.record(user["tenant"], AuditAction.USER_CHANGE,
                       f"user:{user['_id']}:created",
                       before=None, after=user_fields(user))


async def _create_key(admin: Admin, args: argparse.Namespace) -> None:
    kind: KeyKind = "channel" if args.channel else "service"
    doc, key = await admin.accounts.create_api_key(tenant=args.tenant, kind=kind,
                                                   name=args.channel or args.service)
    print(f"created {kind} key {doc['_id']} for {doc['name']} of tenant {doc['tenant']}")
    print(f"key (shown once, send it as X-API-Key): {key}")
    await admin.record(doc["tenant"], AuditAction.KEY_CHANGE, f"key:{doc['_id']}:created",
                       before=None, after=key_fields(doc))


async def _revoke(admin: Admin, args: argparse.Namespace) -> None:
    if args.username:
        user = await admin.accounts.revoke_user(args.username)
        print(f"revoked user {args.username}")
        await admin.record(user["tenant"], AuditAction.USER_CHANGE,
                           f"user:{user['_id']}:revoked:{user.get('revoked_at', 0.0)}",
                           before=user_fields(user), after={**user_fields(user), "revoked": True})
    else:
        key = await admin.accounts.revoke_key(args.key_id)
        print(f"revoked API key {args.key_id}")
        await admin.record(key["tenant"], AuditAction.KEY_CHANGE,
                           f"key:{key['_id']}:revoked:{key.get('revoked_at', 0.0)}",
                           before=key_fields(key), after={**key_fields(key), "revoked": True})


async def _list(admin: Admin, args: argparse.Namespace) -> None:
    store = admin.accounts
    print("username\ttenant\trole\tagency\tstate")
    for user in await store.list_users(args.tenant):
        state = "revoked" if user["revoked"] else "active"
        print(f"{user['_id']}\t{user['tenant']}\t{user['role']}\t{user['agency'] or '-'}\t{state}")
    print("\nkey id\ttenant\tkind\tname\tstate")
    for key in await store.list_keys(args.tenant):
        state = "revoked" if key["revoked"] else "active"
        print(f"{key['_id']}\t{key['tenant']}\t{key['kind']}\t{key['name']}\t{state}")


COMMANDS: dict[str, Command] = {
    "create-user": _create_user, "create-api-key": _create_key, "revoke": _revoke, "users": _list}
