"""``disposisi admin``: users, API keys and the permission table, against the configured store
(``DISPOSISI_MONGODB_URL``, ``DISPOSISI_MONGODB_DATABASE``).

Passwords and keys are printed once, when made: only their hashes are stored.
"""

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from shared import mongo
from shared.accounts import AccountError, AccountStore, KeyKind, Role, generate_password
from shared.contracts import Channel
from shared.permissions import markdown_table
from shared.settings import Settings


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


def run(args: argparse.Namespace) -> int:
    if args.admin_command == "permissions":
        print(markdown_table())
        return 0
    actions: dict[str, Callable[[AccountStore, argparse.Namespace], Awaitable[None]]] = {
        "create-user": _create_user, "create-api-key": _create_key, "revoke": _revoke,
        "users": _list}
    try:
        asyncio.run(_with_store(actions[args.admin_command], args))
    except AccountError as error:
        print(f"disposisi admin: {error}", file=sys.stderr)
        return 2
    return 0


async def _with_store(action: Callable[[AccountStore, argparse.Namespace], Awaitable[None]],
                      args: argparse.Namespace) -> None:
    settings = Settings()
    client = mongo.connect(settings)
    try:
        store = AccountStore(mongo.database(client, settings))
        await store.ensure_indexes()
        await action(store, args)
    finally:
        await client.close()


async def _create_user(store: AccountStore, args: argparse.Namespace) -> None:
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else generate_password()
    user = await store.create_user(tenant=args.tenant, username=args.username, role=Role(args.role),
                                   agency=args.agency, password=password)
    print(f"created user {user['_id']} ({user['role']}"
          f"{', ' + user['agency'] if user['agency'] else ''}) of tenant {user['tenant']}")
    if not args.password_stdin:
        print(f"password (shown once): {password}")


async def _create_key(store: AccountStore, args: argparse.Namespace) -> None:
    kind: KeyKind = "channel" if args.channel else "service"
    doc, key = await store.create_api_key(tenant=args.tenant, kind=kind,
                                          name=args.channel or args.service)
    print(f"created {kind} key {doc['_id']} for {doc['name']} of tenant {doc['tenant']}")
    print(f"key (shown once, send it as X-API-Key): {key}")


async def _revoke(store: AccountStore, args: argparse.Namespace) -> None:
    if args.username:
        await store.revoke_user(args.username)
        print(f"revoked user {args.username}")
    else:
        await store.revoke_key(args.key_id)
        print(f"revoked API key {args.key_id}")


async def _list(store: AccountStore, args: argparse.Namespace) -> None:
    print("username\ttenant\trole\tagency\tstate")
    for user in await store.list_users(args.tenant):
        state = "revoked" if user["revoked"] else "active"
        print(f"{user['_id']}\t{user['tenant']}\t{user['role']}\t{user['agency'] or '-'}\t{state}")
    print("\nkey id\ttenant\tkind\tname\tstate")
    for key in await store.list_keys(args.tenant):
        state = "revoked" if key["revoked"] else "active"
        print(f"{key['_id']}\t{key['tenant']}\t{key['kind']}\t{key['name']}\t{state}")
