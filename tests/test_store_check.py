"""A file that cannot take our rows is refused at open, named, and left exactly as it was.

Real files: a store truncated to half, a text file, someone else's DuckDB database, a store
whose ``trades`` has other columns. Each is refused by ``Store.open`` (read-write, read-only
and ``create=False``) and by the CLI commands with exit 2, and its bytes do not change.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from tests.e2e import ENV
from workbench.errors import BadStoreError, StoreError
from workbench.store import TABLES, Store

T0 = 1_763_712_000_000_000
ROWS = 200_000


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recorded_store(path: Path) -> Path:
    """A real store with enough trades to fill several of DuckDB's 256 KiB blocks."""
    ids = range(ROWS)
    with Store.open(path) as store:
        store.writer.submit(
            "trades",
            {
                "exchange": ["sim"] * ROWS,
                "symbol": ["BTC-USD"] * ROWS,
                "ts": [T0 + i for i in ids],
                "recv_ts": [T0 + i for i in ids],
                "price": [30_000.0 + i % 977 for i in ids],
                "size": [0.5] * ROWS,
                "side": ["buy"] * ROWS,
                "trade_id": [str(i) for i in ids],
            },
        )
    return path


def truncated(tmp_path: Path) -> Path:
    path = recorded_store(tmp_path / "truncated.duckdb")
    os.truncate(path, path.stat().st_size // 2)
    return path


def not_duckdb(tmp_path: Path) -> Path:
    path = tmp_path / "notes.duckdb"
    path.write_text("ts,price\n2025-01-01,1.0\n")
    return path


def foreign(tmp_path: Path) -> Path:
    path = tmp_path / "foreign.duckdb"
    with duckdb.connect(path) as con:
        con.execute("CREATE TABLE customers (id INTEGER, name VARCHAR)")
        con.execute("INSERT INTO customers VALUES (1, 'a')")
    return path


def other_columns(tmp_path: Path) -> Path:
    path = tmp_path / "other.duckdb"
    Store.open(path).close()
    with duckdb.connect(path) as con:
        con.execute("DROP TABLE trades")
        con.execute("CREATE TABLE trades (exchange VARCHAR, symbol VARCHAR, px DOUBLE)")
    return path


BAD: dict[str, tuple[Callable[[Path], Path], str]] = {
    "truncated": (truncated, r"is truncated: it is \d+ bytes, but the database in it uses"),
    "not-duckdb": (not_duckdb, "is not a DuckDB database"),
    "foreign": (foreign, r"not a workbench store \(it has tables customers and no schema_info"),
    "other-columns": (
        other_columns,
        r"table trades has other columns .*missing ts TIMESTAMP, recv_ts .*unexpected px DOUBLE",
    ),
}


@pytest.mark.parametrize("kind", list(BAD))
@pytest.mark.parametrize("mode", ["read-write", "read-only", "existing only"])
def test_a_file_that_cannot_take_our_rows_is_refused_at_open_and_left_untouched(
    tmp_path: Path, kind: str, mode: str
) -> None:
    make, message = BAD[kind]
    path = make(tmp_path)
    before = digest(path)
    options = {
        "read-write": {},
        "read-only": {"read_only": True},
        "existing only": {"create": False},
    }
    with pytest.raises(BadStoreError, match=message) as raised:
        Store.open(path, **options[mode])
    assert str(path) in str(raised.value)
    assert digest(path) == before
    assert not Path(f"{path}.wal").exists()


def test_the_untruncated_original_opens_with_every_row(tmp_path: Path) -> None:
    path = recorded_store(tmp_path / "whole.duckdb")
    with Store.open(path) as store:
        assert store.table_counts()["trades"] == ROWS


def test_a_new_path_and_an_empty_duckdb_file_become_stores_but_not_for_readers(
    tmp_path: Path,
) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        Store.open(tmp_path / "missing.duckdb", create=False)
    assert not (tmp_path / "missing.duckdb").exists()
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(empty).close()
    with pytest.raises(BadStoreError, match="empty DuckDB database, not a workbench recording"):
        Store.open(empty, create=False)
    with Store.open(empty) as store:
        assert set(store.table_counts()) == set(TABLES)
    with Store.open(tmp_path / "new.duckdb") as store:
        assert store.table_counts()["trades"] == 0


def test_a_missing_workbench_table_is_created_again(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    Store.open(path).close()
    with duckdb.connect(path) as con:
        con.execute("DROP TABLE book_deltas")
    with Store.open(path) as store:
        assert store.table_counts()["book_deltas"] == 0


def workbench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )


@pytest.mark.parametrize("kind", ["truncated", "foreign"])
def test_record_import_and_clean_exit_2_naming_the_file_and_change_nothing(
    tmp_path: Path, kind: str
) -> None:
    make, message = BAD[kind]
    path = make(tmp_path)
    before = digest(path)
    csv = tmp_path / "bars.csv"
    csv.write_text(
        "timestamp,open,high,low,close,volume\n"
        "2025-01-01 00:00:00,1,2,1,2,5\n2025-01-01 00:01:00,2,3,2,3,5\n"
    )
    commands = [
        # a port nothing listens on: a refused file must stop the run before any connection
        ["record", "sim", "BTC-USD", "--db", str(path), "--ws-url", "ws://127.0.0.1:9/ws"],
        ["clean", "--db", str(path)],
        ["resample", "--interval", "1m", "--db", str(path)],
        ["import-csv", str(csv), "--db", str(path), "--exchange", "x", "--symbol", "y"],
    ]
    for command in commands:
        done = workbench(*command)
        assert done.returncode == 2, (command, done.stderr)
        assert str(path) in done.stderr and re.search(message, done.stderr), done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "recording" not in done.stdout
        assert digest(path) == before, command


def test_clean_on_a_foreign_database_creates_no_tables_in_it(tmp_path: Path) -> None:
    path = foreign(tmp_path)
    copy = tmp_path / "copy.duckdb"
    shutil.copy(path, copy)
    done = workbench("clean", "--db", str(copy))
    assert done.returncode == 2, done.stderr
    assert "not a workbench store" in done.stderr
    with duckdb.connect(copy, read_only=True) as con:
        tables = [
            row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        ]
    assert tables == ["customers"]
