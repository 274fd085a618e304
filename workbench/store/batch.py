"""Column buffers a feed thread fills on its hot path and hands to the writer in one piece.

A feed thread handles tens of thousands of messages per second, so the cost that matters is the
per-row append. :meth:`TableBatch.appenders` hands out the bound ``list.append`` of every
column once; the feed calls them directly (one C call per value, no attribute lookup, no tuple or
dict per row). Because the feed keeps those bound methods for its whole life, :meth:`take` must
copy and clear the lists in place: replacing them would leave the feed appending to lists
nobody reads.

A batch has one owner: the thread that appends is the thread that calls :meth:`take`. That is
what makes the copy-then-clear in :meth:`take` safe without a lock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workbench.errors import UsageError
from workbench.store.schema import TABLES, Table


class TableBatch:
    """Pending rows for one table, held as one Python list per column.

    Typical feed-thread use::

        deltas = TableBatch("book_deltas")
        exchange, symbol, ts, recv_ts, seq, side, price, size = deltas.appenders()
        ...                                  # per level change:
        exchange("sim"); symbol(sym); ts(msg_ts); ...
        ...                                  # every few ms:
        if deltas:
            writer.submit(deltas.table.name, deltas.take())

    Nothing is validated per row; the writer converts whole columns to Arrow and rejects a
    batch whose values do not fit the schema.
    """

    __slots__ = ("_columns", "_first", "table")

    def __init__(self, table: str) -> None:
        try:
            self.table: Table = TABLES[table]
        except KeyError:
            raise UsageError(f"unknown table {table!r}; tables: {', '.join(TABLES)}") from None
        self._columns: tuple[list[Any], ...] = tuple([] for _ in self.table.columns)
        self._first = self._columns[0]

    def appenders(self) -> tuple[Callable[[Any], None], ...]:
        """Bound ``append`` of every column, in schema order; valid for the batch's lifetime."""
        return tuple(column.append for column in self._columns)

    def take(self) -> dict[str, list[Any]]:
        """Return the pending rows by column name and leave the batch empty."""
        taken: dict[str, list[Any]] = {}
        for name, column in zip(self.table.column_names, self._columns, strict=True):
            taken[name] = column.copy()
            column.clear()
        return taken

    def __len__(self) -> int:
        """Rows pending, counted on the first column (a row is complete once all are appended)."""
        return len(self._first)

    def __repr__(self) -> str:
        return f"TableBatch({self.table.name!r}, rows={len(self)})"
