"""Demo accounts for ``disposisi dev``: on the first start, a web channel key and one user per
role of the demo tenant, written to ``<data-dir>/dev-credentials.json`` and printed.

Only ``disposisi dev`` calls this. Anywhere else no account or key exists until an
administrator creates one (``disposisi admin create-user``).
"""

import asyncio
import json
import os
import secrets
from pathlib import Path
from typing import Any

from shared import mongo
from shared.accounts import AccountStore, Role, generate_password
from shared.settings import Settings

CREDENTIALS_FILE = "dev-credentials.json"
SECRET_FILE = "auth-secret"
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
    credentials = asyncio.run(_create_if_empty(Settings()))
    path = data_dir / CREDENTIALS_FILE
    if credentials is not None:
        path.write_text(json.dumps(credentials, indent=2) + "\n")
        path.chmod(0o600)
        _print(credentials, path)
    elif path.exists():
        print(f"disposisi dev: demo accounts are in {path.resolve()}", flush=True)


async def _create_if_empty(settings: Settings) -> dict[str, Any] | None:
    client = mongo.connect(settings)
    try:
        store = AccountStore(mongo.database(client, settings))
        await store.ensure_indexes()
        if not await store.is_empty():
            return None
        _, key = await store.create_api_key(tenant=settings.tenant, kind="channel", name="web")
        users: dict[str, dict[str, str | None]] = {}
        for username, (role, agency) in DEMO_USERS.items():
            password = generate_password()
            await store.create_user(tenant=settings.tenant, username=username, role=role,
                                    agency=agency, password=password)
            users[username] = {"password": password, "role": role.value, "agency": agency}
        return {"api_keys": {"web": key}, "users": users}
    finally:
        await client.close()


def _print(credentials: dict[str, Any], path: Path) -> None:
    lines = ["Demo accounts (made once; also in " + str(path.resolve()) + "):",
             f"  web channel key (X-API-Key)  {credentials['api_keys']['web']}"]
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
