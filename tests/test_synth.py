"""`workbench synth`: a seeded synthetic history that reads back like a recording, on real files."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.e2e import ENV
from workbench.analysis.bars import resample
from workbench.cli import main
from workbench.core.book import OrderBook
from workbench.errors import StoreError
from workbench.events import BookChange, Trade
from workbench.replay import replay
from workbench.sim import synth_command
from workbench.sim.synth import BOOK_DEPTH, DOWN, RANGE, UP, SymbolModel, _ar1
from workbench.store import SCHEMA_VERSION, Store

START_US = 1_704_067_200_000_000  # 2024-01-01, the default --start
TABLES = ("trades", "book_deltas", "instruments", "bars")


def synth(db: Path, *args: str) -> int:
    return main(["synth", "--db", str(db), "--trades-per-day", "20000", *args])


ORDER = {"bars": "exchange, symbol, interval, ts"}
"""Bars by their key: an aggregate's rows are inserted in no particular order (the rest are
in the order they were generated, which is part of what must repeat)."""


def tables(db: Path) -> dict[str, pa.Table]:
    """Every written table in its stored (insertion) order; bars by their key."""
    with Store.open(db, read_only=True) as store, store.cursor() as cursor:
        return {
            t: cursor.sql(f"SELECT * FROM {t} ORDER BY {ORDER.get(t, 'rowid')}").to_arrow_table()
            for t in TABLES
        }


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One UTC day of BTC-USD and ETH-USD, seed 0."""
    db = tmp_path_factory.mktemp("synth") / "day.duckdb"
    assert synth(db, "--days", "1", "--symbols", "BTC-USD", "ETH-USD") == 0
    return db


def frame(db: Path, query: str) -> pd.DataFrame:
    with Store.open(db, read_only=True) as store:
        return store.sql(query)


def test_same_arguments_write_identical_tables_and_another_seed_differs(tmp_path: Path) -> None:
    args = ("--days", "0.25", "--symbols", "BTC-USD", "ETH-USD")
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        assert synth(tmp_path / f"{name}.duckdb", *args, "--seed", seed) == 0
    a, b, c = (tables(tmp_path / f"{name}.duckdb") for name in "abc")
    assert all(a[t].equals(b[t]) for t in TABLES)
    assert not a["trades"].equals(c["trades"])
    assert not a["book_deltas"].equals(c["book_deltas"])


def test_a_symbols_history_does_not_depend_on_the_symbols_beside_it(tmp_path: Path) -> None:
    assert synth(tmp_path / "one.duckdb", "--days", "0.25", "--symbols", "ETH-USD") == 0
    both = ("--days", "0.25", "--symbols", "BTC-USD", "ETH-USD")
    assert synth(tmp_path / "two.duckdb", *both) == 0
    query = "SELECT * EXCLUDE (ingest_seq) FROM {} WHERE symbol = 'ETH-USD' ORDER BY rowid"
    for table in ("trades", "book_deltas"):
        alone = frame(tmp_path / "one.duckdb", query.format(table))
        beside = frame(tmp_path / "two.duckdb", query.format(table))
        pd.testing.assert_frame_equal(alone, beside)


def test_the_file_is_a_current_store_with_the_recording_tables(day: Path) -> None:
    with Store.open(day, read_only=True, create=False) as store:  # check_store passes
        counts = store.table_counts()
        version = store.sql("SELECT max(version) AS v FROM schema_info")["v"][0]
        instruments = store.sql("SELECT * FROM instruments ORDER BY symbol")
    assert version == SCHEMA_VERSION
    assert counts["trades"] > 30_000 and counts["book_deltas"] > counts["trades"]
    assert counts["bars"] > 0  # their contents: test_bars_are_the_trades_resampled_...
    assert counts["quotes"] == counts["book_snapshots"] == counts["quality_events"] == 0
    assert instruments.to_dict("records") == [
        {"exchange": "synth", "symbol": s, "pair": s, "base": s[:3], "quote": "USD"}
        for s in ("BTC-USD", "ETH-USD")
    ]
    prices = frame(day, "SELECT symbol, arg_min(price, ingest_seq) AS p FROM trades GROUP BY 1")
    opening = dict(zip(prices.symbol, prices.p, strict=True))
    assert abs(opening["BTC-USD"] / 30_000 - 1) < 0.01  # the simulator's base prices
    assert abs(opening["ETH-USD"] / 2_000 - 1) < 0.01
    ticks = frame(day, "SELECT bool_and(round(price * 2) = price * 2) AS ok FROM trades "
                  "WHERE symbol = 'BTC-USD'")  # fmt: skip
    assert ticks["ok"][0]  # on the simulator's 0.50 tick


