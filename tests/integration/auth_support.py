"""Accounts for integration tests, made through the accounts store as an administrator would,
and the headers that carry them."""

from dataclasses import dataclass

from pymongo import AsyncMongoClient

from shared.accounts import AccountStore, Role, generate_password
from shared.auth import Authenticator
from shared.mongo import Document
from shared.permissions import Principal
from shared.settings import Settings


@dataclass(frozen=True)
class Caller:
    name: str
    headers: dict[str, str]
    password: str = ""


class Accounts:
    """Users and keys in the test's database; tokens signed with the test's secret."""

    def __init__(self, settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
        self.settings = settings
        self.store = AccountStore(mongo[settings.mongodb_database])
        self.auth = Authenticator(settings, self.store)

    async def user(self, username: str, role: str, agency: str | None = None, *,
                   tenant: str | None = None) -> Caller:
        password = generate_password()
        user = await self.store.create_user(tenant=tenant or self.settings.tenant, username=username,
                                            role=Role(role), agency=agency, password=password)
        token = self.auth.issue(Principal("user", username, user["tenant"], role, agency))
        return Caller(username, {"Authorization": f"Bearer {token.access_token}"}, password)

    async def channel(self, channel: str = "web", *, tenant: str | None = None) -> Caller:
        doc, key = await self.store.create_api_key(tenant=tenant or self.settings.tenant,
                                                   kind="channel", name=channel)
        return Caller(doc["_id"], {"X-API-Key": key})

