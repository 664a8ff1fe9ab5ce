"""The fault suite's accounting (benchmarks/faults.py): a repeated event id is a copy, which
consumers drop; the same assignment under a second event id is a duplicate; a poison record
must have exactly one dead letter, found by its place."""

from typing import Any

from benchmarks.faults import count_duplicates, poison_verdict


def assigned(event_id: str, ticket: str, assignment: int = 1) -> dict[str, Any]:
    return {"id": event_id, "type": "ticket.assigned", "ticket_id": ticket,
            "data": {"assignment": assignment}}


def escalated(event_id: str, ticket: str, level: int) -> dict[str, Any]:
    return {"id": event_id, "type": "ticket.escalated", "ticket_id": ticket,
            "data": {"assignment": 1, "level": level, "clock": "response"}}


def test_a_repeated_event_id_is_a_copy_not_a_duplicate() -> None:
    messages = [assigned("a", "T1"), assigned("a", "T1"), assigned("a", "T1"), assigned("b", "T2")]
    assert count_duplicates(messages) == (0, 2)


def test_the_same_assignment_under_another_id_is_a_duplicate() -> None:
    messages = [assigned("a", "T1"), assigned("a2", "T1"), assigned("c", "T1", assignment=2)]
    assert count_duplicates(messages) == (1, 0)


def test_escalation_levels_are_different_things() -> None:
    messages = [escalated("e1", "T1", 1), escalated("e2", "T1", 2), escalated("e2b", "T1", 2)]
    assert count_duplicates(messages) == (1, 0)


def letter(topic: str, partition: int, offset: int) -> dict[str, Any]:
    return {"data": {"source_topic": topic, "partition": partition, "offset": offset}}


def test_each_poison_record_needs_exactly_one_letter_and_nothing_else_gets_one() -> None:
    poisoned = [("t", 0, 5), ("t", 1, 7), ("u", 0, 0)]
    letters = [letter("t", 0, 5), letter("t", 1, 7), letter("t", 1, 7), letter("v", 2, 3)]
    assert poison_verdict(poisoned, letters) == (
        "3 poison records on 2 topics: 1 dead-lettered exactly once; 1 letters for other records")
    assert poison_verdict([], []) == ""