def test_every_event_has_one_ingest_seq_and_rows_are_stored_in_that_order(day: Path) -> None:
    events = frame(
        day,
        "SELECT count(*) AS n, min(s) AS lo, max(s) AS hi, count(DISTINCT s) AS d FROM ("
        "SELECT ingest_seq AS s FROM trades UNION ALL "
        "SELECT DISTINCT ingest_seq FROM book_deltas)",
    ).iloc[0]
    assert (events.lo, events.hi) == (1, events.n) and events.d == events.n
    for table in ("trades", "book_deltas"):
        seqs = frame(day, f"SELECT ingest_seq FROM {table} ORDER BY rowid")["ingest_seq"]
        assert seqs.is_monotonic_increasing
    recv = frame(day, "SELECT symbol, recv_ts, ts FROM trades ORDER BY ingest_seq")
    assert (recv.recv_ts > recv.ts).all()
    assert recv.groupby("symbol")["recv_ts"].apply(lambda s: s.is_monotonic_increasing).all()


def test_bars_are_the_trades_resampled_by_the_project(day: Path) -> None:
    stored = frame(day, "SELECT * EXCLUDE (interval) FROM bars ORDER BY exchange, symbol, ts")
    trades = frame(day, "SELECT * FROM trades ORDER BY rowid")
    pd.testing.assert_frame_equal(stored, resample(trades, "1m")[stored.columns])


def test_replayed_book_is_a_top_n_book_never_crossed_and_trades_print_at_its_touch(
    day: Path,
) -> None:
    played = replay(day, books=True)
    kinds = {"reset": 0, "delta": 0, "trade": 0}
    for applied in played:
        event = applied.event
        if isinstance(event, BookChange):
            book = played.books[(event.exchange, event.symbol)]
            assert_top_n(book, event.symbol)
            kinds["reset" if event.reset else "delta"] += 1
        elif isinstance(event, Trade):
            book = played.books[(event.exchange, event.symbol)]
            touch = book.best_ask_price if event.side == "buy" else book.best_bid_price
            assert event.price == touch
            kinds["trade"] += 1
    assert kinds["trade"] == frame(day, "SELECT count(*) AS n FROM trades")["n"][0]
    assert kinds["reset"] > 0 and kinds["delta"] > 0  # both kinds of update were checked


def assert_top_n(book: OrderBook, symbol: str) -> None:
    """BOOK_DEPTH levels a side, one tick apart, the best bid below the best ask."""
    tick = 0.5 if symbol == "BTC-USD" else 0.02
    bids, asks = book.bids(), book.asks()
    assert len(bids) == len(asks) == BOOK_DEPTH
    assert bids[0][0] < asks[0][0]
    for side, step in ((bids, -tick), (asks, tick)):
        gaps = np.diff([price for price, _ in side])
        assert np.allclose(gaps, step) and all(size > 0 for _, size in side)


def test_returns_have_volatility_clusters_and_fat_tails(day: Path) -> None:
    close = frame(day, "SELECT close FROM bars WHERE symbol = 'BTC-USD' ORDER BY ts")["close"]
    returns = np.diff(np.log(close.to_numpy()))
    size = np.abs(returns)
    assert np.corrcoef(size[:-1], size[1:])[0, 1] > 0.1
    centred = returns - returns.mean()
    assert np.mean(centred**4) / np.var(returns) ** 2 > 3


def test_more_trades_around_the_utc_days_open_and_close_than_at_noon(day: Path) -> None:
    hours = frame(day, "SELECT hour(ts) AS h, count(*) AS n FROM trades GROUP BY 1")
    per_hour = hours.set_index("h")["n"]
    assert per_hour[[0, 1, 22, 23]].mean() > 2 * per_hour[[10, 11, 12, 13]].mean()


