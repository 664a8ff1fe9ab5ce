"""Hot reload of the SLA policy, audited like the rulebook's: a changed file (the policy or a
holidays file it names) is validated, recorded in the audit log as ``policy_change`` and
swapped in whole; an invalid one is refused with its reason while the policy already loaded
keeps serving. New deadlines apply to tickets opened or re-targeted from then on; stored
ladders keep their steps."""

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from services.sla.flows import Sla
from services.sla.policy import Policy, PolicyError, load_policy
from shared.audit import Actor, AuditAction, AuditRecord
from shared.audit_store import AuditLog
from shared.contracts import utc_now
from shared.yamlfile import file_stamps

log = logging.getLogger("disposisi.sla.policy_reload")
FILE_RELOAD = Actor.system("file-reload")  # who changed it when a file change is picked up


def policy_files(path: Path, policy: Policy) -> tuple[Path, ...]:
    """The policy file and the holidays files its calendars name (relative to it)."""
    base = path.resolve().parent
    named: list[Path] = []
    for spec in policy.calendars.values():
        holidays: Path | None = getattr(spec, "holidays_file", None)
        if holidays is not None:
            named.append(base / holidays)
    return (path, *named)


def _version(files: tuple[Path, ...]) -> str:
    digest = hashlib.sha256()
    for path in files:
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"<missing>")
    return digest.hexdigest()[:16]


def _load_whole(path: Path, serving: Policy) -> tuple[Policy, str]:
    """Load and check everything the policy needs, off the event loop: every calendar is built
    (a broken holidays file is found now, not at a ticket's next refresh), and no calendar a
    stored ticket may name disappears."""
    policy = load_policy(path)
    gone = sorted(set(serving.calendars) - set(policy.calendars))
    if gone:
        raise PolicyError(f"{path}: calendars {', '.join(gone)} are still used by stored "
                          "tickets: keep them")
    try:
        for name in policy.calendars:
            policy.calendar(name)
    except ValueError as error:
        raise PolicyError(str(error)) from error
    return policy, _version(policy_files(path, policy))


def _summary(policy: Policy, version: str) -> dict[str, object]:
    return {"version": version, "targets": [t.name for t in policy.targets],
            "levels": len(policy.escalation), "calendars": sorted(policy.calendars)}


@dataclass
class PolicyReloader:
    path: Path
    sla: Sla
    audit: AuditLog
    on_loaded: Callable[[Policy], None] = lambda _: None  # e.g. the reports' zones
    loaded_at: datetime = field(default_factory=utc_now)
    last_error: str | None = None
    version: str = ""
    _seen: tuple[tuple[int, int] | None, ...] = ()

    def __post_init__(self) -> None:
        files = policy_files(self.path, self.sla.policy)
        self.version, self._seen = _version(files), file_stamps(files)

    async def check(self) -> bool:
        """Reload when a file changed since last seen; True when a new policy is serving."""
        stamp = file_stamps(policy_files(self.path, self.sla.policy))
        if stamp == self._seen:
            return False
        self._seen = stamp  # a broken file is reported once, not on every turn
        return await self.reload()

    async def reload(self, *, actor: Actor | None = None, request_id: str | None = None) -> bool:
        """Load the files now; True when a new policy is serving. ``actor`` is who asked (an
        administrator over HTTP); the file watcher is ``file-reload`` (role system)."""
        try:
            policy, version = await asyncio.to_thread(_load_whole, self.path, self.sla.policy)
        except PolicyError as error:
            self.last_error = str(error)
            log.error("policy refused, still serving %s: %s", self.version, error)
            return False
        if version == self.version:
            self.last_error = None
            return False
        try:
            await self._record(policy, version, actor or FILE_RELOAD, request_id)
        except Exception as error:  # a change that cannot be audited is not made
            self.last_error = f"policy {version} not loaded: the audit log: {error}"
            self._seen = ()  # try again on the next check
            log.error("%s; still serving %s", self.last_error, self.version)
            return False
        self.sla.policy = policy  # one reference swap: a flow in progress keeps its policy
        self.on_loaded(policy)
        self.version, self.loaded_at, self.last_error = version, utc_now(), None
        self._seen = file_stamps(policy_files(self.path, policy))
        log.info("policy %s now serving", version)
        return True

    async def _record(self, new: Policy, version: str, actor: Actor,
                      request_id: str | None) -> None:
        # Replicas that see the same files change record it once; going back to an earlier
        # version later has other file stamps, so it is recorded again.
        stamp = hashlib.sha256(repr(file_stamps(policy_files(self.path, new))).encode()).hexdigest()[:16]
        await self.audit.append([AuditRecord(
            tenant=self.sla.settings.tenant, action=AuditAction.POLICY_CHANGE,
            key=f"policy:{self.version}:{version}:{stamp}", actor=actor, request_id=request_id,
            before=_summary(self.sla.policy, self.version), after=_summary(new, version))])

    def status(self) -> dict[str, object]:
        return {**_summary(self.sla.policy, self.version), "path": str(self.path),
                "loaded_at": self.loaded_at, "last_error": self.last_error}
