"""Builders for SLA integration tests: routed and update events as a non-Python client sends
them, and SLA instances wired like app.py but driven turn by turn."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from pymongo import AsyncMongoClient

from services.router.rulebook import load_rulebook
from services.sla.flows import Sla
from services.sla.policy import load_policy
from services.sla.store import TicketStore
from shared.audit_store import AuditLog
from shared.contracts import Envelope, TicketRouted, Topics
from shared.kafka import ensure_topics, make_broker
from shared.mongo import Document
from shared.outbox import OutboxRelay
from shared.settings import Settings


def routed_event(ticket_id: str, submitted_at: datetime, *, agency: str = "DLH", assignment: int = 1,
                 routed_at: datetime | None = None, **extra: Any) -> dict[str, Any]:
    data = {"agency": agency, "agency_name": f"Dinas {agency}", "authority": "kota",
            "priority": "normal", "category": "Sampah", "channel": "web", "text": "Sampah numpuk",
            "submitted_at": submitted_at.isoformat(), "assignment": assignment,
            "routing": {"rulebook_version": "test", "rule_ids": ["dlh.sampah"],
                        "matched_terms": ["sampah"], "score": 1.0, "confidence": 1.0}, **extra}
    return {"id": f"routed-{ticket_id}-{assignment}", "type": "ticket.routed",
            "tenant": "kota-bengkulu", "ticket_id": ticket_id,
            "time": (routed_at or submitted_at).isoformat(), "data": data}


def routed(ticket_id: str, submitted_at: datetime, **kwargs: Any) -> tuple[str, bytes]:
    return ticket_id, json.dumps(routed_event(ticket_id, submitted_at, **kwargs)).encode()


def routed_envelope(ticket_id: str, submitted_at: datetime, **kwargs: Any) -> Envelope[TicketRouted]:
    return Envelope[TicketRouted].model_validate(routed_event(ticket_id, submitted_at, **kwargs))


def update(ticket_id: str, event_id: str, action: str, **fields: Any) -> tuple[str, bytes]:
    event = {"id": event_id, "type": "ticket.update", "tenant": "kota-bengkulu",
             "ticket_id": ticket_id, "data": {"action": action, "actor": "petugas DLH", **fields}}
    return ticket_id, json.dumps(event).encode()


@asynccontextmanager
async def sla_instance(settings: Settings, mongo: AsyncMongoClient[Document], *,
                       store_class: type[TicketStore] = TicketStore) -> AsyncIterator[Sla]:
    """An SLA replica without HTTP or subscribers: the test calls its scheduler turns."""
    store = store_class(mongo[settings.mongodb_database])
    await store.ensure_indexes()
    await ensure_topics(settings, [Topics.ESCALATIONS, Topics.REROUTE, Topics.OPENED,
                                   Topics.CHANGES])
    broker = make_broker(settings, f"sla-test-{settings.instance_id}")
    await broker.connect()
    try:
        relays = [OutboxRelay(c, broker, lease_seconds=settings.outbox_lease_seconds,
                              owner=settings.instance_id)
                  for c in (store.escalations, store.reroutes, store.openings, store.changes)]
        audit = AuditLog(store.db)
        await audit.ensure_indexes()
        yield Sla(settings, load_policy(settings.sla_policy), load_rulebook(settings.rulebook), store,
                  relays[0], relays[1], relays[2], audit, relays[3])
    finally:
        await broker.stop()
