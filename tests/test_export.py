"""Parquet export: incremental, atomic, and readable by a second process while recording."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.e2e import ENV, wait_for
from tests.test_store_store import T0, trades
from workbench.errors import StoreError
from workbench.store import Store, export_parquet
from workbench.store.export import MANIFEST, PeriodicExport

RECORDED = ("trades", "book_snapshots", "book_deltas", "quality_events")


def exported(lake: Path, table: str, what: str = "count(*)") -> int:
    files = list((lake / table).rglob("*.parquet"))
    if not files:
        return 0
    with duckdb.connect() as con:  # what another process does
        row = con.execute(
            f"SELECT {what} FROM read_parquet(?, hive_partitioning = true)",
            [str(lake / table / "**" / "*.parquet")],
        ).fetchone()
    return int(row[0]) if row else 0


def test_each_run_appends_exactly_the_rows_committed_since_the_last(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    with Store.open(tmp_path / "s.duckdb") as store:
        # every row at the same timestamp: a time watermark could not tell them apart
        store.writer.submit("trades", trades([("BTC-USD", T0, str(i)) for i in range(3)]))
        assert export_parquet(store, lake, ["trades"]) == {"trades": 3}
        assert export_parquet(store, lake, ["trades"]) == {"trades": 0}
        store.writer.submit("trades", trades([("BTC-USD", T0, str(i)) for i in range(3, 8)]))
        assert export_parquet(store, lake, ["trades"]) == {"trades": 5}
    assert exported(lake, "trades") == 8
    assert exported(lake, "trades", "count(DISTINCT trade_id)") == 8
    assert not (lake / ".staging").exists()
    assert not list(lake.rglob("*.tmp"))


def test_files_of_a_run_cut_short_before_its_manifest_are_replaced_not_doubled(
    tmp_path: Path,
) -> None:
    lake = tmp_path / "lake"
    with Store.open(tmp_path / "s.duckdb") as store:
        store.writer.submit("trades", trades([("BTC-USD", T0, "1"), ("BTC-USD", T0, "2")]))
        export_parquet(store, lake, ["trades"])
        store.writer.submit("trades", trades([("BTC-USD", T0, "3")]))
        export_parquet(store, lake, ["trades"])
        # undo the second run's manifest: as if the process died between its files and it
        (lake / MANIFEST).write_text('{"tables": {"trades": 2}}')
        assert export_parquet(store, lake, ["trades"]) == {"trades": 1}
    assert exported(lake, "trades") == 3
    assert exported(lake, "trades", "count(DISTINCT trade_id)") == 3


def test_an_unreadable_manifest_is_refused_rather_than_exporting_everything_again(
    tmp_path: Path,
) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    (lake / MANIFEST).write_text("{not json")
    with Store.open(tmp_path / "s.duckdb") as store:
        with pytest.raises(StoreError, match="not a workbench export manifest"):
            export_parquet(store, lake)
        with pytest.raises(StoreError, match="not a workbench export manifest"):
            PeriodicExport(store, lake, every=1)


def test_periodic_export_ends_with_everything_committed(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    with Store.open(tmp_path / "s.duckdb") as store:
        exporter = PeriodicExport(store, lake, every=0.05).start()
        store.writer.submit("trades", trades([("BTC-USD", T0, "1")]))
        assert wait_for(lambda: exported(lake, "trades") == 1, 10)
        store.writer.submit("trades", trades([("ETH-USD", T0, "2")]))
        exporter.stop()
        assert exporter.last_error is None
    assert exported(lake, "trades") == 2


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
    )


def test_a_second_process_reads_the_export_of_a_recording_still_running(
    tmp_path: Path,
) -> None:
    db, lake = tmp_path / "live.duckdb", tmp_path / "lake"
    recorder = subprocess.Popen(
        [
            *(sys.executable, "-m", "workbench", "record", "sim", "BTC-USD", "--db", str(db)),
            *("--duration", "8", "--export-parquet", str(lake), "--export-every", "0.5"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        assert wait_for(lambda: exported(lake, "trades") > 0, 20)
        first = exported(lake, "trades")
        assert recorder.poll() is None  # still recording
        assert wait_for(lambda: exported(lake, "trades") > first, 20)
        assert recorder.poll() is None
        out, err = recorder.communicate(timeout=60)
    finally:
        recorder.kill()
        recorder.wait()
    assert recorder.returncode == 0, out + err
    assert f"exporting to {lake}" in out and "exported " in out
    with duckdb.connect(str(db), read_only=True) as con:
        for table in RECORDED:
            row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert row is not None and exported(lake, table) == row[0], table
    assert exported(lake, "trades", "count(DISTINCT trade_id)") == exported(lake, "trades")
    trades_dir = lake / "trades"
    partitions = {p.parent.relative_to(trades_dir).parts[:2] for p in trades_dir.rglob("*.parquet")}
    assert ("exchange=sim", "symbol=BTC-USD") in partitions


def test_export_command_appends_a_closed_recording_and_refuses_a_held_one(
    tmp_path: Path,
) -> None:
    db, lake = tmp_path / "s.duckdb", tmp_path / "lake"
    with Store.open(db) as store:
        store.writer.submit("trades", trades([("BTC-USD", T0, "1"), ("BTC-USD", T0, "2")]))
    done = cli("export", "--parquet", str(lake), "--db", str(db))
    assert done.returncode == 0, done.stderr
    assert "trades=2" in done.stdout
    again = cli("export", "--parquet", str(lake), "--db", str(db))
    assert "nothing new" in again.stdout and exported(lake, "trades") == 2
    with duckdb.connect(str(db)):  # another process (this one) holds the file
        held = cli("export", "--parquet", str(tmp_path / "other"), "--db", str(db))
    assert held.returncode == 1
    assert "open in another process" in held.stderr and "--export-parquet" in held.stderr
