"""`workbench resample` and `workbench import-csv` as an operator runs them, on real files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.e2e import ENV, query
from workbench.store import Store

T0 = pd.Timestamp("2025-11-21 08:00:00")


def workbench(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbench", *map(str, args)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )


def recorded(db: Path, minutes: int, start: int = 0) -> None:
    """One trade every 20 s per symbol for ``minutes``, as the recorder would have stored."""
    seconds = range(start * 60, (start + minutes) * 60, 20)
    trades = pd.DataFrame(
        {
            "exchange": "sim",
            "symbol": [s for _ in seconds for s in ("BTC-USD", "ETH-USD")],
            "ts": [T0 + pd.Timedelta(seconds=t) for t in seconds for _ in range(2)],
            "price": [100.0 + t % 7 for t in seconds for _ in range(2)],
            "size": 0.5,
            "side": "buy",
        }
    )
    trades["recv_ts"] = trades["ts"]
    trades["trade_id"] = [f"{start}-{i}" for i in range(len(trades))]
    with Store.open(db) as store, store.cursor() as cursor:
        cursor.register("batch", trades)
        cursor.execute("INSERT INTO trades BY NAME SELECT * FROM batch")


def test_resample_writes_bars_then_updates_only_the_tail(tmp_path: Path) -> None:
    db = tmp_path / "wb.duckdb"
    recorded(db, minutes=10)
    first = workbench("resample", "--db", db, "--interval", "1m")
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"wrote 20 1m bars into {db} (20 in total)\n"
    recorded(db, minutes=3, start=10)
    tail = workbench("resample", "--db", db, "--interval", "1m")
    assert tail.stdout == f"wrote 8 1m bars into {db} (26 in total)\n"  # 1 recomputed + 3 new, x2
    assert query(db, "SELECT count(*), sum(trades) FROM bars WHERE interval = '1m'") == [(26, 78)]


def test_runs_that_leave_series_at_different_bars_end_where_full_does(tmp_path: Path) -> None:
    """A --symbol run moves one series ahead; the next run updates each from its own last bar."""
    db = tmp_path / "wb.duckdb"
    recorded(db, minutes=10)
    assert workbench("resample", "--db", db, "--interval", "1m").returncode == 0
    recorded(db, minutes=3, start=10)
    ahead = workbench("resample", "--db", db, "--interval", "1m", "--symbol", "ETH-USD")
    assert ahead.stdout == f"wrote 4 1m bars into {db} (23 in total)\n"
    recorded(db, minutes=2, start=13)
    rest = workbench("resample", "--db", db, "--interval", "1m")
    assert rest.stdout == f"wrote 9 1m bars into {db} (30 in total)\n"  # BTC 9-14, ETH 12-14
    rows = "SELECT * FROM bars WHERE interval = '1m' ORDER BY symbol, ts"
    incremental = query(db, rows)
    assert workbench("resample", "--db", db, "--interval", "1m", "--full").returncode == 0
    assert query(db, rows) == incremental


def test_resample_builds_coarser_bars_from_stored_ones_for_one_symbol(tmp_path: Path) -> None:
    db = tmp_path / "wb.duckdb"
    recorded(db, minutes=10)
    assert workbench("resample", "--db", db, "--interval", "1m").returncode == 0
    coarse = workbench(
        "resample", "--db", db, "--interval", "5m", "--from-interval", "1m", "--symbol", "ETH-USD"
    )
    assert coarse.returncode == 0, coarse.stderr
    assert query(db, "SELECT symbol, ts, trades FROM bars WHERE interval = '5m' ORDER BY ts") == [
        ("ETH-USD", T0.to_pydatetime(), 15),
        ("ETH-USD", (T0 + pd.Timedelta(minutes=5)).to_pydatetime(), 15),
    ]


def test_resample_carries_the_close_through_empty_minutes(tmp_path: Path) -> None:
    db = tmp_path / "wb.duckdb"
    recorded(db, minutes=1)
    recorded(db, minutes=1, start=4)
    done = workbench("resample", "--db", db, "--interval", "1m", "--empty", "carry", "--full")
    assert done.returncode == 0, done.stderr
    rows = query(db, "SELECT volume, open = close FROM bars WHERE symbol = 'BTC-USD' ORDER BY ts")
    assert rows == [(1.5, False), (0.0, True), (0.0, True), (0.0, True), (1.5, False)]


def test_usage_mistakes_exit_2_with_one_line_and_leave_no_file(tmp_path: Path) -> None:
    db = tmp_path / "wb.duckdb"
    missing = tmp_path / "missing.duckdb"
    recorded(db, minutes=2)
    cases = [
        (["--db", db, "--interval", "7x"], "bad interval '7x'"),
        (["--db", db, "--interval", "5m", "--from-interval", "2m"], "cannot build 5m bars"),
        (["--db", db, "--interval", "1m", "--symbol", "DOGE"], "available (exchange symbol): sim"),
        (["--db", missing, "--interval", "1m"], "does not exist"),
    ]
    for args, message in cases:
        out = workbench("resample", *args)
        assert out.returncode == 2, (args, out.stderr)
        assert out.stderr.startswith("workbench resample: error: ") and message in out.stderr
        assert out.stderr.count("\n") == 1, out.stderr
    assert not missing.exists()


def test_import_csv_loads_a_file_and_rejects_a_malformed_one(tmp_path: Path) -> None:
    db = tmp_path / "bars.duckdb"
    good = tmp_path / "good.csv"
    good.write_text(
        "https://www.CryptoDataDownload.com\n"
        "unix,date,symbol,open,high,low,close,Volume BTC,Volume USDT,tradecount\n"
        "1709254800000,2024-03-01 01:00:00,BTC/USDT,10,12,9,11,2,21,5\n"
        "1709251200000,2024-03-01 00:00:00,BTC/USDT,9,10,8,10,1,9.5,3\n"
    )
    out = workbench("import-csv", good, "--db", db, "--exchange", "binance", "--symbol", "BTCUSDT")
    assert out.returncode == 0, out.stderr
    assert out.stdout == (
        f"imported 2 1h bars of binance BTCUSDT (2024-03-01 00:00:00 to 2024-03-01 01:00:00) "
        f"into {db}\n"
    )
    assert query(db, "SELECT interval, vwap FROM bars ORDER BY ts") == [("1h", 9.5), ("1h", 10.5)]
    bad = tmp_path / "bad.csv"
    bad.write_text(good.read_text().replace(",12,9,", ",12,13,"))
    fresh = tmp_path / "fresh.duckdb"
    out = workbench("import-csv", bad, "--db", fresh, "--exchange", "x", "--symbol", "y")
    assert out.returncode == 2
    assert (
        out.stderr == f"workbench import-csv: error: {bad}:3: low 13 is above min(open, close) 10\n"
    )
    assert not fresh.exists()
