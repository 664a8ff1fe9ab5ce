"""Kafka adapter: broker factory, topic creation, keyed publishing and dead letters."""

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import IllegalStateError, KafkaConnectionError, TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.message import StreamMessage
from opentelemetry.context import Context
from opentelemetry.propagate import extract
from opentelemetry.trace import SpanKind, Tracer
from pydantic import BaseModel, ValidationError
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_delay,
    wait_exponential,
)

from shared.contracts import DeadLetter, Envelope, EventType, Topics, derived_event_id, describe_errors
from shared.credentials import (
    CredentialsError,
    KafkaAccessRefused,
    kafka_broker_security,
    kafka_client_options,
    kafka_refusal,
)
from shared.logs import bound_ids
from shared.settings import Settings
from shared.telemetry import context_for, header_carrier, producer_span, ticket_spans, tracer_for

if TYPE_CHECKING:
    from shared.metrics import Metrics

log = logging.getLogger(__name__)
Data = TypeVar("Data", bound=BaseModel)


@dataclass(frozen=True)
class Outgoing:
    """One event to publish, keyed by its ticket id so a ticket's events stay in order."""

    topic: str
    event: Envelope[Any]


@dataclass(frozen=True)
class Incoming:
    """One consumed record: the raw bytes plus where they came from (for dead letters)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


def make_broker(settings: Settings, service: str, *, metrics: "Metrics | None" = None) -> KafkaBroker:
    # acks="all" by default: an accepted complaint must survive a broker failover. Idempotence
    # is a setting: on for real Kafka (no duplicates from producer retries), off for the
    # embedded broker, which rejects InitProducerId (see STACK.md); consumers dedupe on event
    # ids either way.
    return KafkaBroker(
        bootstrap_list(settings),
        client_id=f"disposisi-{service}",
        acks=producer_acks(settings),
        enable_idempotence=settings.kafka_idempotent_producer,
        security=kafka_broker_security(settings),
        logger=logging.getLogger(f"disposisi.{service}.kafka"),
        log_level=logging.DEBUG,  # a line per consumed batch is noise at INFO
        # Events consumed and produced per topic, dead letters by reason (shared/metrics.py).
        middlewares=metrics.kafka_middlewares() if metrics else (),
    )


def bootstrap_list(settings: Settings) -> list[str]:
    """The bootstrap servers as a list. faststream wraps a string in a list whole, so
    "a:9092,b:9092" would reach aiokafka as one unresolvable host name."""
    return [server.strip() for server in settings.kafka_bootstrap_servers.split(",") if server.strip()]


def producer_acks(settings: Settings) -> Literal["all"] | int:
    """The ``acks`` setting as Kafka clients take it ("all", or the number 0 or 1)."""
    return "all" if settings.kafka_acks == "all" else int(settings.kafka_acks)


async def raw_bodies(message: StreamMessage[Any]) -> Any:
    """Decoder that leaves bodies as bytes: each record is validated on its own, so one bad
    record goes to the dead-letter topic instead of failing its whole batch."""
    return message.body


def incoming_records(raw_message: Any) -> list[Incoming]:
    records = raw_message if isinstance(raw_message, tuple | list) else (raw_message,)
    return [
        Incoming(topic=r.topic, partition=r.partition, offset=r.offset, key=r.key,
                 value=r.value or b"", headers=tuple(r.headers or ()))
        for r in records
    ]


async def publish_all(broker: KafkaBroker, outgoing: Sequence[Outgoing]) -> None:
    await publish_raw(broker, [(o.topic, o.event.ticket_id, o.event.to_bytes(), o.event.type.value)
                               for o in outgoing])


async def publish_raw(broker: KafkaBroker, messages: Sequence[tuple[str, str | None, bytes, str]],
                      *, traces: Sequence[Mapping[str, str] | None] | None = None,
                      ) -> list[tuple[int, int]]:
    """Publish (topic, key, JSON bytes, event type) messages in flight together and wait for
    every acknowledgement; raise if any failed. Returns where the broker says each message
    was put: (partition, offset), in the order given. With tracing on, each message is sent
    under a span of its own, child of ``traces[i]`` (the context an outbox document was
    stored under) or else of its ticket's current span, and carries that span's headers."""
    tracer = tracer_for(broker)
    pending, spans = [], []
    for index, (topic, key, value, event_type) in enumerate(messages):
        headers = {"content-type": "application/json", "event-type": event_type}
        if tracer is not None:
            stored = traces[index] if traces else None
            parent = extract(stored) if stored else context_for(key)
            span, carrier = producer_span(tracer, topic, parent, key, event_type)
            spans.append(span)
            headers.update(carrier)
        pending.append(await broker.publish(
            value, topic, key=key.encode() if key else None, headers=headers, no_confirm=True,
        ))
    try:
        acknowledged = await asyncio.gather(*pending)
    finally:
        for span in spans:
            span.end()
    return [(meta.partition, meta.offset) for meta in acknowledged]


# What a record's content can cause (invalid, refused, naming something unknown): it fails
# the same way on every redelivery, so the record is dead-lettered. Anything else (the store,
# the broker, the network) is retried by redelivering the batch (NACK).
RECORD_FAULTS: tuple[type[Exception], ...] = (ValueError, LookupError, TypeError)
_KEY_CHARS = 200


@dataclass(frozen=True)
class Decoded(Generic[Data]):
    record: Incoming
    event: Envelope[Data]


def decode_event(record: Incoming, model: type[Data], expected: EventType, *,
                 settings: Settings, needs_ticket: bool = True) -> Envelope[Data]:
    """Decode one record; raise ValueError naming the problem (the dead-letter reason)."""
    size = len(record.value) + len(record.key or b"")
    if size > settings.max_record_bytes:
        raise ValueError(f"record is {size} bytes, over the limit of {settings.max_record_bytes} "
                         "bytes (DISPOSISI_MAX_RECORD_BYTES)")
    try:
        event = Envelope[model].model_validate_json(record.value)  # type: ignore[valid-type]
    except ValidationError as error:
        raise ValueError(f"invalid {expected.value}: {describe_errors(error.errors())}") from error
    if event.type is not expected:
        raise ValueError(f"type: expected {expected.value!r}, got {event.type.value!r}")
    if needs_ticket and not event.ticket_id:
        raise ValueError("ticket_id: required")
    return event


def decode_batch(records: Sequence[Incoming], model: type[Data], expected: EventType, *,
                 settings: Settings, service: str, needs_ticket: bool = True,
                 ) -> tuple[list[Decoded[Data]], list[Outgoing]]:
    """The batch's valid events, and a dead letter for each record that is not one."""
    decoded: list[Decoded[Data]] = []
    rejected: list[Outgoing] = []
    for record in records:
        try:
            decoded.append(Decoded(record, decode_event(record, model, expected, settings=settings,
                                                        needs_ticket=needs_ticket)))
        except ValueError as error:
            rejected.append(dead_letter(settings, service, record, str(error)))
    return decoded, rejected