def test_trends_drift_and_ranges_revert() -> None:
    """Hour-long stretches inside one regime: a range's hourly moves are smaller than its
    minute moves add up to (variance ratio < 1), a trend's larger and in its direction."""
    model = SymbolModel(0, "BTC-USD", START_US, 10 * 86_400, 20_000)
    chunks = list(model.chunks())
    ts = np.concatenate([c.trades.ts for c in chunks])
    log_price = np.log(np.concatenate([c.trades.price for c in chunks]))
    closes = pd.Series(np.nan, index=range(len(model.regime)))
    closes[(ts - START_US) // 60_000_000] = log_price  # the minute's last trade
    close = closes.ffill().bfill().to_numpy()
    ratio, drift = {}, {}
    for regime in (RANGE, UP, DOWN):
        hours = [
            close[lo : lo + 61]
            for lo in range(0, len(close) - 60, 60)
            if (model.regime[lo : lo + 61] == regime).all()
        ]
        assert len(hours) > 20
        hourly = np.array([h[-1] - h[0] for h in hours])
        minutes = np.concatenate([np.diff(h) for h in hours])
        ratio[regime] = np.sum(hourly**2) / np.sum(minutes**2)
        drift[regime] = hourly.mean()
    assert ratio[RANGE] < 0.6 < 1.1 < min(ratio[UP], ratio[DOWN])
    assert drift[UP] > 0.002 and drift[DOWN] < -0.002


def test_ar1_filter_equals_the_recursion() -> None:
    x = np.random.default_rng(1).standard_normal(20_000)
    for phi in (0.5, 0.99, math.exp(-math.log(2) / 900)):
        expected, y = np.empty_like(x), 0.3
        for t, value in enumerate(x):
            y = phi * y + value
            expected[t] = y
        np.testing.assert_allclose(_ar1(x, phi, 0.3), expected, rtol=1e-9, atol=1e-9)


def test_a_fraction_of_a_day_from_another_start(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    assert synth(db, "--days", "0.125", "--symbols", "SOL-USD", "--start", "2025-03-01T06:00") == 0
    span = frame(db, "SELECT min(ts) AS lo, max(ts) AS hi FROM trades").iloc[0]
    assert pd.Timestamp("2025-03-01 06:00") <= span.lo and span.hi < pd.Timestamp(
        "2025-03-01 09:00"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "0", "--symbols", "BTC-USD"], "--days must be a number above 0"),
        (["--days", "-2", "--symbols", "BTC-USD"], "--days must be a number above 0"),
        (["--days", "nan", "--symbols", "BTC-USD"], "--days must be a number above 0"),
        (["--days", "1e-6", "--symbols", "BTC-USD"], "less than a second"),
        (["--days", "1", "--symbols", ""], "bad symbol ''"),
        (["--days", "1", "--symbols", "BTCUSD"], "bad symbol 'BTCUSD': write BASE-QUOTE"),
        (["--days", "1", "--symbols", "BTC-USD", "BTC-USD"], "symbols listed twice: BTC-USD"),
        (["--days", "1", "--symbols", "BTC-USD", "--interval", "7m"], "bad interval '7m'"),
        (["--days", "1", "--symbols", "BTC-USD", "--exchange", "a b"], "bad exchange 'a b'"),
        (["--days", "1", "--symbols", "BTC-USD", "--start", "soon"], "--start must be a time"),
        (["--days", "1", "--symbols", "BTC-USD", "--trades-per-day", "0"], "--trades-per-day"),
    ],
)
def test_usage_mistakes_exit_2_with_one_line_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["synth", "--db", str(tmp_path / "x.duckdb"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("workbench synth: error: ") and message in err
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_an_empty_store_is_refused_untouched(
    tmp_path: Path, day: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.duckdb"
    notes.write_text("not a database")
    recording = tmp_path / "recording.duckdb"
    recording.write_bytes(day.read_bytes())
    for db, message in ((notes, "is not a DuckDB database"), (recording, "already holds rows")):
        before = db.read_bytes()
        assert synth(db, "--days", "0.1", "--symbols", "BTC-USD") == 2
        assert message in capsys.readouterr().err
        assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.duckdb", "recording.duckdb"]


def test_an_empty_store_is_filled(tmp_path: Path) -> None:
    db = tmp_path / "empty.duckdb"
    Store.open(db).close()
    assert synth(db, "--days", "0.1", "--symbols", "BTC-USD") == 0
    assert frame(db, "SELECT count(*) AS n FROM trades")["n"][0] > 0
    assert [p.name for p in tmp_path.iterdir()] == ["empty.duckdb"]


def test_a_run_that_fails_midway_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(*args: object, **kwargs: object) -> int:
        raise StoreError("disk full")

    monkeypatch.setattr(synth_command, "update_bars", fail)  # after every row is inserted
    assert synth(tmp_path / "x.duckdb", "--days", "0.1", "--symbols", "BTC-USD") == 1
    assert "disk full" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_the_command_prints_one_summary_line(tmp_path: Path) -> None:
    db = tmp_path / "cli.duckdb"
    done = subprocess.run(
        [sys.executable, "-m", "workbench", "synth", "--days", "0.05", "--symbols", "BTC-USD",
         "--db", str(db), "--interval", "5m", "--exchange", "sim"],
        capture_output=True, text=True, env=ENV, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert "\n" not in line and line.startswith(f"synth: wrote {db}: trades=")
    assert "(5m bars); 2024-01-01 00:00:00 → 2024-01-01 01:12:00 UTC;" in line
    assert line.endswith(" trades/s")
    assert frame(db, "SELECT DISTINCT exchange FROM trades")["exchange"].tolist() == ["sim"]
