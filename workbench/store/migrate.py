"""Schema versions: creating a store, and bringing a file of an older version up to date.

Opening a file read-write calls :func:`create_schema`, which migrates an older file inside the
same transaction as the open's CREATE statements: the migration completes or the file stays
exactly as it was. A step rebuilds each table whose shape changed (rename the old table, create
the new one, copy every row in rowid order, drop the old one) rather than altering it in place,
so the result has the same column order and constraints as a file created new.

Version 1 → 2 added ``ingest_seq`` to the market tables, the venue ``seq`` to trades and
``kind`` to book deltas. A version-1 file never recorded the order rows were applied in, so the
step numbers its events by receive time (detection time for quality events), then by table,
then by insertion; the book rows of one message (consecutive rows with the same symbol, time
and seq) are one event. Its book deltas are all ``delta`` rows: version 1 did not store the
snapshots it applied, so its books cannot be rebuilt from the deltas alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import duckdb

from workbench.store.schema import (
    SCHEMA_INFO,
    SCHEMA_VERSION,
    TABLES,
    Column,
    Table,
    stored_version,
)

ADDED: Mapping[int, Mapping[str, tuple[str, ...]]] = {
    2: {
        "trades": ("seq", "ingest_seq"),
        "book_deltas": ("kind", "ingest_seq"),
        "book_snapshots": ("ingest_seq",),
        "quotes": ("ingest_seq",),
        "quality_events": ("ingest_seq",),
    },
}
"""Columns each version added, by table: what a file of the version before it lacks."""

_FILLED = {("book_deltas", "kind"): "'delta'"}
"""Values given to added columns of migrated rows; the others are NULL or numbered."""

_V1_TIME = {
    "trades": "recv_ts",
    "book_deltas": "recv_ts",
    "book_snapshots": "recv_ts",
    "quotes": "recv_ts",
    "quality_events": "ts",
}
"""The column a version-1 row's event is ordered by (tables in tie-break order)."""


def columns_at(table: Table, version: int) -> tuple[Column, ...]:
    """The columns ``table`` has in a file of schema ``version``."""
    later = {
        name
        for added_in, tables in ADDED.items()
        if added_in > version
        for name in tables.get(table.name, ())
    }
    return tuple(c for c in table.columns if c.name not in later)


def create_schema(cursor: duckdb.DuckDBPyConnection) -> int:
    """Create every missing table, migrating an older file first; return the schema version.

    Idempotent, so every open calls it. Raises StoreError for a file of a newer version.
    """
    now = datetime.now(UTC).replace(tzinfo=None)
    cursor.begin()
    try:
        cursor.execute(SCHEMA_INFO.ddl)
        cursor.execute(
            "INSERT INTO schema_info SELECT ?, ? WHERE NOT EXISTS (SELECT 1 FROM schema_info)",
            [SCHEMA_VERSION, now],
        )
        version = stored_version(cursor)
        if version < SCHEMA_VERSION:
            _to_v2(cursor)
            cursor.execute("INSERT INTO schema_info VALUES (?, ?)", [SCHEMA_VERSION, now])
        for table in TABLES.values():
            cursor.execute(table.ddl)
        cursor.commit()
    except BaseException:
        cursor.rollback()
        raise
    return SCHEMA_VERSION


def _present(cursor: duckdb.DuckDBPyConnection) -> set[str]:
    rows = cursor.execute(
        "SELECT table_name FROM duckdb_tables() "
        "WHERE database_name = current_database() AND schema_name = 'main'"
    ).fetchall()
    return {str(name) for (name,) in rows}


def _to_v2(cursor: duckdb.DuckDBPyConnection) -> None:
    present = _present(cursor)
    tables = [name for name in _V1_TIME if name in present]
    if not tables:
        return
    cursor.execute(f"CREATE TEMP TABLE _wb_v1_order AS {_v1_order_sql(tables)}")
    for name in tables:
        table = TABLES[name]
        old = columns_at(table, 1)
        cursor.execute(f"ALTER TABLE {name} RENAME TO {name}_v1")
        cursor.execute(table.ddl)
        values = []
        for column in table.columns:
            if column in old:
                values.append(f"o.{column.name}")
            elif column.name == "ingest_seq":
                values.append("n.ingest_seq")
            else:
                values.append(_FILLED.get((name, column.name), "NULL"))
        cursor.execute(
            f"INSERT INTO {name} ({', '.join(table.column_names)}) "
            f"SELECT {', '.join(values)} FROM {name}_v1 o "
            f"LEFT JOIN _wb_v1_order n ON n.tbl = '{name}' AND n.rid = o.rowid ORDER BY o.rowid"
        )
        cursor.execute(f"DROP TABLE {name}_v1")
    cursor.execute("DROP TABLE _wb_v1_order")


def _v1_order_sql(tables: list[str]) -> str:
    """One row per version-1 row: its table, rowid and the ordinal of the event it belongs to."""
    rows = []
    for rank, name in enumerate(tables):
        at = _V1_TIME[name]
        if name in ("book_deltas", "book_snapshots"):
            # a new event starts where the symbol, time or seq differs from the row before
            key = f"(exchange, symbol, {at}, seq)"
            lagged = (
                f"(lag(exchange) OVER w, lag(symbol) OVER w, lag({at}) OVER w, lag(seq) OVER w)"
            )
            starts = f"CASE WHEN {key} IS DISTINCT FROM {lagged} THEN 1 ELSE 0 END"
            rows.append(
                f"SELECT '{name}' AS tbl, rowid AS rid, {at} AS event_at, {rank} AS tbl_rank, "
                f"sum(starts) OVER (ORDER BY rowid) AS grp FROM "
                f"(SELECT rowid, {at}, {starts} AS starts FROM {name} WINDOW w AS (ORDER BY rowid))"
            )
        else:
            rows.append(
                f"SELECT '{name}' AS tbl, rowid AS rid, {at} AS event_at, {rank} AS tbl_rank, "
                f"rowid AS grp FROM {name}"
            )
    union = " UNION ALL ".join(rows)
    return f"""
        WITH v1_rows AS ({union}),
        events AS (
            SELECT tbl, grp, min(event_at) AS event_at, min(tbl_rank) AS tbl_rank, min(rid) AS first
            FROM v1_rows GROUP BY tbl, grp
        ),
        numbered AS (
            SELECT tbl, grp, row_number() OVER (ORDER BY event_at, tbl_rank, first) AS ingest_seq
            FROM events
        )
        SELECT r.tbl, r.rid, n.ingest_seq FROM v1_rows r JOIN numbered n USING (tbl, grp)
    """