async def consume_batch(broker: KafkaBroker, message: KafkaMessage, model: type[Data],
                        expected: EventType,
                        handle: Callable[[list[Envelope[Data]]], Awaitable[list[Outgoing]]], *,
                        settings: Settings, service: str, needs_ticket: bool = True) -> None:
    """How a consumer takes a batch: decode each record; handle the valid ones together (the
    handler must be idempotent: a redelivered batch is handled again); if a record's content
    makes that fail, handle them one by one and dead-letter the culprits; publish the effects,
    and the dead letters last. A failure of anything else raises (the batch is redelivered)
    before any dead letter is sent, so each poison record is dead-lettered once."""
    decoded, rejected = decode_batch(incoming_records(message.raw_message), model, expected,
                                     settings=settings, service=service, needs_ticket=needs_ticket)
    with consumed(tracer_for(broker), decoded):
        try:
            outgoing = await handle([d.event for d in decoded]) if decoded else []
        except RECORD_FAULTS:
            outgoing = []
            for item in decoded:
                try:
                    with bound_ids(item.event):
                        outgoing += await handle([item.event])
                except RECORD_FAULTS as error:
                    log.warning("record refused: %s", error, exc_info=True)
                    rejected.append(dead_letter(settings, service, item.record, refusal(error)))
        await publish_all(broker, outgoing)
        log.debug("handled %d %s events, published %d", len(decoded), expected.value, len(outgoing))
    await publish_all(broker, rejected)


@contextlib.contextmanager
def consumed(tracer: Tracer | None, decoded: Sequence[Decoded[Any]]) -> Iterator[None]:
    """While a batch is handled: a consume span per record (child of the span that produced
    it), and, for a batch of one, its ticket and event ids bound to every log line."""
    spans = [] if tracer is None else [_consume_span(d) for d in decoded]
    name = f"{decoded[0].record.topic} process" if decoded else ""
    ids = bound_ids(decoded[0].event) if len(decoded) == 1 else contextlib.nullcontext()
    with ticket_spans(tracer, name, spans, kind=SpanKind.CONSUMER), ids:
        yield


def _consume_span(item: Decoded[Any]) -> tuple[str, Context, dict[str, Any]]:
    record, event = item.record, item.event
    return (event.ticket_id or event.id, extract(header_carrier(record.headers)),
            {"messaging.system": "kafka", "messaging.operation.type": "process",
             "messaging.destination.name": record.topic, "messaging.kafka.offset": record.offset,
             "messaging.destination.partition.id": str(record.partition),
             "disposisi.event_id": event.id, "disposisi.event_type": event.type.value})


