"""The sender of messages to citizens that chat and the mailbox share (shared.sending.SendLoop),
on the embedded store: a failed send is tried again after the backoff and given up after the
last attempt; a sender that dies holding a message leaves it leased, not sent twice; two
senders at once send each message once."""

import asyncio
from collections import Counter

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document
from shared.sending import Backoff, SendLoop
from tests.integration.test_sla_reports import db

pytestmark = pytest.mark.integration
_ = db  # the fixture: a fresh database, dropped afterwards
NOW_DUE = 0.0  # due_epoch of a message to send at once


def message(n: int) -> Document:
    return {"_id": f"m{n}", "to": "+6281234567890", "text": f"pesan {n}", "status": "pending",
            "due_epoch": NOW_DUE, "attempts": 0, "last_error": None, "version": 0}


class Channel:
    """Records every send; fails the first ``failures`` of each message."""

    def __init__(self, failures: int = 0) -> None:
        self.failures, self.tried, self.sent = failures, Counter[str](), Counter[str]()

    async def send(self, doc: Document) -> str | None:
        self.tried[doc["_id"]] += 1
        await asyncio.sleep(0)  # another sender may run meanwhile
        if self.tried[doc["_id"]] <= self.failures:
            return "gateway down " + "x" * 400
        self.sent[doc["_id"]] += 1
        return None


def loop(db: AsyncDatabase[Document], channel: Channel, *, attempts: int = 3,
         lease: float = 3600.0) -> SendLoop:
    # base 0: a failed message is due again at once, so the test needs no waiting
    return SendLoop(db["outgoing"], channel.send, Backoff(0.0, 0.0, attempts),
                    lease_seconds=lease, batch=50, describe=lambda m: f"message {m['_id']}")


async def test_a_failed_send_is_retried_then_given_up_after_the_last_attempt(
        db: AsyncDatabase[Document]) -> None:
    await db["outgoing"].insert_many([message(1)])
    flaky = loop(db, Channel(failures=1))
    assert await flaky.send_due() == 1
    retrying = await db["outgoing"].find_one({"_id": "m1"})
    assert retrying is not None
    assert (retrying["status"], retrying["attempts"]) == ("retrying", 1)
    assert retrying["due_epoch"] is not None and len(retrying["last_error"]) == 300
    await flaky.send_due()
    sent = await db["outgoing"].find_one({"_id": "m1"})
    assert sent is not None
    assert (sent["status"], sent["attempts"], sent["due_epoch"], sent["last_error"]) == (
        "sent", 2, None, None) and sent["sent_at"] is not None

    await db["outgoing"].insert_many([message(2)])
    down = loop(db, Channel(failures=99), attempts=2)
    await down.send_due()
    await down.send_due()
    assert await down.send_due() == 0  # given up: due no more
    failed = await db["outgoing"].find_one({"_id": "m2"})
    assert failed is not None
    assert (failed["status"], failed["attempts"], failed["due_epoch"]) == ("failed", 2, None)


async def test_a_sender_that_dies_mid_send_leaves_the_message_leased_not_sent_twice(
        db: AsyncDatabase[Document]) -> None:
    await db["outgoing"].insert_many([message(1)])

    async def dies(doc: Document) -> str | None:
        raise RuntimeError("the process died mid-send")

    dying = SendLoop(db["outgoing"], dies, Backoff(0.0, 0.0, 3), lease_seconds=3600.0, batch=50,
                     describe=lambda m: m["_id"])
    with pytest.raises(RuntimeError):
        await dying.send_due()
    channel = Channel()
    assert await loop(db, channel).send_due() == 0, "leased until the lease ends"
    assert channel.tried == Counter()
    leased = await db["outgoing"].find_one({"_id": "m1"})
    assert leased is not None and leased["attempts"] == 0
    # The lease ends (set back here rather than waited for): the next sender sends it.
    await db["outgoing"].update_one({"_id": "m1"}, {"$set": {"due_epoch": NOW_DUE}})
    assert await loop(db, channel).send_due() == 1
    assert channel.sent == Counter({"m1": 1})


async def test_two_senders_at_once_send_each_message_once(db: AsyncDatabase[Document]) -> None:
    await db["outgoing"].insert_many([message(n) for n in range(20)])
    channel = Channel()
    await asyncio.gather(loop(db, channel).send_due(), loop(db, channel).send_due())
    assert channel.sent == Counter({f"m{n}": 1 for n in range(20)})
    assert await db["outgoing"].count_documents({"status": "sent"}) == 20
