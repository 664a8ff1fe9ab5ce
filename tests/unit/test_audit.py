"""The audit trail's pure parts: canonical hashing, sealing a chain, and finding its first
broken link."""

import copy
import hashlib
import itertools
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from shared.audit import (
    GENESIS,
    Actor,
    AuditAction,
    AuditRecord,
    canonical_json,
    entry_hash,
    is_known_action,
    seal,
    seal_all,
    update_action,
    verify_chain,
)
from shared.auth import Access
from shared.contracts import UpdateAction
from shared.permissions import Principal, Scope

NOW = datetime(2026, 11, 30, 8, 15, 30, 123456, tzinfo=UTC)


def record(key: str, **fields: Any) -> AuditRecord:
    return AuditRecord(**{"tenant": "kota-bengkulu", "key": key, "action": "update:acknowledged",
                          "actor": Actor.claimed("petugas DLH"), "ticket_id": "BKL-261130-AAAA",
                          "before": {"status": "assigned"}, "after": {"status": "acknowledged"},
                          **fields})


def chain(n: int) -> list[dict[str, Any]]:
    return [dict(e) for e in seal_all([record(f"k{i}") for i in range(n)], seq=0,
                                      prev_hash=GENESIS, now=NOW)]


def test_canonical_json_is_sorted_compact_utf8_and_millisecond_utc() -> None:
    entry = seal(record("k", after={"status": "ditolak", "nama_opd": "Dinas Lingkungan Hidup é"}),
                 seq=1, prev_hash=GENESIS, now=NOW)
    text = canonical_json(entry).decode()
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False)
    assert '"time":"2026-11-30T08:15:30.123Z"' in text and "é" in text
    assert '"hash"' not in text  # the hash covers everything but itself
    assert entry["hash"] == hashlib.sha256(text.encode()).hexdigest()


def test_the_same_instant_hashes_the_same_in_any_form_a_store_returns() -> None:
    entry = seal(record("k"), seq=1, prev_hash=GENESIS, now=NOW)
    wib = timezone(timedelta(hours=7))
    as_text = {**entry, "time": "2026-11-30T08:15:30.123+00:00"}
    as_local = {**entry, "time": entry["time"].astimezone(wib)}
    as_naive = {**entry, "time": entry["time"].replace(tzinfo=None)}
    assert entry_hash(as_text) == entry_hash(as_local) == entry_hash(as_naive) == entry["hash"]


def test_every_field_is_covered_by_the_hash() -> None:
    entry = seal(record("k", request_id="req-1"), seq=1, prev_hash=GENESIS, now=NOW)
    changes = {"tenant": "other", "seq": 2, "time": NOW + timedelta(seconds=1),
               "actor": {**entry["actor"], "role": "admin"}, "action": "update:resolved",
               "ticket_id": "BKL-X", "before": {"status": "resolved"}, "after": {},
               "request_id": "req-2", "key": "k2", "prev_hash": "1" * 64}
    for field, value in changes.items():
        assert entry_hash({**entry, field: value}) != entry["hash"], field


def test_sealed_records_link_in_order() -> None:
    entries = chain(4)
    assert [e["seq"] for e in entries] == [1, 2, 3, 4]
    assert entries[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(entries))
    check = verify_chain(entries)
    assert (check.ok, check.count, check.head_seq, check.head_hash) == (True, 4, 4, entries[-1]["hash"])


def test_an_empty_chain_is_whole() -> None:
    check = verify_chain([])
    assert (check.ok, check.count, check.head_hash) == (True, 0, GENESIS)


@pytest.mark.parametrize("edit, seq, problem", [
    (lambda es: es[2]["actor"].update(name="Walikota (spoofed)"), 3, "hash mismatch"),
    (lambda es: es[2].update(after={"status": "resolved"}), 3, "hash mismatch"),
    (lambda es: es[2].update(hash="0" * 64), 3, "hash mismatch"),
    (lambda es: es[2].update(prev_hash="f" * 64), 3, "prev mismatch"),
    (lambda es: es.pop(2), 3, "gap"),
    (lambda es: es.insert(2, copy.deepcopy(es[1])), 3, "gap"),
    (lambda es: es[0].update(seq=0), 1, "gap"),
])
def test_the_first_broken_link_is_named(edit: Any, seq: int, problem: str) -> None:
    entries = chain(6)
    edit(entries)
    check = verify_chain(entries)
    assert check.broken is not None
    assert (check.broken.seq, check.broken.problem.split(":")[0]) == (seq, problem)
    assert check.count == seq - 1
    assert str(check.broken).startswith(f"seq {seq}: {problem}")


