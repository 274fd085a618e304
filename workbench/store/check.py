"""Is this file a store we can write? Asked at open, before anything in the file is changed.

A store that cannot take our rows must be refused at once, not found out by a writer that
throws every batch away for the whole recording. :func:`check_store` looks at an existing
file through a read-only connection (so a refused file is left exactly as it was) and raises
:class:`BadStoreError` naming the file and what is wrong:

- not a DuckDB database at all (DuckDB's own header check);
- truncated: DuckDB reads lazily, so a file cut short opens and even answers queries until a
  write touches a missing block; its header says how many blocks it has, and the file must
  hold them all;
- a DuckDB database that is not a workbench store: it has tables but no ``schema_info`` (an
  empty database is fine: there is nothing in it to damage);
- a workbench table whose columns differ from :mod:`workbench.store.schema` at the file's
  schema version (names or types; the order does not matter: the writer names every column);
- a ``schema_info`` version newer than this code (an older one is migrated on a read-write
  open; a read-only open of it is refused, since nothing could migrate it).

A workbench table that is missing is not an error: opening creates it again.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import duckdb

from workbench.errors import BadStoreError, StoreError
from workbench.store.migrate import columns_at
from workbench.store.schema import SCHEMA_INFO, SCHEMA_VERSION, TABLES, Column, stored_version

HEADER_BYTES = 3 * 4096
"""DuckDB's file header and its two alternating database headers, before the first block."""


def check_store(
    path: Path, cursor: duckdb.DuckDBPyConnection, *, workbench_only: bool, read_only: bool
) -> None:
    """Raise BadStoreError unless the file opened on ``cursor`` is a store we can use.

    ``workbench_only``: also refuse a DuckDB database with no tables at all (for commands that
    read a recording and must not turn any DuckDB file into an empty store). ``read_only``:
    also refuse a file of an older schema version (StoreError), which only a read-write open
    migrates.
    """
    tables = _tables(cursor)
    _check_size(path, cursor, tables)
    if SCHEMA_INFO.name not in tables:
        if tables:
            listed = ", ".join(sorted(tables)[:8]) + (", ..." if len(tables) > 8 else "")
            raise BadStoreError(
                f"{path} is a DuckDB database but not a workbench store (it has tables "
                f"{listed} and no schema_info); nothing in it was changed"
            )
        if workbench_only:
            raise BadStoreError(f"{path} is an empty DuckDB database, not a workbench recording")
        return
    try:
        version = stored_version(cursor)
    except StoreError as exc:
        raise BadStoreError(f"{path}: {exc}") from None
    for table in (SCHEMA_INFO, *TABLES.values()):
        found = tables.get(table.name)
        expected = _expected(columns_at(table, version))
        if found is not None and set(found) != set(expected):
            difference = _difference(table.name, expected, found)
            raise BadStoreError(f"{path}: {difference}; nothing in it was changed")
    if read_only and version < SCHEMA_VERSION:
        raise StoreError(
            f"{path} has schema version {version}, older than this workbench's "
            f"{SCHEMA_VERSION}; migrate it once with `workbench migrate --db {path}` (or any "
            "command that writes to it), then read it"
        )


def _check_size(path: Path, cursor: duckdb.DuckDBPyConnection, tables: Iterable[str]) -> None:
    """The file must hold every block the database uses (free blocks at its end may have
    been cut off by a checkpoint, so the header's total is not the measure)."""
    row = cursor.execute("SELECT block_size, used_blocks FROM pragma_database_size()").fetchone()
    if row is None:
        return
    block_size, used = int(row[0]), int(row[1])
    ours = [t for t in tables if t in TABLES or t == SCHEMA_INFO.name]  # names we know are safe
    blocks = [f"SELECT max(block_id) FROM pragma_storage_info('{t}')" for t in ours]
    blocks.append("SELECT max(block_id) FROM pragma_metadata_info()")
    highest = cursor.execute(
        f"SELECT max(b) FROM ({' UNION ALL '.join(blocks)}) AS t(b)"
    ).fetchone()
    needed = max(used, int(highest[0]) + 1 if highest and highest[0] is not None else 0)
    expected = HEADER_BYTES + needed * block_size if needed else 0
    actual = path.stat().st_size
    if actual < expected:
        raise BadStoreError(
            f"{path} is truncated: it is {actual} bytes, but the database in it uses {needed} "
            f"blocks of {block_size} bytes ({expected} bytes); restore it from a copy"
        )


def _tables(cursor: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    """Columns (name, type) in order of every table in the file's main schema."""
    rows = cursor.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name = 'main' "
        "AND NOT internal ORDER BY table_name, column_index"
    ).fetchall()
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        tables.setdefault(str(table), []).append((str(column), str(kind)))
    return tables


def _expected(columns: Iterable[Column]) -> list[tuple[str, str]]:
    return [(c.name, c.type) for c in columns]


def _difference(table: str, expected: list[tuple[str, str]], found: list[tuple[str, str]]) -> str:
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    parts = []
    if missing:
        parts.append(f"missing {_columns(missing)}")
    if extra:
        parts.append(f"unexpected {_columns(extra)}")
    return (
        f"table {table} has other columns than a workbench store's ({'; '.join(parts)}), "
        "so the writer could not store its rows"
    )


def _columns(columns: Iterable[tuple[str, str]]) -> str:
    return ", ".join(f"{name} {kind}" for name, kind in columns)
