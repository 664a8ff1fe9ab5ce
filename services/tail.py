"""``disposisi tail TOPIC``: print a topic's events as they arrive, one JSON object per line,
for an operator's terminal or a pipe into ``jq``. It reads with a plain consumer outside any
group (nothing is committed, no service's offsets move) and works on the embedded broker,
where kcat does not. Ctrl-C stops it cleanly (exit status 0)."""

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TextIO

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.credentials import kafka_client_options
from shared.lag import partitions_of
from shared.settings import Settings

_WAIT_MS = 1000
_UNDECODABLE_CHARS = 2000


class UnknownTopic(LookupError):
    pass


@dataclass(frozen=True)
class TailOptions:
    topic: str
    from_beginning: bool = False
    ticket: str | None = None


def add_tail_command(commands: Any) -> None:
    tail = commands.add_parser(
        "tail", help="print a topic's events, one JSON object per line (Ctrl-C to stop)")
    tail.add_argument("topic", help="e.g. disposisi.escalations or disposisi.agency.DLH")
    tail.add_argument("--from-beginning", action="store_true",
                      help="start at the oldest event kept (default: only new ones)")
    tail.add_argument("--ticket", metavar="ID", help="only events of this tracking number")
    tail.add_argument("--bootstrap-servers", metavar="HOST:PORT",
                      help="default: DISPOSISI_KAFKA_BOOTSTRAP_SERVERS")


def run_tail(args: argparse.Namespace) -> int:
    settings = Settings()
    if args.bootstrap_servers:
        settings = settings.model_copy(update={"kafka_bootstrap_servers": args.bootstrap_servers})
    options = TailOptions(args.topic, args.from_beginning, args.ticket)
    try:
        asyncio.run(tail(settings, options, sys.stdout, sys.stderr))
    except KeyboardInterrupt:
        return 0
    except UnknownTopic as error:
        print(f"disposisi tail: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # piped into `head`, which has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


async def tail(settings: Settings, options: TailOptions, out: TextIO, notices: TextIO) -> None:
    """Print matching events until cancelled (Ctrl-C cancels it under ``asyncio.run``)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None,
                                enable_auto_commit=False, client_id="disposisi-tail",
                                max_partition_fetch_bytes=settings.consumer_fetch_bytes,
                                **kafka_client_options(settings))
    await consumer.start()
    try:
        await _assign(consumer, options, await _partitions(settings, options.topic))
        where = "the oldest event kept" if options.from_beginning else "the end"
        print(f"reading {options.topic} from {where} (Ctrl-C to stop)", file=notices, flush=True)
        while True:
            batches = await consumer.getmany(timeout_ms=_WAIT_MS)
            for records in batches.values():
                for line in lines(records, options.ticket):
                    out.write(line + "\n")
                out.flush()
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()


async def _partitions(settings: Settings, topic: str) -> list[TopicPartition]:
    """The topic's partitions as the brokers describe them (a consumer's own metadata may not
    know a topic yet: on Apache Kafka it answered none). Unknown topic: refused, naming the
    topics there are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers,
                                client_id="disposisi-tail", **kafka_client_options(settings))
    await admin.start()
    try:
        partitions = await partitions_of(admin, [topic])
        if not partitions:
            known = await admin.list_topics()
            listed = ", ".join(sorted(t for t in known if not t.startswith("__")))
            raise UnknownTopic(f"no topic {topic!r} on this broker; topics: {listed}")
        return partitions
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def _assign(consumer: AIOKafkaConsumer, options: TailOptions,
                  partitions: list[TopicPartition]) -> None:
    """Take every partition of the topic and settle where reading starts, before saying so:
    an event published after the notice is never missed."""
    consumer.assign(partitions)
    if options.from_beginning:
        await consumer.seek_to_beginning(*partitions)
    else:
        await consumer.seek_to_end(*partitions)
    for partition in partitions:
        await consumer.position(partition)


def lines(records: Iterable[ConsumerRecord[bytes, bytes]], ticket: str | None) -> list[str]:
    """Each record as one line: the event itself (compact JSON, as published), or, for a
    record that is not JSON, where it is and its start as text. With ``ticket``, only that
    ticket's (by the record's key or the event's ``ticket_id``)."""
    found = []
    for record in records:
        key = record.key.decode(errors="replace") if record.key else None
        raw = record.value or b""
        try:
            event: Any = json.loads(raw)
        except ValueError:
            event = None
        if ticket is not None and key != ticket and not (
                isinstance(event, dict) and event.get("ticket_id") == ticket):
            continue
        if event is None:
            event = {"topic": record.topic, "partition": record.partition, "offset": record.offset,
                     "key": key, "undecodable": raw[:_UNDECODABLE_CHARS].decode(errors="replace")}
        found.append(json.dumps(event, ensure_ascii=False, separators=(",", ":")))
    return found
