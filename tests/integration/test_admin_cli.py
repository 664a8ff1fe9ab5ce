"""`disposisi admin` as an administrator runs it, against the test's store (each change in the
audit log, by the OS user), and the demo accounts of `disposisi dev`."""

import argparse
import asyncio
import getpass
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.admin_cli import COMMANDS, Admin, AuditFailed, cli_actor
from services.dev_accounts import CHANNELS, CREDENTIALS_FILE, prepare_dev_accounts
from shared.accounts import AccountStore
from shared.audit_store import AuditLog
from shared.mongo import Document
from shared.settings import Settings

pytestmark = pytest.mark.integration


def disposisi(settings: Settings, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DISPOSISI_MONGODB_URL": settings.mongodb_url,
           "DISPOSISI_MONGODB_DATABASE": settings.mongodb_database}
    return subprocess.run([sys.executable, "-m", "services.cli", *args], env=env,
                          input=stdin, capture_output=True, text=True, timeout=120)


def admin(settings: Settings, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return disposisi(settings, "admin", *args, stdin=stdin)


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
    assert set(first) == {"api_keys", "users"} and set(first["api_keys"]) == set(CHANNELS)
    assert json.loads((tmp_path / CREDENTIALS_FILE).read_text()) == first
    assert len(users) == len(first["users"]) and len(await store.list_keys()) == len(CHANNELS)
    assert {(u["role"], u["agency"]) for u in first["users"].values()} >= {
        ("officer", "DLH"), ("officer", "PDAM"), ("agency_head", "DLH"), ("triage", None),
        ("supervisor", None), ("admin", None)}
    for username, user in first["users"].items():
        assert await signs_in(store, username, user["password"])
    assert await store.key(first["api_keys"]["web"]) is not None
    lapor = await store.key(first["api_keys"]["lapor"])
    assert lapor is not None and lapor["name"] == "lapor", "`disposisi lapor import` can use it"
    assert len(secret) >= 32 and (tmp_path / "auth-secret").read_text().strip() == secret
    await _assert_demo_accounts_audited(settings, mongo, first)


async def _assert_demo_accounts_audited(settings: Settings, mongo: AsyncMongoClient[Document],
                                        made: dict[str, Any]) -> None:
    """Each demo account's creation is in the audit log once, by disposisi-dev, and the chain
    holds."""
    audit = AuditLog(mongo[settings.mongodb_database])
    entries = await audit.latest(settings.tenant, limit=100)
    users = sorted(e["after"]["username"] for e in entries if e["action"] == "user_change")
    keys = [e for e in entries if e["action"] == "key_change"]
    assert users == sorted(made["users"])
    assert sorted(k["after"]["name"] for k in keys) == sorted(CHANNELS)
    assert {(e["actor"]["name"], e["actor"]["kind"]) for e in entries} == {("disposisi-dev", "system")}
    assert {e["before"] for e in entries} == {None}
    assert all(e["after"]["role"] == made["users"][e["after"]["username"]]["role"]
               for e in entries if e["action"] == "user_change")
    check = await audit.verify(settings.tenant)
    assert check.ok and check.count == len(made["users"]) + len(CHANNELS)


async def test_demo_accounts_made_before_their_audit_entries_are_audited_on_the_next_start(
        settings: Settings, mongo: AsyncMongoClient[Document], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A first start that stopped after making the accounts, before recording them (here: the
    audit log is lost), records them on the next start, once."""
    monkeypatch.setenv("DISPOSISI_MONGODB_URL", settings.mongodb_url)
    monkeypatch.setenv("DISPOSISI_MONGODB_DATABASE", settings.mongodb_database)
    await asyncio.to_thread(prepare_dev_accounts, tmp_path)
    db = mongo[settings.mongodb_database]
    for name in ("audit_log", "audit_keys", "audit_heads"):
        await db.drop_collection(name)
    await asyncio.to_thread(prepare_dev_accounts, tmp_path)
    await asyncio.to_thread(prepare_dev_accounts, tmp_path)
    made = json.loads((tmp_path / CREDENTIALS_FILE).read_text())
    await _assert_demo_accounts_audited(settings, mongo, made)


async def test_account_changes_are_audited_by_the_os_user(settings: Settings,
                                                         mongo: AsyncMongoClient[Document]) -> None:
    made = admin(settings, "create-user", "--tenant", "kota-bengkulu", "--username", "dlh.andi",
                 "--role", "officer", "--agency", "DLH")
    password = shown_once(made.stdout, "password (shown once):")
    key_made = admin(settings, "create-api-key", "--tenant", "kota-bengkulu", "--channel", "web")
    key = shown_once(key_made.stdout, "key (shown once")
    key_id = key_made.stdout.split()[3]
    revoked_user = admin(settings, "revoke", "--username", "dlh.andi")
    revoked_key = admin(settings, "revoke", "--key-id", key_id)
    refused = admin(settings, "create-user", "--tenant", "kota-bengkulu", "--username", "dlh.andi",
                    "--role", "officer", "--agency", "DLH")  # exists: no change, no entry
    verified = disposisi(settings, "audit", "verify", "--tenant", "kota-bengkulu")
    shown = disposisi(settings, "audit", "show", "--tenant", "kota-bengkulu")
    found = await AuditLog(mongo[settings.mongodb_database]).latest("kota-bengkulu", limit=10)

    assert [p.returncode for p in (made, key_made, revoked_user, revoked_key, refused)] == [
        0, 0, 0, 0, 2]
    assert verified.returncode == 0, verified.stdout
    assert verified.stdout.startswith("audit log of kota-bengkulu: OK, 4 entries")
    me = {"name": getpass.getuser(), "role": "admin-cli", "agency": None, "kind": "person"}
    andi = {"username": "dlh.andi", "role": "officer", "agency": "DLH", "revoked": False}
    web = {"key_id": key_id, "kind": "channel", "name": "web", "revoked": False}
    assert [(e["action"], e["actor"], e["ticket_id"], e["before"], e["after"]) for e in found] == [
        ("user_change", me, None, None, andi), ("key_change", me, None, None, web),
        ("user_change", me, None, andi, {**andi, "revoked": True}),
        ("key_change", me, None, web, {**web, "revoked": True})]
    assert f"user_change - by {me['name']} (person, admin-cli) -> " in shown.stdout.splitlines()[0]
    stored = repr(await mongo[settings.mongodb_database]["audit_log"].find().to_list(None))
    assert password not in stored and key not in stored and key.rsplit("_", 1)[1] not in stored


class LostAppend(AuditLog):
    """The store goes away after the account's write, before the audit append."""

    async def append(self, records: Any) -> int:
        raise ConnectionError("store gone before the audit append")


async def test_a_change_the_audit_log_cannot_record_fails_loudly(
        settings: Settings, mongo: AsyncMongoClient[Document],
        capsys: pytest.CaptureFixture[str]) -> None:
    db = mongo[settings.mongodb_database]
    store = AccountStore(db)
    broken = Admin(store, LostAppend(db), cli_actor())
    args = argparse.Namespace(tenant="kota-bengkulu", username="dlh.andi", role="officer",
                              agency="DLH", password_stdin=False)
    with pytest.raises(AuditFailed, match="the change was made, but the audit log could not "
                                          "record it: store gone"):
        await COMMANDS["create-user"](broken, args)
    password = shown_once(capsys.readouterr().out, "password (shown once):")
    # The account exists and its password was shown: the administrator is not left with a
    # user nobody can sign in as, and is told the log lacks the change.
    assert await signs_in(store, "dlh.andi", password)
    assert await AuditLog(db).latest("kota-bengkulu", limit=10) == []
