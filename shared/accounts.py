"""Accounts: people who sign in (users) and the API keys of channels and services.

Two MongoDB collections, owned by ``AccountStore``: ``users`` (keyed by username, unique across
the deployment because the OAuth2 password form carries no tenant) and ``api_keys`` (keyed by
a short public key id). Passwords are kept as Argon2 hashes (pwdlib), API keys as SHA-256 of
a 256-bit random secret: neither can be read back, so both are shown once, when created.

Times written with ``$set`` are epoch seconds (floats): the embedded store turns a datetime
written by ``$set`` into a string, which would break comparisons.
"""

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, NotRequired, TypedDict

from pwdlib import PasswordHash
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.mongo import Document

USERS = "users"
API_KEYS = "api_keys"
KEY_PREFIX = "dsp"  # keys read dsp_<key id>_<secret>: greppable in leaked logs, parsable here
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{2,59}")
KeyKind = Literal["channel", "service"]

_hasher = PasswordHash.recommended()  # Argon2id with the library's current parameters
# Verified against when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class Role(StrEnum):
    OFFICER = "officer"
    AGENCY_HEAD = "agency_head"
    TRIAGE = "triage"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


AGENCY_ROLES = frozenset({Role.OFFICER, Role.AGENCY_HEAD})  # bound to one agency code


class AccountError(ValueError):
    """A request the accounts store refuses (duplicate name, missing agency, unknown id)."""


class UserDoc(TypedDict):
    _id: str  # the username
    tenant: str
    role: str
    agency: str | None
    password_hash: str
    failed_sign_ins: int
    locked_until: float  # epoch seconds; 0 when not locked
    revoked: bool
    created_at: float
    revoked_at: NotRequired[float]


class ApiKeyDoc(TypedDict):
    _id: str  # the key id, the public part of the key
    tenant: str
    kind: str  # KeyKind
    name: str  # the channel (web, whatsapp, ...) or the service (sla, router, ...)
    secret_hash: str  # SHA-256 hex of the whole key
    revoked: bool
    created_at: float
    revoked_at: NotRequired[float]


@dataclass(frozen=True)
class SignIn:
    """The outcome of a password check: the user, or why not (never which part was wrong)."""

    user: UserDoc | None
    locked: bool = False


def generate_password() -> str:
    return secrets.token_urlsafe(18)


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of(key: str) -> str | None:
    parts = key.split("_", 2)  # the secret itself may hold underscores
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]


def _now() -> float:
    return time.time()


class AccountStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.users = db[USERS]
        self.keys = db[API_KEYS]

    async def ensure_indexes(self) -> None:
        await self.users.create_index("tenant")
        await self.keys.create_index("tenant")

    # --- users ------------------------------------------------------------------------------

    async def create_user(self, *, tenant: str, username: str, role: Role, agency: str | None,
                          password: str) -> UserDoc:
        if not USERNAME.fullmatch(username):
            raise AccountError("username: 3-60 characters of a-z, 0-9, '.', '_' or '-'")
        if role in AGENCY_ROLES and not agency:
            raise AccountError(f"role {role.value} needs --agency (the agency code it works for)")
        if role not in AGENCY_ROLES and agency:
            raise AccountError(f"role {role.value} is not bound to an agency; drop --agency")
        if len(password) < 12:
            raise AccountError("password: at least 12 characters")
        password_hash = await asyncio.to_thread(_hasher.hash, password)
        user = UserDoc(_id=username, tenant=tenant, role=role.value, agency=agency or None,
                       password_hash=password_hash, failed_sign_ins=0, locked_until=0.0,
                       revoked=False, created_at=_now())
        try:
            await self.users.insert_one(dict(user))
        except DuplicateKeyError as error:
            raise AccountError(f"username {username!r} exists already") from error
        return user

    async def user(self, username: str) -> UserDoc | None:
        doc = await self.users.find_one({"_id": username})
        return _user(doc) if doc else None

    async def active_user(self, username: str) -> UserDoc | None:
        user = await self.user(username)
        return user if user and not user["revoked"] else None

    async def list_users(self, tenant: str | None = None) -> list[UserDoc]:
        query = {"tenant": tenant} if tenant else {}
        return [_user(d) for d in await self.users.find(query).sort("_id", 1).to_list(None)]

    async def sign_in(self, username: str, password: str, *, max_failures: int,
                      lockout_seconds: float) -> SignIn:
        """Check a password. ``max_failures`` wrong passwords in a row lock the account for
        ``lockout_seconds``; while locked even the right password is refused."""
        user = await self.active_user(username)
        if user is None:
            await asyncio.to_thread(_hasher.verify, password, _DUMMY_HASH)
            return SignIn(None)
        if user["locked_until"] > _now():
            return SignIn(None, locked=True)
        if await asyncio.to_thread(_hasher.verify, password, user["password_hash"]):
            if user["failed_sign_ins"]:
                await self.users.update_one({"_id": username},
                                            {"$set": {"failed_sign_ins": 0, "locked_until": 0.0}})
            return SignIn(user)
        counted = await self.users.find_one_and_update(
            {"_id": username}, {"$inc": {"failed_sign_ins": 1}}, return_document=ReturnDocument.AFTER)
        if counted and int(counted["failed_sign_ins"]) >= max_failures:
            await self.users.update_one({"_id": username}, {"$set": {
                "failed_sign_ins": 0, "locked_until": _now() + lockout_seconds}})
            return SignIn(None, locked=True)
        return SignIn(None)

    async def revoke_user(self, username: str) -> UserDoc:
        """Revoke at once; the user as they were before (``revoked`` tells whether already)."""
        before = await self.users.find_one_and_update(
            {"_id": username}, {"$set": {"revoked": True, "revoked_at": _now()}})
        if before is None:
            raise AccountError(f"no user {username!r}")
        return _user(before)

    # --- API keys ---------------------------------------------------------------------------

    async def create_api_key(self, *, tenant: str, kind: KeyKind, name: str) -> tuple[ApiKeyDoc, str]:
        """A new key: the stored document and the key itself, which is not stored anywhere."""
        key_id = secrets.token_hex(6)
        key = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        doc = ApiKeyDoc(_id=key_id, tenant=tenant, kind=kind, name=name, secret_hash=_key_hash(key),
                        revoked=False, created_at=_now())
        await self.keys.insert_one(dict(doc))
        return doc, key

    async def key(self, key: str) -> ApiKeyDoc | None:
        """The active key document matching ``key``, or None."""
        key_id = key_id_of(key)
        if key_id is None:
            return None
        doc = await self.keys.find_one({"_id": key_id})
        if doc is None or bool(doc["revoked"]):
            return None
        if not hmac.compare_digest(doc["secret_hash"], _key_hash(key)):
            return None
        return _api_key(doc)

    async def list_keys(self, tenant: str | None = None) -> list[ApiKeyDoc]:
        query = {"tenant": tenant} if tenant else {}
        return [_api_key(d) for d in await self.keys.find(query).sort("_id", 1).to_list(None)]

    async def revoke_key(self, key_id: str) -> ApiKeyDoc:
        """Revoke at once; the key document as it was before."""
        before = await self.keys.find_one_and_update(
            {"_id": key_id}, {"$set": {"revoked": True, "revoked_at": _now()}})
        if before is None:
            raise AccountError(f"no API key {key_id!r}")
        return _api_key(before)

    async def is_empty(self) -> bool:
        return (await self.users.find_one({}, {"_id": 1}) is None
                and await self.keys.find_one({}, {"_id": 1}) is None)


def _user(doc: Document) -> UserDoc:
    # bool(): the embedded store may hand a stored true back as 1
    user = UserDoc(_id=doc["_id"], tenant=doc["tenant"], role=doc["role"], agency=doc.get("agency"),
                   password_hash=doc["password_hash"], failed_sign_ins=int(doc["failed_sign_ins"]),
                   locked_until=float(doc["locked_until"]), revoked=bool(doc["revoked"]),
                   created_at=float(doc["created_at"]))
    if "revoked_at" in doc:
        user["revoked_at"] = float(doc["revoked_at"])
    return user


def _api_key(doc: Document) -> ApiKeyDoc:
    key = ApiKeyDoc(_id=doc["_id"], tenant=doc["tenant"], kind=doc["kind"], name=doc["name"],
                    secret_hash=doc["secret_hash"], revoked=bool(doc["revoked"]),
                    created_at=float(doc["created_at"]))
    if "revoked_at" in doc:
        key["revoked_at"] = float(doc["revoked_at"])
    return key
