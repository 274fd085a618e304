"""`workbench backtest`: stored bars (or trades) in, six result files out, or nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.test_strategy import CLOSES
from workbench.cli import main
from workbench.store import Store


def hourly_db(path: Path) -> Path:
    """Two days of the crossing closes as 1h bars, and the same prices as trades on okx."""
    closes = CLOSES * 5
    frame = pd.DataFrame(
        {
            "exchange": "sim",
            "symbol": "BTC-USD",
            "interval": "1h",
            "ts": pd.date_range("2024-01-01", periods=len(closes), freq="1h"),
            "open": closes,
            "high": [c + 0.5 for c in closes],
            "low": [c - 0.5 for c in closes],
            "close": closes,
            "volume": 1.0,
        }
    )
    trades = pd.DataFrame(
        {
            "exchange": "okx",
            "symbol": "ETH-USD",
            "ts": frame["ts"] + pd.Timedelta(minutes=30),
            "recv_ts": frame["ts"] + pd.Timedelta(minutes=30),
            "price": closes,
            "size": 1.0,
            "side": "buy",
            "trade_id": [str(i) for i in range(len(closes))],
            "ingest_seq": range(1, len(closes) + 1),
        }
    )
    with Store.open(path) as store, store.cursor() as cursor:
        cursor.register("frame", frame)
        cursor.execute("INSERT INTO bars BY NAME SELECT * FROM frame")
        cursor.register("t", trades)
        cursor.execute("INSERT INTO trades BY NAME SELECT * FROM t")
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return hourly_db(tmp_path / "bars.duckdb")


def backtest_cli(db: Path, out: Path, *extra: str) -> int:
    return main(["backtest", *extra, "--db", str(db), "--out", str(out)])


SMA = ("sma_cross", "--symbol", "BTC-USD", "--interval", "1h", "--param", "fast=2")


def test_a_backtest_writes_every_file_the_same_bytes_each_run(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = (*SMA, "--param", "slow=3", "--fees", "10", "--slippage", "5")
    assert backtest_cli(db, tmp_path / "a", *args) == 0
    assert "sma_cross on BTC-USD 1h, 50 bars" in capsys.readouterr().out
    assert backtest_cli(db, tmp_path / "b", *args) == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(
        ["orders.csv", "fills.csv", "trades.csv", "equity.csv", "metrics.json", "report.html"]
    )
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    summary = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert summary["params"] == {"fast": 2, "slow": 3, "short": False}
    assert summary["metrics"]["trades"] == len(pd.read_csv(tmp_path / "a" / "trades.csv")) > 0
    assert summary["look_ahead_prone"] is False
    assert len(pd.read_csv(tmp_path / "a" / "equity.csv")) == 50


def test_without_stored_bars_the_trades_are_resampled(db: Path, tmp_path: Path) -> None:
    args = ("sma_cross", "--symbol", "ETH-USD", "--interval", "1h", "--param", "fast=2")
    assert backtest_cli(db, tmp_path / "out", *args, "--param", "slow=3") == 0
    equity = pd.read_csv(tmp_path / "out" / "equity.csv")
    assert len(equity) == 50 and equity["ts"].iloc[0] == "2024-01-01 01:00:00"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sma_crosss", "--symbol", "BTC-USD", "--interval", "1h"), "unknown strategy"),
        ((*SMA, "--param", "slow=x"), "parameter 'slow' takes a int"),
        ((*SMA, "--param", "slow"), "--param takes KEY=VALUE"),
        ((*SMA, "--start", "2030-01-01"), "no 1h bars or trades for sim BTC-USD in that range"),
        (("sma_cross", "--symbol", "BTC-USD", "--interval", "5m"), "no 5m bars or trades"),
        (("sma_cross", "--symbol", "DOGE-USD", "--interval", "1h"), "no bars or trades for"),
        (("{dir}/bad.py:Bad", "--symbol", "BTC-USD", "--interval", "1h"), "Bad raised KeyError"),
    ],
)
def test_mistakes_exit_2_and_write_nothing(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple, message: str
) -> None:
    (tmp_path / "bad.py").write_text(
        "from workbench.strategy import Strategy\n"
        "class Bad(Strategy):\n"
        "    def on_bar(self, ctx, bar):\n"
        "        {}['missing']\n"
    )
    args = tuple(a.format(dir=tmp_path) for a in args)
    assert backtest_cli(db, tmp_path / "out", *args) == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.py", "bars.duckdb"]


def test_an_existing_output_directory_is_not_overwritten(db: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    assert backtest_cli(db, tmp_path / "out", *SMA, "--param", "slow=3") == 2
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]


def test_exclude_quality_keeps_a_gap_until_its_resync_out_of_trading(
    db: Path, tmp_path: Path
) -> None:
    """A gap at 05:30 on day 1, resynced at 20:00: bars 05:00..19:00 are halted."""
    events = pd.DataFrame(
        {
            "exchange": "sim",
            "symbol": ["BTC-USD", None],  # the resync is connection-wide: it counts too
            "ts": pd.to_datetime(["2024-01-01 05:30", "2024-01-01 20:00"]),
            "kind": ["gap", "resync"],
            "detail": "{}",
            "ingest_seq": [1_000, 1_001],
        }
    )
    with Store.open(db) as store, store.cursor() as cursor:
        cursor.register("q", events)
        cursor.execute("INSERT INTO quality_events BY NAME SELECT * FROM q")
    args = (*SMA, "--param", "slow=3")
    assert backtest_cli(db, tmp_path / "all", *args) == 0
    assert backtest_cli(db, tmp_path / "clean", *args, "--exclude-quality") == 0
    everything = pd.read_csv(tmp_path / "all" / "orders.csv", parse_dates=["created"])
    orders = pd.read_csv(tmp_path / "clean" / "orders.csv", parse_dates=["created"])
    fills = pd.read_csv(tmp_path / "clean" / "fills.csv", parse_dates=["ts"])
    start, end = pd.Timestamp("2024-01-01 05:00"), pd.Timestamp("2024-01-01 20:00")
    inside = (orders["created"] > start) & (orders["created"] <= end)  # decided at a close
    assert inside.any() and (orders.loc[inside, "status"] == "rejected").all()
    assert ((fills["ts"] < start) | (fills["ts"] >= end)).all()
    outside = (everything["created"] <= start) | (everything["created"] > end)
    assert len(everything[outside]) <= len(orders[~inside])  # the rest trades on
