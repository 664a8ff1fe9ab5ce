"""A rulebook change that cannot be written to the audit log is not made: the old rulebook
keeps serving and the next check tries again."""

from collections.abc import Sequence
from pathlib import Path

from services.router.flows import Router
from services.router.reload import RulebookReloader
from services.router.rulebook import Rulebook, load_rulebook
from shared.audit import AuditRecord
from shared.audit_store import AuditLog
from shared.settings import Settings
from tests.unit.support import write_yaml
from tests.unit.test_rulebook_reload import book, touch_later


class FakeAudit(AuditLog):
    """Records appends in memory, or fails like an unreachable store."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []
        self.down = True

    async def append(self, records: Sequence[AuditRecord]) -> int:
        if self.down:
            raise ConnectionError("store unreachable")
        self.records += records
        return len(records)


async def no_queues(rulebook: Rulebook) -> None:
    pass


async def test_a_change_the_audit_log_cannot_record_is_not_loaded(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, book("DLH"), "rulebook.yaml")
    audit = FakeAudit()
    reloader = RulebookReloader(path, Router(Settings(), load_rulebook(path)), no_queues, audit=audit)
    old = reloader.router.rulebook.version
    write_yaml(tmp_path, book("DLH", "PUPR"), path.name)
    touch_later(path)

    assert await reloader.check() is False
    assert reloader.router.rulebook.version == old
    assert reloader.last_error is not None and "store unreachable" in reloader.last_error

    audit.down = False
    assert await reloader.check() is True  # tried again although the file did not change again
    [record] = audit.records
    assert (record.action, record.actor.kind) == ("rulebook_change", "system")
    assert record.before == {"version": old, "agencies": 2, "rules": 1}
    assert record.after == {"version": reloader.router.rulebook.version, "agencies": 3, "rules": 2}