def test_a_rehashed_edit_breaks_the_next_link() -> None:
    entries = chain(5)
    entries[1]["after"] = {"status": "resolved"}
    entries[1]["hash"] = entry_hash(entries[1])
    check = verify_chain(entries)
    assert check.broken is not None and check.broken.seq == 3
    assert check.broken.problem.startswith("prev mismatch")


def test_an_unreadable_entry_is_a_broken_link_not_a_crash() -> None:
    entries = chain(3)
    del entries[1]["time"]
    check = verify_chain(entries)
    assert check.broken is not None and check.broken.seq == 2
    assert check.broken.problem.startswith("unreadable entry")


def test_update_actions_name_pauses_resumes_and_rejections() -> None:
    assert update_action(UpdateAction.NEEDS_INFO) == AuditAction.PAUSE
    assert update_action(UpdateAction.CITIZEN_REPLIED) == AuditAction.RESUME
    assert update_action(UpdateAction.REJECTED) == AuditAction.REJECTION
    assert update_action(UpdateAction.RESOLVED) == "update:resolved"
    assert all(is_known_action(update_action(a)) for a in UpdateAction)
    assert not is_known_action("update:teleported") and not is_known_action("deleted")
    with pytest.raises(ValueError, match="unknown audit action 'deleted'"):
        record("k", action="deleted")


def test_actors_are_typed() -> None:
    assert Actor.claimed(None).model_dump() == {"name": "unknown", "role": "unverified",
                                                "agency": None, "kind": "person"}
    assert Actor.channel("web").kind == "channel" and Actor.service("router").kind == "service"
    assert Actor.system().kind == "system" and Actor.citizen().kind == "citizen"
    with pytest.raises(ValidationError):
        Actor(name="x", role="officer", kind="robot")


def test_cli_lines_name_the_step_and_the_actor() -> None:
    from shared.audit_cli import describe_check, entry_json, entry_line

    officer = Actor(name="siti.dlh", role="officer", agency="DLH", kind="person")
    [entry] = seal_all([record("k", actor=officer, request_id="req-9")], seq=0, prev_hash=GENESIS,
                       now=NOW)
    line = entry_line(dict(entry))
    assert line == ('#1 2026-11-30 08:15:30.123000+00:00 update:acknowledged BKL-261130-AAAA by '
                    'siti.dlh (person, officer, DLH) {"status":"assigned"} -> '
                    '{"status":"acknowledged"} request req-9')
    assert json.loads(entry_json(dict(entry)))["hash"] == entry["hash"]
    broken = verify_chain([{**entry, "seq": 2}])
    assert describe_check("t", broken) == ("audit log of t: BROKEN at seq 1: gap: expected seq 1, "
                                           "found 2 (0 entries before it verified)")
    assert describe_check("t", verify_chain([entry])).startswith("audit log of t: OK, 1 entries")


def test_cli_lines_say_a_key_s_kind_once_and_a_creation_has_no_before() -> None:
    from shared.audit_cli import entry_line

    made = record("k", action=AuditAction.KEY_CHANGE, actor=Actor.channel("web"), ticket_id=None,
                  before=None, after={"key_id": "ab12", "revoked": False})
    [entry] = seal_all([made], seq=0, prev_hash=GENESIS, now=NOW)
    assert entry_line(dict(entry)).endswith(
        ' key_change - by web (channel) -> {"key_id":"ab12","revoked":false}')


@pytest.mark.parametrize(("principal", "expected"), [
    (Principal("user", "dlh.andi", "t", "officer", "DLH"),
     {"name": "dlh.andi", "role": "officer", "agency": "DLH", "kind": "person"}),
    (Principal("user", "admin.rina", "t", "admin"),
     {"name": "admin.rina", "role": "admin", "agency": None, "kind": "person"}),
    (Principal("channel", "whatsapp", "t", "channel"),
     {"name": "whatsapp", "role": "channel", "agency": None, "kind": "channel"}),
    (Principal("service", "sla", "t", "service"),
     {"name": "sla", "role": "service", "agency": None, "kind": "service"}),
])
def test_the_audit_actor_is_the_authenticated_principal(principal: Principal,
                                                        expected: dict[str, Any]) -> None:
    access = Access(principal, Scope.TENANT)
    assert access.audit_actor.model_dump() == expected
    assert access.audit_actor.label == access.actor  # events name the caller as before