def refusal(error: Exception) -> str:
    """A dead letter's reason for a record that decoded but could not be processed."""
    if isinstance(error, ValueError):
        return str(error)
    return f"not processed: {type(error).__name__}: {error}"


def dead_letter(settings: Settings, service: str, record: Incoming, reason: str) -> Outgoing:
    """The dead letter of one record: its place (topic, partition, offset), the reason and the
    record itself, cut short when too large to publish, with the original size and SHA-256.
    Its id derives from the place, so a repeat is recognisable as the same letter."""
    payload, truncated = _letter_payload(record.value, settings.deadletter_payload_bytes)
    letter = DeadLetter(
        source_topic=record.topic, partition=record.partition, offset=record.offset,
        key=record.key.decode(errors="replace")[:_KEY_CHARS] if record.key else None,
        service=service, reason=reason[:2000], payload=payload, payload_truncated=truncated,
        payload_size=len(record.value), payload_sha256=hashlib.sha256(record.value).hexdigest(),
    )
    event_id = derived_event_id("deadletter", service, record.topic, str(record.partition),
                                str(record.offset))
    event = Envelope[DeadLetter](id=event_id, type=EventType.DEAD_LETTER, tenant=settings.tenant,
                                 ticket_id=None, data=letter)
    log.warning("dead-lettered %s[%s]@%s: %s", record.topic, record.partition, record.offset,
                reason[:500])
    return Outgoing(Topics.DEADLETTER, event)


