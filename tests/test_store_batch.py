"""TableBatch: the feed thread's hot-path buffer must survive take() without re-binding."""

from __future__ import annotations

import pytest

from workbench.errors import UsageError
from workbench.store import TABLES, TableBatch


def test_appenders_bound_once_keep_filling_the_batch_after_take() -> None:
    batch = TableBatch("quarantine")
    exchange, recv_ts, reason, raw, size = batch.appenders()
    for i in range(3):
        exchange("sim")
        recv_ts(i)
        reason("bad json")
        raw("{")
        size(1)
    first = batch.take()
    exchange("sim")
    recv_ts(99)
    reason("late")
    raw("}")
    size(1)

    assert first["recv_ts"] == [0, 1, 2]
    assert len(batch) == 1
    assert batch.take() == {
        "exchange": ["sim"],
        "recv_ts": [99],
        "reason": ["late"],
        "raw": ["}"],
        "size": [1],
    }


def test_take_returns_every_column_by_name_and_empties_the_batch() -> None:
    batch = TableBatch("book_deltas")
    for append in batch.appenders():
        append(1)

    taken = batch.take()

    assert list(taken) == list(TABLES["book_deltas"].column_names)
    assert all(values == [1] for values in taken.values())
    assert len(batch) == 0
    assert not batch
    assert batch.take() == {name: [] for name in TABLES["book_deltas"].column_names}


def test_taken_lists_are_not_aliased_to_the_buffers() -> None:
    batch = TableBatch("trades")
    appenders = batch.appenders()
    for append in appenders:
        append("x")
    taken = batch.take()
    appenders[0]("y")
    assert taken["exchange"] == ["x"]


def test_unknown_table_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown table 'trade'"):
        TableBatch("trade")
