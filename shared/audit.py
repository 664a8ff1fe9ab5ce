"""The audit trail's entries and their hash chain. Pure: no MongoDB, no Kafka.

Every state change becomes one entry: who (``Actor``), what (``action``), on which ticket,
the changed state fields before and after, when, and the request that caused it. Entries of
a tenant form one chain: entry ``n`` carries ``seq = n`` and the hash of entry ``n - 1``, and
its own hash covers all its fields. Editing, removing or inserting an entry breaks the chain
at that point, which ``verify_chain`` reports.

``before`` / ``after`` hold ids and state fields only (status, agency, assignment, priority,
clock levels, versions), never a reporter's identity or a complaint's text.
"""

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts import UpdateAction

GENESIS = "0" * 64  # the prev_hash of a tenant's first entry

ActorKind = Literal["person", "service", "channel", "citizen", "system"]


class Actor(BaseModel):
    """Who made a change. Over HTTP it is the authenticated caller (``Access.audit_actor`` of
    ``shared.auth``: a signed-in person, a channel's or a service's API key); the administrator
    CLI records the OS user running it. Only what arrives over Kafka from outside (an agency
    system's update naming its officer) is merely claimed (role ``unverified``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(max_length=200, description="Username, service or channel name.")
    role: str = Field(max_length=60, description="Role when acting; 'unverified' when only claimed.")
    agency: str | None = Field(None, max_length=40, description="Agency code the actor is bound to.")
    kind: ActorKind

    @property
    def label(self) -> str:
        """How events name the actor, like ``Principal.actor``: ``dlh.andi (officer, DLH)``."""
        detail = f"{self.role}, {self.agency}" if self.agency else self.role
        return f"{self.name} ({detail})"[:120]

    @classmethod
    def service(cls, name: str) -> "Actor":
        return cls(name=name, role="service", kind="service")

    @classmethod
    def system(cls, name: str = "system") -> "Actor":
        return cls(name=name, role="system", kind="system")

    @classmethod
    def channel(cls, name: str) -> "Actor":
        return cls(name=name, role="channel", kind="channel")

    @classmethod
    def citizen(cls) -> "Actor":
        return cls(name="citizen", role="citizen", kind="citizen")

    @classmethod
    def claimed(cls, name: str | None, *, role: str = "unverified",
                agency: str | None = None) -> "Actor":
        """A person known only by the name a caller wrote into a request (no sign-in yet)."""
        return cls(name=name or "unknown", role=role, agency=agency, kind="person")


class AuditAction(StrEnum):
    SUBMISSION = "submission"
    ROUTING = "routing"
    ASSIGNMENT = "assignment"
    REJECTION = "rejection"
    MANUAL_ASSIGNMENT = "manual_assignment"
    REVIEW_ACCEPTED = "review_accepted"  # the desk kept a decision the second opinion disputed
    PAUSE = "pause"
    RESUME = "resume"
    ESCALATION = "escalation"
    ESCALATION_ACK = "escalation_ack"
    RULEBOOK_CHANGE = "rulebook_change"
    POLICY_CHANGE = "policy_change"
    USER_CHANGE = "user_change"
    KEY_CHANGE = "key_change"


_UPDATE_ACTIONS = {
    UpdateAction.REJECTED: AuditAction.REJECTION,
    UpdateAction.NEEDS_INFO: AuditAction.PAUSE,
    UpdateAction.CITIZEN_REPLIED: AuditAction.RESUME,
}


def update_action(action: UpdateAction) -> str:
    """The audit action of a ticket update: pauses, resumes and rejections by their own name
    (they are what gets gamed), every other one as ``update:<action>``."""
    special = _UPDATE_ACTIONS.get(action)
    return special.value if special else f"update:{action.value}"


def is_known_action(action: str) -> bool:
    if action in AuditAction.__members__.values():
        return True
    prefix, _, rest = action.partition(":")
    return prefix == "update" and rest in UpdateAction.__members__.values()


Fields = dict[str, Any]  # small JSON-ready dicts: str, int, float, bool, None, lists, dicts


@dataclass(frozen=True)
class AuditRecord:
    """A change to append; the log gives it its place in the chain. ``key`` makes appends
    idempotent: an entry with the same key (e.g. derived from the causing event's id, so a
    redelivered event maps to the same key) is appended once."""

    tenant: str
    key: str
    action: str
    actor: Actor
    ticket_id: str | None = None
    before: Fields | None = None
    after: Fields | None = None
    request_id: str | None = None
    time: datetime | None = None  # defaults to now; kept to the millisecond BSON dates hold

    def __post_init__(self) -> None:
        if not is_known_action(self.action):
            raise ValueError(f"unknown audit action {self.action!r}")


class AuditEntry(TypedDict):
    """One stored entry (``audit_log`` documents, without ``_id``)."""

    tenant: str
    seq: int
    time: datetime
    actor: dict[str, Any]
    action: str
    ticket_id: str | None
    before: Fields | None
    after: Fields | None
    request_id: str | None
    key: str
    prev_hash: str
    hash: str


def to_millis(when: datetime) -> datetime:
    """UTC, truncated to what a BSON date keeps, so the stored time hashes as it was sealed."""
    utc = when.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


def _time_text(when: datetime | str) -> str:
    if isinstance(when, str):  # a store that wrote the date as text still hashes the same
        when = datetime.fromisoformat(when)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return to_millis(when).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


HASHED = ("tenant", "seq", "time", "actor", "action", "ticket_id", "before", "after",
          "request_id", "key", "prev_hash")


def canonical_json(entry: Mapping[str, Any]) -> bytes:
    """The bytes an entry's hash covers: its fields (all but ``hash`` and ``_id``) as JSON
    with sorted keys, no spaces, UTF-8, the time as ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    fields = {name: entry.get(name) for name in HASHED}
    fields["time"] = _time_text(entry["time"])
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode()


