"""The tenants of one deployment: which local governments it serves, each with its own
rulebook, SLA policy (calendars included), timezone and tracking-number prefix.

Without ``tenants_file`` the registry holds one tenant, the ``tenant`` setting, made of the
``rulebook``, ``sla_policy``, ``timezone`` and ``ticket_prefix`` settings: a single-tenant
deployment keeps working unchanged. With it, the YAML file lists every tenant::

    tenants:
      kota-bengkulu:
        name: Pemerintah Kota Bengkulu
        rulebook: ../services/router/rulebooks/kota-bengkulu.yaml   # relative to this file
        policy: ../services/sla/policies/default.yaml
        ticket_prefix: BKL
        province: provinsi-bengkulu      # its province, when it runs on this deployment too
      provinsi-bengkulu: {...}

The ``tenant`` setting names the home tenant (it must be listed): its agency queues keep the
names ``disposisi.agency.<CODE>``; every other tenant's are ``disposisi.agency.<tenant>.<CODE>``.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.contracts import Topics
from shared.settings import Settings
from shared.yamlfile import read_yaml

TENANT_ID = r"^[a-z][a-z0-9-]{1,62}$"  # safe in a topic name and a URL


class UnknownTenant(LookupError):
    """An event or a caller names a tenant this deployment does not serve."""


class Tenant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=TENANT_ID)
    name: str = Field(min_length=1, max_length=200)
    rulebook: Path
    policy: Path
    timezone: str = "Asia/Jakarta"
    ticket_prefix: str = Field(pattern=r"^[A-Z]{2,8}$")
    province: str | None = Field(
        None, pattern=TENANT_ID,
        description="The province tenant on this deployment that takes what this tenant's "
                    "rulebook forwards to `forward_agency`.")
    forward_agency: str = Field(
        "EXT_PROVINSI", description="The agency code of this tenant's rulebook meaning the province.")


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenants: dict[str, dict[str, object]] = Field(min_length=1)


@dataclass(frozen=True)
class Tenants:
    """The registry: every tenant by id, and the home one."""

    home: str
    by_id: Mapping[str, Tenant]

    def __post_init__(self) -> None:
        if self.home not in self.by_id:
            raise ValueError(f"the home tenant {self.home!r} (setting `tenant`) is not in the "
                             f"registry ({', '.join(sorted(self.by_id))})")
        prefixes = [t.ticket_prefix for t in self.by_id.values()]
        if len(set(prefixes)) != len(prefixes):
            raise ValueError("two tenants share a ticket_prefix: tracking numbers must tell "
                             "tenants apart")
        for tenant in self.by_id.values():
            if tenant.province is not None and tenant.province not in self.by_id:
                raise ValueError(f"tenant {tenant.id}: province {tenant.province!r} is not in "
                                 "the registry")

    def __contains__(self, tenant: object) -> bool:
        return tenant in self.by_id

    def __iter__(self) -> Iterator[Tenant]:
        return iter(self.by_id.values())

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(self.by_id)

    def get(self, tenant: str) -> Tenant:
        found = self.by_id.get(tenant)
        if found is None:
            raise UnknownTenant(f"tenant {tenant!r} is not served by this deployment")
        return found

    def agency_topic(self, tenant: str, code: str) -> str:
        """The agency's queue. Per tenant, because agencies' systems read their queue with
        broker credentials, and broker permissions are granted per topic: a shared queue
        would show one government's complaints to another's agency of the same code."""
        return Topics.agency(code) if tenant == self.home else Topics.agency(f"{tenant}.{code}")

    def province_of(self, tenant: str) -> Tenant | None:
        """The province tenant that takes this tenant's forwarded complaints, if on this
        deployment."""
        province = self.get(tenant).province
        return None if province is None else self.by_id[province]

    def forwards_from(self, province: str, city: str) -> bool:
        """Whether ``city`` forwards complaints to ``province`` on this deployment: the only
        pair of tenants between which anything crosses."""
        return city in self.by_id and self.by_id[city].province == province


def load_tenants(settings: Settings) -> Tenants:
    """The registry from ``tenants_file``, or the single tenant of the settings."""
    if settings.tenants_file is None:
        return Tenants(settings.tenant, {settings.tenant: Tenant(
            id=settings.tenant, name=settings.tenant, rulebook=settings.rulebook,
            policy=settings.sla_policy, timezone=settings.timezone,
            ticket_prefix=settings.ticket_prefix)})
    return read_tenants(settings.tenants_file, home=settings.tenant)


def read_tenants(path: Path, *, home: str) -> Tenants:
    """Read a registry file; a ValueError naming the file and the problem when it is wrong."""
    try:
        content = _File.model_validate(read_yaml(path))
        base = path.resolve().parent
        tenants = {}
        for tenant_id, fields in content.tenants.items():
            tenant = Tenant.model_validate({**fields, "id": tenant_id})
            tenants[tenant_id] = tenant.model_copy(update={
                "rulebook": base / tenant.rulebook, "policy": base / tenant.policy})
        return Tenants(home, tenants)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{path}: {where}: {first['msg']}") from error
    except ValueError as error:
        if str(error).startswith(str(path)):
            raise
        raise ValueError(f"{path}: {error}") from error

