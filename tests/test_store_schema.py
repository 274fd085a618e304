"""The schema as data: idempotent creation, versioning, and generated documentation."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from workbench.errors import StoreError
from workbench.store import QUALITY_KINDS, RAW_LIMIT, TABLES, Store, describe, raw_text
from workbench.store.schema import SCHEMA_INFO, SCHEMA_VERSION


def _columns(path: Path) -> dict[str, list[tuple[str, str]]]:
    with duckdb.connect(path, read_only=True) as con:
        rows = con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "ORDER BY table_name, ordinal_position"
        ).fetchall()
    found: dict[str, list[tuple[str, str]]] = {}
    for table, column, type_ in rows:
        found.setdefault(table, []).append((column, type_))
    return found


def test_opening_twice_keeps_tables_rows_and_one_version_row(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with Store.open(path) as store:
        store.writer.submit(
            "quality_events",
            {
                "exchange": ["sim"],
                "symbol": ["BTC-USD"],
                "ts": [1],
                "kind": ["gap"],
                "detail": ['{"expected":5,"got":7}'],
            },
        )
    with Store.open(path) as store:
        assert store.table_counts()["quality_events"] == 1
        assert store.sql("SELECT version FROM schema_info")["version"].tolist() == [SCHEMA_VERSION]


def test_created_tables_match_the_documented_columns_and_types(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    Store.open(path).close()
    found = _columns(path)
    for table in (*TABLES.values(), SCHEMA_INFO):
        assert found[table.name] == [(c.name, c.type) for c in table.columns]


def test_a_file_from_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    Store.open(path).close()
    with duckdb.connect(path) as con:
        con.execute("UPDATE schema_info SET version = ?", [SCHEMA_VERSION + 1])
    with pytest.raises(StoreError, match=f"schema version is {SCHEMA_VERSION + 1}"):
        Store.open(path)
    with pytest.raises(StoreError, match="schema version"):
        Store.open(path, read_only=True)


def test_describe_documents_every_table_and_column_as_markdown() -> None:
    text = describe()
    for table in (*TABLES.values(), SCHEMA_INFO):
        assert f"**`{table.name}`**" in text
        for column in table.columns:
            assert f"| `{column.name}` | {column.type} |" in text
    for kind in QUALITY_KINDS:
        assert f"`{kind}`" in text


def test_only_tables_with_a_unique_key_ignore_conflicts() -> None:
    assert TABLES["trades"].insert_sql.endswith("ON CONFLICT DO NOTHING")
    assert "UNIQUE (exchange, symbol, trade_id)" in TABLES["trades"].ddl
    assert "CONFLICT" not in TABLES["book_deltas"].insert_sql


def test_raw_text_keeps_undecodable_bytes_visible_and_bounds_the_length() -> None:
    assert raw_text(b'{"a":\xff}') == '{"a":\\xff}'
    assert len(raw_text(b"x" * (RAW_LIMIT + 10))) == RAW_LIMIT


def test_the_readme_shows_the_schema_as_the_code_defines_it() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert describe() in readme
