"""Which store errors of a ticket's transaction are a conflict to retry on a fresh read (the
SLA update then re-reads the ticket and finds its event applied, or applies it again), and which
stay errors. NX-27017 aborted concurrent sessions' transactions with "no such savepoint", which
answered an agency's update with 500 under load."""

from pymongo.errors import OperationFailure

from shared.transactions import transaction_gave_up


def test_the_embedded_stores_lost_savepoint_is_retried() -> None:
    error = OperationFailure("no such savepoint: session_tx_0184e8c43231", 0,
                             {"ok": 0, "errmsg": "no such savepoint: session_tx_0184e8c43231"})
    assert transaction_gave_up(error)


def test_a_transient_transaction_error_is_retried() -> None:
    error = OperationFailure("WriteConflict", 112, {"ok": 0, "errmsg": "WriteConflict",
                                                    "errorLabels": ["TransientTransactionError"]})
    assert transaction_gave_up(error)


def test_other_store_errors_stay_errors() -> None:
    error = OperationFailure("not authorized", 13, {"ok": 0, "errmsg": "not authorized on db"})
    assert not transaction_gave_up(error)
