"""Store: one owning process per file, cursors per thread, readers, Parquet export."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

import workbench.store
from workbench.errors import StoreError, UsageError
from workbench.store import Store, export_parquet
from workbench.store.store import MEMORY_LIMIT

T0 = 1_763_712_000_000_000  # 2025-11-21 08:00:00 UTC in µs
DAY = 86_400_000_000
SOURCE_ROOT = Path(workbench.store.__file__).parents[2]


def trades(rows: list[tuple[str, int, str]]) -> dict[str, list[Any]]:
    """Trades from (symbol, ts, trade_id) triples."""
    return {
        "exchange": ["sim"] * len(rows),
        "symbol": [symbol for symbol, _, _ in rows],
        "ts": [ts for _, ts, _ in rows],
        "recv_ts": [ts + 1 for _, ts, _ in rows],
        "price": [100.0 + i for i in range(len(rows))],
        "size": [1.0] * len(rows),
        "side": ["buy"] * len(rows),
        "trade_id": [trade_id for _, _, trade_id in rows],
    }


def test_open_creates_missing_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "store.duckdb"
    with Store.open(path) as store:
        assert store.path == path.resolve()
    assert path.exists()


def test_opening_an_open_file_again_in_the_same_process_returns_the_same_store(
    tmp_path: Path,
) -> None:
    first = Store.open(tmp_path / "s.duckdb")
    try:
        assert Store.open(tmp_path / "." / "s.duckdb") is first
        with pytest.raises(StoreError, match="already open read-write"):
            Store.open(tmp_path / "s.duckdb", read_only=True)
    finally:
        first.close()
    second = Store.open(tmp_path / "s.duckdb")
    assert second is not first
    second.close()


def test_a_second_process_gets_a_store_error_naming_the_file_and_the_owner(
    tmp_path: Path,
) -> None:
    path = tmp_path / "owned.duckdb"
    script = textwrap.dedent(
        """
        import sys
        from workbench.errors import StoreError
        from workbench.store import Store
        try:
            Store.open(sys.argv[1], read_only=sys.argv[2] == "ro")
        except StoreError as exc:
            print(exc)
            sys.exit(3)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(SOURCE_ROOT)}
    with Store.open(path):
        for mode in ("rw", "ro"):
            done = subprocess.run(
                [sys.executable, "-c", script, str(path), mode],
                capture_output=True,
                text=True,
                env=env,
                timeout=60,
            )
            assert done.returncode == 3, done.stderr
            assert str(path) in done.stdout
            assert "open in another process" in done.stdout


