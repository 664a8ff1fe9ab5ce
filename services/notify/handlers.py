"""The notification service's Kafka subscribers: escalations and their acknowledgements, new
assignments, accepted complaints (the citizen's address) and tickets' public changes (the
replies meant for the citizen). Each only stores; the sender sends."""

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from faststream.kafka import KafkaBroker, KafkaMessage
from pydantic import BaseModel

from services.notify.flows import Notifier
from shared.contracts import (
    Complaint,
    Envelope,
    Escalation,
    EscalationAcknowledged,
    EventType,
    TicketChanged,
    TicketRouted,
    Topics,
)
from shared.kafka import Outgoing, batch_subscriber, consume_batch

SERVICE = "notify"
Data = TypeVar("Data", bound=BaseModel)


def _storing(take: Callable[[Sequence[Envelope[Data]]], Awaitable[None]],
             ) -> Callable[[list[Envelope[Data]]], Awaitable[list[Outgoing]]]:
    async def handle(events: list[Envelope[Data]]) -> list[Outgoing]:
        await take(events)
        return []
    return handle


def register(broker: KafkaBroker, notifier: Notifier) -> None:
    settings = notifier.settings

    @batch_subscriber(broker, Topics.ESCALATIONS, group_id="disposisi-notify-escalations",
                      settings=settings,
                      description="Escalations: a notice to each person holding a role it names.")
    async def on_escalations(body: list[bytes], message: KafkaMessage) -> None:
        await consume_batch(broker, message, Escalation, EventType.TICKET_ESCALATED,
                            _storing(notifier.take_escalations), settings=settings, service=SERVICE)

    @batch_subscriber(broker, Topics.ESCALATION_ACKS, group_id="disposisi-notify-acks",
                      settings=settings,
                      description="Acknowledged escalations: their unsent notices are cancelled.")
    async def on_acks(body: list[bytes], message: KafkaMessage) -> None:
        await consume_batch(broker, message, EscalationAcknowledged,
                            EventType.ESCALATION_ACKNOWLEDGED, _storing(notifier.take_acks),
                            settings=settings, service=SERVICE)

    @batch_subscriber(broker, Topics.ROUTED, group_id="disposisi-notify-routed", settings=settings,
                      description="Routing decisions: the ticket's priority (quiet hours), and "
                                  "new assignments for agencies that want to hear of them.")
    async def on_routed(body: list[bytes], message: KafkaMessage) -> None:
        await consume_batch(broker, message, TicketRouted, EventType.TICKET_ROUTED,
                            _storing(notifier.take_routed), settings=settings, service=SERVICE)

    @batch_subscriber(broker, Topics.RECEIVED, group_id="disposisi-notify-received",
                      settings=settings,
                      description="Accepted complaints: the address of a citizen who gave one and "
                                  "did not ask to stay anonymous or confidential.")
    async def on_received(body: list[bytes], message: KafkaMessage) -> None:
        await consume_batch(broker, message, Complaint, EventType.COMPLAINT_RECEIVED,
                            _storing(notifier.take_received), settings=settings, service=SERVICE)

    @batch_subscriber(broker, Topics.CHANGES, group_id="disposisi-notify-changes", settings=settings,
                      description="Tickets' public changes: the agency's messages to the citizen.")
    async def on_changed(body: list[bytes], message: KafkaMessage) -> None:
        await consume_batch(broker, message, TicketChanged, EventType.TICKET_CHANGED,
                            _storing(notifier.take_changed), settings=settings, service=SERVICE)

    _ = (on_escalations, on_acks, on_routed, on_received, on_changed)
