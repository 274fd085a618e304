"""What a ``%%wb sql`` statement may do, decided by DuckDB's own parser before it runs.

The notebook's cursor shares the database with live feeds, so by default a cell may only
read it: ``DROP TABLE book_deltas`` during a recording would make the writer fail. DuckDB's
switches for external access (``enable_external_access``, ``disabled_filesystems``) are
database-wide and cannot be turned back on, which would take Parquet export away from the
whole process, so each statement is classified instead:

- ``extract_statements`` gives the statement type. SELECT (also DESCRIBE, SHOW, SUMMARIZE,
  VALUES, FROM-first), EXPLAIN of an allowed statement and a read-only PRAGMA are reads;
  everything else (INSERT, DELETE, DROP, CREATE, SET, transactions, ...) needs ``--write``.
- COPY, EXPORT, ATTACH, DETACH, INSTALL and LOAD reach files, the network or extensions and
  need ``--files`` (COPY ... FROM, which also fills a table, needs ``--write`` too).
- A SELECT is walked through ``json_serialize_sql`` (its parse tree): a table function other
  than DuckDB's catalog functions (``read_csv``, ``read_parquet``, ``glob``, ``query`` ...) or
  a table named by a path or URL (``FROM '/etc/passwd'``) needs ``--files``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb

WRITE = "--write"
FILES = "--files"

_READ_PRAGMAS = frozenset(
    {
        "table_info",
        "show",
        "show_tables",
        "show_tables_expanded",
        "show_databases",
        "database_list",
        "database_size",
        "storage_info",
        "metadata_info",
        "version",
        "platform",
        "functions",
        "collations",
        "user_agent",
    }
)
"""PRAGMAs that only report; any other may change settings or the database."""

_SAFE_TABLE_FUNCTIONS = re.compile(
    r"(duckdb_\w+|pragma_(table_info|show|storage_info|metadata_info|database_size|version"
    r"|platform|collations|functions|user_agent|database_list)|range|generate_series|unnest"
    r"|test_all_types|which_secret)"
)
"""Table functions that read only the catalog or compute values; any other may read files."""

_EXTERNAL = {
    duckdb.StatementType.COPY: "COPY",
    duckdb.StatementType.EXPORT: "EXPORT DATABASE",
    duckdb.StatementType.ATTACH: "ATTACH",
    duckdb.StatementType.DETACH: "DETACH",
    duckdb.StatementType.LOAD: "INSTALL/LOAD of an extension",
}
_EXPLAIN = re.compile(r"\s*EXPLAIN(\s+ANALY[SZ]E)?(\s*\([^)]*\))?\s+", re.IGNORECASE)
_PRAGMA = re.compile(r"\s*PRAGMA\s+(\w+)", re.IGNORECASE)
_COPY_FROM = re.compile(r'\s*COPY\s+(?!\()[\w."]+\s*(\([^)]*\))?\s*FROM\b', re.IGNORECASE)
_PATH_LIKE = re.compile(r"[./:\\~]")


@dataclass(frozen=True)
class Needs:
    """The flags a statement needs, and why (for the error message)."""

    flags: frozenset[str]
    why: str


def needs(cursor: duckdb.DuckDBPyConnection, statement: duckdb.Statement) -> Needs | None:
    """None for a read of the database; else the flags the statement needs and why."""
    kind = statement.type
    text = statement.query
    if kind == duckdb.StatementType.SELECT:
        reach = _select_reach(cursor, text)
        return None if reach is None else Needs(frozenset({FILES}), reach)
    if kind == duckdb.StatementType.EXPLAIN:
        prefix = _EXPLAIN.match(text)
        inner = cursor.extract_statements(text[prefix.end() :]) if prefix else []
        if len(inner) != 1:
            return Needs(frozenset({WRITE}), "an EXPLAIN whose statement could not be checked")
        return needs(cursor, inner[0])
    if kind == duckdb.StatementType.PRAGMA:
        name = _PRAGMA.match(text)
        if name and name.group(1).lower() in _READ_PRAGMAS:
            return None
        return Needs(frozenset({WRITE}), "a PRAGMA that may change settings or the database")
    if kind in _EXTERNAL:
        flags = {FILES}
        if kind == duckdb.StatementType.COPY and _COPY_FROM.match(text):
            flags.add(WRITE)
        return Needs(frozenset(flags), f"{_EXTERNAL[kind]} reaches files, network or extensions")
    return Needs(frozenset({WRITE}), f"{kind.name} changes the database or the session")


def _select_reach(cursor: duckdb.DuckDBPyConnection, text: str) -> str | None:
    """Why a SELECT would read outside the database, or None if it reads only the database."""
    row = cursor.execute("SELECT json_serialize_sql(?)", [text]).fetchone()
    tree = json.loads(row[0]) if row else {"error": True}
    if tree.get("error"):
        return "a query whose sources could not be checked"
    for node in _nodes(tree):
        kind = node.get("type")
        if kind == "TABLE_FUNCTION":
            function = node.get("function") or {}
            name = str(function.get("function_name", "")).lower()
            if not _SAFE_TABLE_FUNCTIONS.fullmatch(name):
                return f"{name}() may read files or the network"
        elif kind == "BASE_TABLE" and _PATH_LIKE.search(str(node.get("table_name", ""))):
            return f"FROM {node['table_name']!r} reads a file"
    return None


def _nodes(value: Any) -> Iterator[dict[str, Any]]:
    """Every object in a parse tree, subqueries and CTEs included."""
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from _nodes(child)
    elif isinstance(value, list):
        for child in value:
            yield from _nodes(child)