def _letter_payload(value: bytes, limit: int) -> tuple[str, bool]:
    """The record as text, or its start when the whole would take more than ``limit`` bytes
    once escaped in JSON (control characters take six bytes there, a quote two)."""
    text = value.decode(errors="replace")
    size = _json_size(text)
    if size <= limit:
        return text, False
    encoded = text.encode()
    cut = len(encoded) * limit // size
    while True:
        start = encoded[:cut].decode(errors="ignore")  # never half a character
        size = _json_size(start)
        if size <= limit:
            return start, True
        cut = min(cut - 1, cut * limit // size)


def _json_size(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode()) - 2


async def ensure_topics(settings: Settings, topics: Iterable[str], *,
                        wait_seconds: float = 60.0) -> None:
    """Create missing topics; waits for the broker to come up (a service may start first),
    but not when it refuses this client's credentials or TLS: that raises KafkaAccessRefused
    at once, naming the cause, instead of retrying what cannot pass."""
    names = sorted(set(topics))
    async for attempt in AsyncRetrying(
        stop=stop_after_delay(wait_seconds), wait=wait_exponential(0.2, max=3),
        retry=retry_if_exception_type(Exception) & retry_if_not_exception_type(CredentialsError),
        reraise=True,
    ):
        with attempt:
            try:
                await _create_missing(settings, names)
            except KafkaConnectionError:
                refused = await kafka_refusal(settings)
                if refused:
                    raise KafkaAccessRefused(refused) from None
                raise


async def _create_missing(settings: Settings, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers,
                                client_id="disposisi-admin", **kafka_client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [new_topic(settings, n) for n in names if n not in existing]
        if missing:
            # Another service may create them between our list and our create.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
    finally:
        await admin.close()


def new_topic(settings: Settings, name: str) -> NewTopic:
    """A topic as Disposisi creates it: partitions and replicas from settings, and
    min.insync.replicas so an acks=all write is refused rather than kept on too few copies."""
    configs: dict[str, str] = {}  # none at the default: the embedded broker gets no configs
    if settings.kafka_min_insync_replicas > 1:
        configs["min.insync.replicas"] = str(settings.kafka_min_insync_replicas)
    return NewTopic(name, settings.topic_partitions, settings.kafka_replication_factor,
                    topic_configs=configs)


async def kafka_reachable(settings: Settings, within: float = 3.0) -> bool:
    """Health probe on a client of its own: a probe cancelled mid-request must not leave the
    service's producer or consumers in a broken state (faststream's ping shares their client,
    and after a timed-out ping during an outage the producer never recovered)."""
    try:
        options = kafka_client_options(settings)
    except CredentialsError:  # an unreadable password or CA file: not ready, and not a crash
        return False
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers,
                                client_id="disposisi-health", request_timeout_ms=int(within * 1000),
                                **options)
    try:
        async with asyncio.timeout(within):
            await admin.start()
            await admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


_FETCH_MAX_BYTES = 50 * 1024 * 1024  # aiokafka's default for a whole fetch
BatchHandler = Callable[[list[bytes], KafkaMessage], Awaitable[None]]


def batch_subscriber(broker: KafkaBroker, topic: str, *, group_id: str, settings: Settings,
                     description: str) -> Callable[[BatchHandler], object]:
    """How every Disposisi consumer subscribes: in batches of raw records (each validated on
    its own), from the earliest offset (a new group must not skip what was published before
    it joined), redelivered on failure (NACK) instead of committed past."""
    subscriber: Callable[[BatchHandler], object] = broker.subscriber(
        topic, group_id=group_id, batch=True, auto_offset_reset="earliest", decoder=raw_bodies,
        max_records=settings.consume_batch_size, ack_policy=AckPolicy.NACK_ON_ERROR,
        # The embedded broker answers a fetch only when its wait expires; a short wait keeps
        # the time from submission to the agency's queue low when traffic is light.
        fetch_max_wait_ms=settings.fetch_max_wait_ms, batch_timeout_ms=settings.fetch_max_wait_ms,
        # Able to fetch a record larger than any it accepts: an oversized record must be read
        # to be dead-lettered, or it would block its partition.
        max_partition_fetch_bytes=settings.consumer_fetch_bytes,
        fetch_max_bytes=max(_FETCH_MAX_BYTES, settings.consumer_fetch_bytes),
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        description=description,
    )
    return subscriber


# How often each consumer's positions are compared with its partitions' ends (local state: no
# request to the broker).
LOG_REPLACED_CHECK_SECONDS = 0.5
_POSITION_WAIT_SECONDS = 0.2  # a position being reset is not waited for


def past_the_end(position: int | None, highwater: int | None) -> bool:
    """Whether a consumer's next offset lies beyond the partition's end: the log it read was
    replaced by a shorter one (the embedded broker restarted with an empty log)."""
    return position is not None and highwater is not None and position > highwater


async def rewind_replaced_logs(consumer: AIOKafkaConsumer) -> list[TopicPartition]:
    """Move a consumer that waits past a partition's end back to the partition's beginning;
    returns the partitions moved.

    Kafka answers a fetch past the end with OFFSET_OUT_OF_RANGE and the consumer starts again
    from ``auto_offset_reset`` (the earliest offset). Tansu answers with no records and no
    error: a consumer still at its offset from before the broker's restart (kept in memory,
    or committed again to the new broker) skips every record the new log holds below that
    offset, a complaint or a ticket's opening among them, until the log grows past it. What
    the new log holds was all published since the restart, and consumers treat a repeat as
    one event, so it is read again from its start."""
    moved = []
    for tp in consumer.assignment():
        # Reassigned meanwhile, or its position being reset: checked again on the next turn.
        with contextlib.suppress(IllegalStateError, AssertionError, TimeoutError):
            position = await asyncio.wait_for(consumer.position(tp), _POSITION_WAIT_SECONDS)
            if past_the_end(position, consumer.highwater(tp)):
                await consumer.seek_to_beginning(tp)
                moved.append(tp)
    return moved


Membership = tuple[int, str]  # a group member's generation and member id


def membership(consumer: AIOKafkaConsumer) -> Membership:
    """Which membership of its group the consumer holds now (aiokafka shows it on its group
    coordinator only); (-1, "") while it (re)joins."""
    coordinator = getattr(consumer, "_coordinator", None)
    return (getattr(coordinator, "generation", -1), getattr(coordinator, "member_id", ""))


class ReplacedLogWatch:
    """Keeps consumers off offsets of a log the broker no longer has.

    Rewinding once is not enough: the restarted broker lost its consumer groups too, so every
    member joins again, and an offset commit still in flight from before the restart (the
    offsets of the lost log) can reach the new broker first and be accepted. The rejoined
    member then starts from that commit, which may lie inside the new log by then: not past
    its end, so not seen by ``rewind_replaced_logs``, and everything below is skipped (18
    complaints in a row seen in one run). So a consumer found past the end is rewound again,
    to the beginning of every partition, once it holds a new membership."""

    def __init__(self) -> None:
        self.rejoining: dict[int, Membership] = {}  # id(consumer): its membership when found

    async def check(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        """The partitions moved to their beginning this turn."""
        moved = await rewind_replaced_logs(consumer)
        if moved:
            self.rejoining[id(consumer)] = membership(consumer)
            return moved
        found_in = self.rejoining.get(id(consumer))
        now = membership(consumer)
        if found_in is None or now == found_in or now[0] < 0:
            return []
        del self.rejoining[id(consumer)]
        partitions = sorted(consumer.assignment())
        with contextlib.suppress(IllegalStateError):
            if partitions:
                await consumer.seek_to_beginning(*partitions)
        return partitions
