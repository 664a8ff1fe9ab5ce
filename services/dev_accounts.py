"""Demo accounts for ``disposisi dev``: on the first start, a web channel key and one user per
role of the demo tenant, written to ``<data-dir>/dev-credentials.json`` and printed.

Only ``disposisi dev`` calls this. Anywhere else no account or key exists until an
administrator creates one (``disposisi admin create-user``).
"""

import asyncio
import json
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.admin_cli import key_fields, user_fields
from shared import mongo
from shared.accounts import AccountStore, Role, generate_password
from shared.audit import Actor, AuditAction, AuditRecord
from shared.audit_store import AuditLog
from shared.settings import Settings

CREDENTIALS_FILE = "dev-credentials.json"
DEV_ACTOR = Actor.system("disposisi-dev")  # who made the demo accounts, in the audit log
SECRET_FILE = "auth-secret"
CHANNELS = ("web", "whatsapp", "sms", "email", "lapor")  # chat: whatsapp, sms; mailbox: email
# username -> (role, agency)
DEMO_USERS: dict[str, tuple[Role, str | None]] = {
    "dlh.petugas": (Role.OFFICER, "DLH"),
    "dlh.kepala": (Role.AGENCY_HEAD, "DLH"),
    "pdam.petugas": (Role.OFFICER, "PDAM"),
    "pupr.petugas": (Role.OFFICER, "PUPR"),
    "meja.triase": (Role.TRIAGE, None),
    "inspektorat": (Role.SUPERVISOR, None),
    "admin": (Role.ADMIN, None),
}


def prepare_dev_accounts(data_dir: Path) -> None:
    """Give the services a token signing key (kept in the data directory, so tokens survive a
    restart) and, when the store has no account yet, create the demo accounts."""
    data_dir.mkdir(parents=True, exist_ok=True)
    secret_path = data_dir / SECRET_FILE
    if not secret_path.exists():
        secret_path.write_text(secrets.token_urlsafe(48))
        secret_path.chmod(0o600)
    os.environ.setdefault("DISPOSISI_AUTH_SECRET", secret_path.read_text().strip())
    path = data_dir / CREDENTIALS_FILE
    made_before = json.loads(path.read_text()) if path.exists() else None
    credentials = asyncio.run(_create_if_empty(Settings(), made_before))
    if credentials is not None:
        path.write_text(json.dumps(credentials, indent=2) + "\n")
        path.chmod(0o600)
        _print(credentials, path)
    elif path.exists():
        print(f"disposisi dev: demo accounts are in {path.resolve()}", flush=True)


async def _create_if_empty(settings: Settings,
                           made_before: dict[str, Any] | None) -> dict[str, Any] | None:
    """The demo accounts, made now (None if the store has accounts already). Their creation is
    audited as the administrator CLI's is, by ``disposisi-dev``; on a later start, the accounts
    made before (``made_before``) are audited again, once, in case the first start stopped
    between making them and recording it."""
    client = mongo.connect(settings)
    try:
        db = mongo.database(client, settings)
        store = AccountStore(db)
        await store.ensure_indexes()
        if not await store.is_empty():
            if made_before is not None:
                await _audit(store, AuditLog(db), settings.tenant, made_before)
            return None
        credentials = await _create(store, settings.tenant)
        await _audit(store, AuditLog(db), settings.tenant, credentials)
        return credentials
    finally:
        await client.close()


async def _create(store: AccountStore, tenant: str) -> dict[str, Any]:
    keys = {name: (await store.create_api_key(tenant=tenant, kind="channel", name=name))[1]
            for name in CHANNELS}
    users: dict[str, dict[str, str | None]] = {}
    for username, (role, agency) in DEMO_USERS.items():
        password = generate_password()
        await store.create_user(tenant=tenant, username=username, role=role,
                                agency=agency, password=password)
        users[username] = {"password": password, "role": role.value, "agency": agency}
    return {"api_keys": keys, "users": users}


async def _audit(store: AccountStore, audit: AuditLog, tenant: str,
                 credentials: dict[str, Any]) -> None:
    """One ``user_change`` / ``key_change`` entry per demo account, keyed as the CLI keys its
    own (so each account's creation is in the log once, whoever recorded it)."""
    await audit.ensure_indexes()
    records = [AuditRecord(tenant=user["tenant"], key=f"user:{user['_id']}:created",
                           action=AuditAction.USER_CHANGE, actor=DEV_ACTOR, before=None,
                           after=user_fields(user), time=_at(user["created_at"]))
               for user in await store.list_users(tenant) if user["_id"] in credentials["users"]]
    for key in credentials["api_keys"].values():
        doc = await store.key(key)
        if doc is not None:
            records.append(AuditRecord(tenant=doc["tenant"], key=f"key:{doc['_id']}:created",
                                       action=AuditAction.KEY_CHANGE, actor=DEV_ACTOR,
                                       before=None, after=key_fields(doc),
                                       time=_at(doc["created_at"])))
    await audit.append(records)


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _print(credentials: dict[str, Any], path: Path) -> None:
    lines = ["Demo accounts (made once; also in " + str(path.resolve()) + "):",
             f"  web channel key (X-API-Key)  {credentials['api_keys']['web']}",
             f"  email channel key (mailbox)  {credentials['api_keys'].get('email', '-')}"]
    if "lapor" in credentials["api_keys"]:
        lines.append(f"  lapor channel key (DISPOSISI_LAPOR_API_KEY)  "
                     f"{credentials['api_keys']['lapor']}")
    for username, user in credentials["users"].items():
        role = f"{user['role']}{' ' + user['agency'] if user['agency'] else ''}"
        lines.append(f"  {username:<14} {role:<18} password {user['password']}")
    print("\n".join(lines), flush=True)


def console_env(data_dir: Path) -> dict[str, str]:
    """The console's public form posts as the demo web channel: its key, unless one is set."""
    path = data_dir / CREDENTIALS_FILE
    if "DISPOSISI_CONSOLE_CHANNEL_API_KEY" in os.environ or not path.exists():
        return {}
    return {"DISPOSISI_CONSOLE_CHANNEL_API_KEY": json.loads(path.read_text())["api_keys"]["web"]}


def chat_env(data_dir: Path) -> dict[str, str]:
    """The chat service submits as the demo whatsapp and sms channels, unless keys are set
    (a data directory made before these keys existed has none: the chat service then runs
    without them, and its submissions are refused until they are set)."""
    path = data_dir / CREDENTIALS_FILE
    keys = json.loads(path.read_text())["api_keys"] if path.exists() else {}
    env = {}
    for channel in ("whatsapp", "sms"):
        name = f"DISPOSISI_CHAT_{channel.upper()}_API_KEY"
        if name not in os.environ and channel in keys:
            env[name] = keys[channel]
    return env


def mailbox_env(data_dir: Path) -> dict[str, str]:
    """The mailbox submits as the demo email channel (its key, unless one is set) and takes
    mail for pengaduan@localhost unless addresses are set."""
    env = {} if "DISPOSISI_MAILBOX_ADDRESSES" in os.environ else {
        "DISPOSISI_MAILBOX_ADDRESSES": '["pengaduan@localhost"]'}
    path = data_dir / CREDENTIALS_FILE
    if "DISPOSISI_MAILBOX_API_KEY" in os.environ or not path.exists():
        return env
    key = json.loads(path.read_text())["api_keys"].get("email")  # absent in older data dirs
    return {**env, "DISPOSISI_MAILBOX_API_KEY": key} if key else env