def entry_hash(entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(entry)).hexdigest()


def seal(record: AuditRecord, *, seq: int, prev_hash: str, now: datetime) -> AuditEntry:
    """The record as entry ``seq`` of its tenant's chain, after the entry hashed ``prev_hash``."""
    entry = AuditEntry(
        tenant=record.tenant, seq=seq, time=to_millis(record.time or now),
        actor=record.actor.model_dump(), action=record.action, ticket_id=record.ticket_id,
        before=record.before, after=record.after, request_id=record.request_id, key=record.key,
        prev_hash=prev_hash, hash="")
    entry["hash"] = entry_hash(entry)
    return entry


def seal_all(records: Iterable[AuditRecord], *, seq: int, prev_hash: str,
             now: datetime) -> list[AuditEntry]:
    """Records chained after entry ``seq`` (whose hash is ``prev_hash``)."""
    sealed: list[AuditEntry] = []
    for record in records:
        entry = seal(record, seq=seq + 1, prev_hash=prev_hash, now=now)
        sealed.append(entry)
        seq, prev_hash = entry["seq"], entry["hash"]
    return sealed


@dataclass(frozen=True)
class BrokenLink:
    seq: int
    problem: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.problem}"


@dataclass(frozen=True)
class ChainCheck:
    """What a walk of a chain found: entries checked, the last good link, the first broken one."""

    count: int
    head_seq: int
    head_hash: str
    broken: BrokenLink | None

    @property
    def ok(self) -> bool:
        return self.broken is None


class ChainWalker:
    """Checks entries one at a time, in ``seq`` order from 1; remembers the last good link."""

    def __init__(self) -> None:
        self.count, self.seq, self.prev = 0, 0, GENESIS

    def step(self, entry: Mapping[str, Any]) -> BrokenLink | None:
        """None when ``entry`` links onto the chain so far; otherwise what is wrong with it: a
        missing or repeated seq (gap), a ``prev_hash`` that is not the previous entry's hash
        (prev mismatch), or a stored hash that is not the hash of its fields (hash mismatch)."""
        expected, found = self.seq + 1, entry.get("seq")
        if found != expected:
            return BrokenLink(expected, f"gap: expected seq {expected}, found {found}")
        if entry.get("prev_hash") != self.prev:
            return BrokenLink(expected, f"prev mismatch: prev_hash {_short(entry.get('prev_hash'))} "
                                        f"is not the hash of seq {self.seq} ({_short(self.prev)})")
        try:
            computed = entry_hash(entry)
        except (KeyError, TypeError, ValueError) as error:
            return BrokenLink(expected, f"unreadable entry: {error}")
        if entry.get("hash") != computed:
            return BrokenLink(expected, f"hash mismatch: stored {_short(entry.get('hash'))}, "
                                        f"its fields hash to {_short(computed)}")
        self.count, self.seq, self.prev = self.count + 1, expected, computed
        return None

    def result(self, broken: BrokenLink | None = None) -> ChainCheck:
        return ChainCheck(self.count, self.seq, self.prev, broken)


def _short(value: object) -> str:
    return f"{str(value)[:12]}…"


def verify_chain(entries: Iterable[Mapping[str, Any]]) -> ChainCheck:
    """Walk entries in ``seq`` order and stop at the first broken link."""
    walker = ChainWalker()
    for entry in entries:
        broken = walker.step(entry)
        if broken is not None:
            return walker.result(broken)
    return walker.result()
