"""`disposisi admin` as an administrator runs it, against the test's store, and the demo
accounts of `disposisi dev`."""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from services.dev_accounts import CREDENTIALS_FILE, prepare_dev_accounts
from shared.accounts import AccountStore
from shared.mongo import Document
from shared.settings import Settings

pytestmark = pytest.mark.integration


def admin(settings: Settings, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DISPOSISI_MONGODB_URL": settings.mongodb_url,
           "DISPOSISI_MONGODB_DATABASE": settings.mongodb_database}
    return subprocess.run([sys.executable, "-m", "services.cli", "admin", *args], env=env,
                          input=stdin, capture_output=True, text=True, timeout=120)


async def signs_in(store: AccountStore, username: str, password: str) -> bool:
    outcome = await store.sign_in(username, password, max_failures=5, lockout_seconds=60.0)
    return outcome.user is not None


def shown_once(output: str, label: str) -> str:
    [line] = [x for x in output.splitlines() if x.startswith(label)]
    return line.rsplit(" ", 1)[1]


async def test_create_sign_in_list_and_revoke(settings: Settings,
                                              mongo: AsyncMongoClient[Document]) -> None:
    store = AccountStore(mongo[settings.mongodb_database])
    made = admin(settings, "create-user", "--tenant", "kota-bengkulu", "--username", "dlh.andi",
                 "--role", "officer", "--agency", "DLH")
    assert made.returncode == 0, made.stderr
    password = shown_once(made.stdout, "password (shown once):")
    chosen = admin(settings, "create-user", "--tenant", "kota-bengkulu", "--username", "admin.rina",
                   "--role", "admin", "--password-stdin", stdin="kata-sandi-yang-panjang\n")
    key_made = admin(settings, "create-api-key", "--tenant", "kota-bengkulu", "--channel", "whatsapp")
    key = shown_once(key_made.stdout, "key (shown once")
    twice = admin(settings, "create-user", "--tenant", "kota-bengkulu", "--username", "dlh.andi",
                  "--role", "officer", "--agency", "DLH")
    no_agency = admin(settings, "create-user", "--tenant", "kota-bengkulu", "--username", "x.y.z",
                      "--role", "officer")
    listing = admin(settings, "users")

    assert await signs_in(store, "dlh.andi", password)
    assert await signs_in(store, "admin.rina", "kata-sandi-yang-panjang")
    assert "password" not in chosen.stdout.replace("created user", "")
    found = await store.key(key)
    assert found is not None and (found["kind"], found["name"]) == ("channel", "whatsapp")
    assert (twice.returncode, no_agency.returncode) == (2, 2)
    assert "exists already" in twice.stderr and "--agency" in no_agency.stderr
    assert "dlh.andi\tkota-bengkulu\tofficer\tDLH\tactive" in listing.stdout
    assert f"{found['_id']}\tkota-bengkulu\tchannel\twhatsapp\tactive" in listing.stdout
    assert password not in listing.stdout and key not in listing.stdout
    stored = await mongo[settings.mongodb_database]["users"].find_one({"_id": "dlh.andi"})
    assert stored is not None and password not in json.dumps(stored, default=str)

    assert admin(settings, "revoke", "--username", "dlh.andi").returncode == 0
    assert admin(settings, "revoke", "--key-id", found["_id"]).returncode == 0
    assert not await signs_in(store, "dlh.andi", password)
    assert await store.key(key) is None
    assert "dlh.andi\tkota-bengkulu\tofficer\tDLH\trevoked" in admin(settings, "users").stdout


async def test_dev_makes_demo_accounts_once(settings: Settings, mongo: AsyncMongoClient[Document],
                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPOSISI_MONGODB_URL", settings.mongodb_url)
    monkeypatch.setenv("DISPOSISI_MONGODB_DATABASE", settings.mongodb_database)
    monkeypatch.delenv("DISPOSISI_AUTH_SECRET", raising=False)
    await asyncio.to_thread(prepare_dev_accounts, tmp_path)
    first = json.loads((tmp_path / CREDENTIALS_FILE).read_text())
    secret = os.environ["DISPOSISI_AUTH_SECRET"]
    await asyncio.to_thread(prepare_dev_accounts, tmp_path)  # a second start: nothing new
    store = AccountStore(mongo[settings.mongodb_database])
    users = await store.list_users()
    assert set(first) == {"api_keys", "users"} and set(first["api_keys"]) == {"web"}
    assert json.loads((tmp_path / CREDENTIALS_FILE).read_text()) == first
    assert len(users) == len(first["users"]) and len(await store.list_keys()) == 1
    assert {(u["role"], u["agency"]) for u in first["users"].values()} >= {
        ("officer", "DLH"), ("officer", "PDAM"), ("agency_head", "DLH"), ("triage", None),
        ("supervisor", None), ("admin", None)}
    for username, user in first["users"].items():
        assert await signs_in(store, username, user["password"])
    assert await store.key(first["api_keys"]["web"]) is not None
    assert len(secret) >= 32 and (tmp_path / "auth-secret").read_text().strip() == secret