def test_read_only_store_reads_but_has_no_writer(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with Store.open(path) as store:
        store.writer.submit("trades", trades([("BTC-USD", T0, "1")]))
    with Store.open(path, read_only=True) as store:
        assert store.table_counts()["trades"] == 1
        with pytest.raises(StoreError, match="read-only"):
            _ = store.writer
    with pytest.raises(StoreError, match="does not exist"):
        Store.open(tmp_path / "missing.duckdb", read_only=True)


def test_a_file_that_is_not_a_workbench_store_is_refused_read_only(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    with duckdb.connect(path) as con:
        con.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(StoreError, match="not a workbench store"):
        Store.open(path, read_only=True)


def test_sql_binds_parameters_instead_of_formatting_them(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        store.writer.submit(
            "trades", trades([("BTC-USD", T0, "1"), ("it's", T0, "2"), ("ETH-USD", T0, "3")])
        )
        store.flush()
        frame = store.sql("SELECT trade_id FROM trades WHERE symbol = ?", ["it's"])
        named = store.sql("SELECT count(*) AS n FROM trades WHERE symbol <> $s", {"s": "it's"})
    assert frame["trade_id"].tolist() == ["2"]
    assert named["n"].tolist() == [2]


def test_close_is_idempotent_and_closes_handed_out_cursors(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.duckdb")
    cursor = store.cursor()
    store.close()
    store.close()
    assert store.closed
    with pytest.raises(duckdb.ConnectionException):
        cursor.execute("SELECT 1")
    with pytest.raises(StoreError, match="closed"):
        store.cursor()
    with pytest.raises(StoreError, match="closed"):
        _ = store.writer


def test_start_writer_refuses_a_second_writer(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        assert store.writer is store.writer
        with pytest.raises(UsageError, match="already running"):
            store.start_writer(commit_interval=0.01)


def test_parquet_export_is_hive_partitioned_and_round_trips(tmp_path: Path) -> None:
    rows = [
        ("BTC-USD", T0, "1"),
        ("BTC-USD", T0 + DAY, "2"),
        ("BTC/USD", T0, "3"),
        ("ETH-USD", T0 + 5, "4"),
    ]
    with Store.open(tmp_path / "s.duckdb") as store:
        store.writer.submit("trades", trades(rows))
        written = export_parquet(store, tmp_path / "lake", ["trades", "quarantine"])
        expected = store.sql("SELECT * FROM trades ORDER BY trade_id")

    lake = tmp_path / "lake" / "trades"
    assert written == {"trades": 4, "quarantine": 0}
    partitions = sorted(str(p.parent.relative_to(lake)) for p in lake.rglob("*.parquet"))
    assert partitions == [
        "exchange=sim/symbol=BTC%2FUSD/date=2025-11-21",
        "exchange=sim/symbol=BTC-USD/date=2025-11-21",
        "exchange=sim/symbol=BTC-USD/date=2025-11-22",
        "exchange=sim/symbol=ETH-USD/date=2025-11-21",
    ]
    with duckdb.connect() as con:  # what another process would do
        back = con.execute(
            "SELECT * EXCLUDE (date) FROM read_parquet(?, hive_partitioning = true) "
            "ORDER BY trade_id",
            [str(lake / "**" / "*.parquet")],
        ).df()
    pd.testing.assert_frame_equal(back[list(expected.columns)], expected)


def test_a_second_export_appends_only_the_new_rows(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        store.writer.submit("trades", trades([("BTC-USD", T0, "1")]))
        export_parquet(store, tmp_path / "lake", ["trades"])
        store.writer.submit("trades", trades([("BTC-USD", T0, "2")]))
        export_parquet(store, tmp_path / "lake", ["trades"])
    with duckdb.connect() as con:
        count = con.execute(
            "SELECT count(*) FROM read_parquet(?)", [str(tmp_path / "lake/trades/**/*.parquet")]
        ).fetchone()
    assert count == (2,)


def test_parquet_export_rejects_unknown_tables(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store, pytest.raises(UsageError, match="trade"):
        export_parquet(store, tmp_path / "lake", ["trade"])


def test_a_schema_change_after_open_does_not_stop_checkpoints(tmp_path: Path) -> None:
    # The schema check at open once left its result unread, pinning a transaction for the
    # life of the store: after any CREATE TABLE no checkpoint could run, so the WAL and
    # DuckDB's in-memory table data grew for as long as the recorder ran.
    with Store.open(tmp_path / "w.duckdb") as store:
        store.sql("CREATE TABLE notes (note VARCHAR)")
        store.sql("INSERT INTO notes VALUES ('after open')")
        store.sql("CHECKPOINT")  # refused while a transaction older than the DDL is open
        wal = Path(f"{store.path}.wal")
        assert not wal.exists() or wal.stat().st_size == 0


def test_the_store_caps_duckdbs_buffer_pool(tmp_path: Path) -> None:
    # DuckDB's default (80% of RAM) lets its block cache grow with every row recorded.
    setting = "SELECT current_setting('memory_limit')"
    with Store.open(tmp_path / "w.duckdb") as store:
        (limit,) = store.cursor().execute(setting).fetchall()[0]
    with (
        duckdb.connect(config={"memory_limit": MEMORY_LIMIT}) as capped,
        duckdb.connect() as default,
    ):
        assert (
            limit
            == capped.execute(setting).fetchall()[0][0]
            != default.execute(setting).fetchall()[0][0]
        )
