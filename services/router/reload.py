"""Hot reload of the rulebook: a changed file is validated and swapped in whole; an invalid
one is refused with its reason while the rulebook already loaded keeps serving."""

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from services.router.flows import Router
from services.router.rulebook import Rulebook, RulebookError, load_rulebook
from shared.audit import Actor, AuditAction, AuditRecord
from shared.audit_store import AuditLog
from shared.contracts import utc_now
from shared.yamlfile import Stamp, file_stamps

log = logging.getLogger("disposisi.router.reload")


@dataclass
class RulebookReloader:
    path: Path
    router: Router
    on_loaded: Callable[[Rulebook], Awaitable[None]]  # e.g. create queues of new agencies
    audit: AuditLog | None = None  # app.py always gives one; unit tests of reloading need none
    tenant: str | None = None  # whose rulebook this is; None: the home tenant's
    loaded_at: datetime = field(default_factory=utc_now)
    last_error: str | None = None
    _seen: Stamp = ()

    def __post_init__(self) -> None:
        self._seen = file_stamps(self._watched())

    @property
    def owner(self) -> str:
        return self.tenant or self.router.settings.tenant

    @property
    def serving(self) -> Rulebook:
        return self.router.book(self.owner)

    def _watched(self) -> tuple[Path, ...]:
        return (self.path, *(p for p in self.serving.sources if p != self.path))

    async def check(self) -> bool:
        """Reload when a file changed since last seen; True when a new rulebook is serving."""
        stamp = file_stamps(self._watched())
        if stamp == self._seen:
            return False
        self._seen = stamp  # a broken file is reported once, not on every turn
        return await self.reload()

    async def reload(self, *, actor: Actor | None = None, request_id: str | None = None) -> bool:
        """Load the file now; True when a new rulebook is serving. ``actor`` is who asked (the
        file watcher, as the system, when not given)."""
        try:
            # Parsing and compiling a large rulebook takes a while: keep serving meanwhile.
            rulebook = await asyncio.to_thread(load_rulebook, self.path)
        except RulebookError as error:
            self.last_error = str(error)
            log.error("rulebook of %s refused, still serving %s: %s", self.owner,
                      self.serving.version, error)
            return False
        if rulebook.version == self.serving.version:
            return False
        await self.on_loaded(rulebook)
        try:
            await self._record(rulebook, actor or Actor.system("rulebook-watch"), request_id)
        except Exception as error:  # a change that cannot be audited is not made
            self.last_error = f"rulebook {rulebook.version} not loaded: the audit log: {error}"
            self._seen = ()  # try again on the next check
            log.error("%s; still serving %s", self.last_error, self.serving.version)
            return False
        self.router.swap(self.owner, rulebook)
        self.loaded_at, self.last_error = utc_now(), None
        self._seen = file_stamps(self._watched())  # the new rulebook may include other files
        log.info("rulebook %s of %s now serving (%d agencies)", rulebook.version, self.owner,
                 len(rulebook.codes))
        return True

    async def _record(self, new: Rulebook, actor: Actor, request_id: str | None) -> None:
        if self.audit is None:
            return
        old = self.serving
        # Replicas that see the same files change record it once; a later return to an
        # earlier version has other file stamps, so it is recorded again.
        files = (self.path, *(p for p in new.sources if p != self.path))
        stamp = hashlib.sha256(repr(file_stamps(files)).encode()).hexdigest()[:16]
        await self.audit.append([AuditRecord(
            tenant=self.owner, action=AuditAction.RULEBOOK_CHANGE,
            key=f"rulebook:{old.version}:{new.version}:{stamp}", actor=actor, request_id=request_id,
            before=_summary(old), after=_summary(new))])

    def status(self) -> dict[str, object]:
        book = self.serving
        return {"tenant": self.owner, "version": book.version, "path": str(self.path),
                "loaded_at": self.loaded_at,
                "agencies": len(book.codes), "rules": sum(len(a.rules) for a in book.agencies),
                "last_error": self.last_error}


def _summary(book: Rulebook) -> dict[str, object]:
    return {"version": book.version, "agencies": len(book.codes),
            "rules": sum(len(a.rules) for a in book.agencies)}
