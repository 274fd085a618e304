"""Bars: DuckDB resampling equals an independent pandas computation, on DataFrames and stores.

The reference below is written with pandas' own resample, one series at a time, so it shares
nothing with the SQL under test except the definitions in workbench.analysis.bars. Prices,
high/low, opens, closes and counts must match exactly; sums (volume, VWAP) to 1e-12, since
DuckDB adds in parallel and in a different order.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.analysis.bars import _LAST_BARS, BAR_COLUMNS, mid_spread, resample, update_bars
from workbench.core.intervals import parse_interval
from workbench.errors import UsageError
from workbench.store import Store

T0 = pd.Timestamp("2025-11-21 08:00:00")
EXACT = ["exchange", "symbol", "ts", "open", "high", "low", "close", "trades"]
SUMS = ["volume", "vwap", "buy_volume", "sell_volume"]
SERIES = [("sim", "BTC-USD"), ("sim", "ETH-USD"), ("other", "BTC-USD")]


# --- the pandas reference ----------------------------------------------------------------------


def reference(trades: pd.DataFrame, interval: str, empty: str) -> pd.DataFrame:
    """Bars per (exchange, symbol) with pandas resample: first/last in arrival order."""
    freq = f"{parse_interval(interval).seconds}s"
    parts = []
    for (exchange, symbol), group in trades.groupby(["exchange", "symbol"], sort=True):
        g = group.sort_values("ts", kind="stable").set_index("ts")
        price = g["price"].resample(freq)
        size = g["size"].resample(freq)
        bars = pd.DataFrame(
            {
                "open": price.first(),
                "high": price.max(),
                "low": price.min(),
                "close": price.last(),
                "volume": size.sum(),
                "vwap": (g["price"] * g["size"]).resample(freq).sum() / size.sum(),
                "trades": price.count(),
                "buy_volume": g["size"].where(g["side"] == "buy", 0.0).resample(freq).sum(),
                "sell_volume": g["size"].where(g["side"] == "sell", 0.0).resample(freq).sum(),
            }
        )
        if empty == "omit":
            bars = bars[bars["trades"] > 0]
        else:
            gap = bars["trades"] == 0
            carried = bars["close"].ffill()
            for column in ("open", "high", "low", "close"):
                bars.loc[gap, column] = carried[gap]
        bars = bars.rename_axis("ts").reset_index()
        bars.insert(0, "symbol", symbol)
        bars.insert(0, "exchange", exchange)
        parts.append(bars)
    if not parts:
        return pd.DataFrame(columns=list(BAR_COLUMNS))
    return pd.concat(parts, ignore_index=True)[list(BAR_COLUMNS)]


def assert_bars_equal(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(got.columns) == list(BAR_COLUMNS)
    assert len(got) == len(expected), (got, expected)
    got = got.reset_index(drop=True)
    expected = expected.reset_index(drop=True)
    for column in EXACT:
        left, right = got[column].to_numpy(), expected[column].to_numpy()
        if column == "ts":
            left, right = left.astype("datetime64[us]"), right.astype("datetime64[us]")
        assert (left == right).all(), (column, got[column], expected[column])
    for column in SUMS:
        np.testing.assert_allclose(
            got[column].to_numpy(dtype=float), expected[column].to_numpy(dtype=float), rtol=1e-12
        )


# --- generated trades --------------------------------------------------------------------------


@st.composite
def trade_frames(draw: st.DrawFn, interval: str, buckets: int = 30) -> pd.DataFrame:
    """Trades over ``buckets`` bars of ``interval``: gaps, shared timestamps, edge times."""
    span = parse_interval(interval).micros * buckets
    offsets = st.one_of(
        st.integers(0, span - 1),
        st.integers(0, buckets - 1).map(lambda b: b * parse_interval(interval).micros),
        st.sampled_from([0, 1, span // 2, span - 1]),
    )
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(SERIES),
                offsets,
                st.floats(1.0, 1000.0).map(lambda p: round(p, 2)),
                st.floats(0.001, 10.0),
                st.sampled_from(["buy", "sell"]),
            ),
            max_size=80,
        )
    )
    return trades_frame(rows)


def trades_frame(rows: list[tuple[tuple[str, str], int, float, float, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "exchange": pd.Series([s[0] for s, *_ in rows], dtype=object),
            "symbol": pd.Series([s[1] for s, *_ in rows], dtype=object),
            "ts": (T0 + pd.to_timedelta([r[1] for r in rows], unit="us")).astype("datetime64[us]"),
            "price": pd.Series([r[2] for r in rows], dtype=float),
            "size": pd.Series([r[3] for r in rows], dtype=float),
            "side": pd.Series([r[4] for r in rows], dtype=object),
        }
    )


@contextmanager
def store_with(trades: pd.DataFrame) -> Iterator[Store]:
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "bars.duckdb") as store:
        insert_trades(store, trades)
        yield store


def insert_trades(store: Store, trades: pd.DataFrame) -> None:
    """Append trades in DataFrame order, so table order is arrival order (set-based insert)."""
    with store.cursor() as cursor:
        [(first_id,)] = cursor.execute(
            "SELECT coalesce(max(trade_id::BIGINT) + 1, 0) FROM trades"
        ).fetchall()
        ids = np.arange(len(trades)) + first_id
        batch = trades.assign(trade_id=ids.astype(str), recv_ts=trades["ts"])
        cursor.register("batch", batch)
        cursor.execute(
            "INSERT INTO trades (exchange, symbol, ts, recv_ts, price, size, side, trade_id) "
            "SELECT exchange, symbol, ts, recv_ts, price, size, side, trade_id FROM batch"
        )
        cursor.unregister("batch")


def stored(store: Store, interval: str) -> pd.DataFrame:
    columns = ", ".join(BAR_COLUMNS)
    return store.sql(
        f"SELECT {columns} FROM bars WHERE interval = ? ORDER BY exchange, symbol, ts", [interval]
    )


intervals = st.sampled_from(["1s", "15s", "1m", "5m", "1h"])
policies = st.sampled_from(["omit", "carry"])
refinements = st.sampled_from([("1s", "1m"), ("15s", "1m"), ("1m", "5m"), ("5m", "1h")])


# --- DataFrame door ----------------------------------------------------------------------------


@given(st.data(), intervals, policies)
@settings(deadline=None)
def test_resample_equals_pandas_resample(data: st.DataObject, interval: str, empty: str) -> None:
    trades = data.draw(trade_frames(interval))
    assert_bars_equal(resample(trades, interval, empty=empty), reference(trades, interval, empty))


@given(st.data(), refinements, policies)
@settings(deadline=None)
def test_ticks_to_fine_to_coarse_equals_ticks_to_coarse(
    data: st.DataObject, pair: tuple[str, str], empty: str
) -> None:
    fine, coarse = pair
    trades = data.draw(trade_frames(fine, buckets=200))
    via_fine = resample(resample(trades, fine, empty=empty), coarse, empty=empty)
    assert_bars_equal(via_fine, resample(trades, coarse, empty=empty))


def test_carry_fills_gaps_with_the_previous_close_and_zero_volume() -> None:
    trades = trades_frame(
        [
            (SERIES[0], 10_000_000, 100.0, 1.0, "buy"),
            (SERIES[0], 20_000_000, 101.0, 3.0, "sell"),
            (SERIES[0], 200_000_000, 99.0, 2.0, "buy"),
        ]
    )
    bars = resample(trades, "1m", empty="carry")
    assert bars["ts"].tolist() == [T0 + pd.Timedelta(minutes=m) for m in range(4)]
    assert bars[["open", "high", "low", "close"]].to_numpy().tolist() == [
        [100.0, 101.0, 100.0, 101.0],
        [101.0] * 4,
        [101.0] * 4,
        [99.0] * 4,
    ]
    assert bars["volume"].tolist() == [4.0, 0.0, 0.0, 2.0]
    assert bars["trades"].tolist() == [2, 0, 0, 1]
    assert bars["vwap"].iloc[0] == pytest.approx((100 * 1 + 101 * 3) / 4)
    assert bars["vwap"].iloc[1:3].isna().all()
    assert bars["buy_volume"].tolist() == [1.0, 0.0, 0.0, 2.0]
    assert len(resample(trades, "1m")) == 2


def test_trades_sharing_a_timestamp_open_and_close_in_arrival_order() -> None:
    trades = trades_frame(
        [(SERIES[0], 0, 5.0, 1.0, "buy"), (SERIES[0], 0, 3.0, 1.0, "buy")]
        + [(SERIES[0], 30_000_000, p, 1.0, "sell") for p in (7.0, 6.0)]
    )
    bar = resample(trades, "1m").iloc[0]
    assert (bar["open"], bar["close"]) == (5.0, 6.0)


def test_buckets_before_1970_start_on_the_grid_too() -> None:
    trades = pd.DataFrame(
        {"ts": pd.to_datetime(["1969-12-31 23:59:30", "1970-01-01 00:00:10"]), "price": [1.0, 2.0]}
    ).assign(size=1.0)
    assert resample(trades, "1m")["ts"].tolist() == [
        pd.Timestamp("1969-12-31 23:59:00"),
        pd.Timestamp("1970-01-01 00:00:00"),
    ]


def test_minimal_and_tz_aware_frames_resample_like_naive_utc() -> None:
    naive = pd.DataFrame(
        {"ts": T0 + pd.to_timedelta([1, 70, 75], unit="s"), "price": [1.0, 2.0, 3.0]}
    ).assign(size=2.0)
    bars = resample(naive, "1m")
    assert list(bars.columns) == list(BAR_COLUMNS[2:])
    assert bars["trades"].tolist() == [1, 2]
    assert bars["buy_volume"].isna().all()  # no side column: unknown, not zero
    aware = naive.assign(ts=naive["ts"].dt.tz_localize("UTC").dt.tz_convert("Asia/Tokyo"))
    pd.testing.assert_frame_equal(resample(aware, "1m"), bars)


def test_bars_read_back_from_the_table_resample_to_coarser_bars() -> None:
    trades = trades_frame([(SERIES[0], i * 7_000_000, 100.0 + i, 1.0, "buy") for i in range(100)])
    with store_with(trades) as store:
        update_bars(store, "1m")
        table_rows = store.sql("SELECT * FROM bars WHERE interval = '1m'")
    assert_bars_equal(resample(table_rows, "5m"), resample(trades, "5m"))
    with pytest.raises(UsageError, match="cannot build 2m bars from 5m bars"):
        resample(table_rows.assign(interval="5m"), "2m")


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"ts": [T0], "value": [1.0]}), "resample needs trades"),
        (pd.DataFrame({"ts": ["2025-01-01"], "price": [1.0], "size": [1.0]}), "datetime64"),
        (pd.DataFrame({"ts": [T0], "price": ["x"], "size": [1.0]}), "'price' must be numeric"),
        (
            pd.DataFrame({"ts": [T0], "price": [1.0], "size": [1.0], "side": [True]}),
            "cannot compute from this DataFrame: Conversion Error",
        ),
    ],
)
def test_unusable_frames_are_usage_errors(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        resample(frame, "1m")


def test_bad_interval_and_policy_are_usage_errors() -> None:
    trades = pd.DataFrame({"ts": [T0], "price": [1.0], "size": [1.0]})
    with pytest.raises(UsageError, match="bad interval '7x'"):
        resample(trades, "7x")
    with pytest.raises(UsageError, match="empty must be one of omit, carry"):
        resample(trades, "1m", empty="zero")


# --- store door --------------------------------------------------------------------------------


@given(st.data(), intervals, policies)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_bars_written_to_the_table_equal_pandas_resample(
    data: st.DataObject, interval: str, empty: str
) -> None:
    trades = data.draw(trade_frames(interval))
    with store_with(trades) as store:
        written = update_bars(store, interval, empty=empty)
        got = stored(store, interval)
    assert written == len(got)
    assert_bars_equal(got, reference(trades, interval, empty))


@given(st.data(), intervals, policies, st.lists(st.floats(0, 1), min_size=1, max_size=3))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_incremental_updates_equal_a_full_recompute(
    data: st.DataObject, interval: str, empty: str, splits: list[float]
) -> None:
    """Trades arrive in parts (each not older than the one before), one update after each.

    Includes series that only appear in a later part, series that stop early (so the series'
    last stored bars differ), and trades sharing a timestamp across parts.
    """
    trades = data.draw(trade_frames(interval)).sort_values("ts", kind="stable")
    bounds = [0, *sorted(int(f * len(trades)) for f in splits), len(trades)]
    with store_with(trades.iloc[: bounds[1]]) as store:
        update_bars(store, interval, empty=empty)
        for start, stop in itertools.pairwise(bounds[1:]):
            insert_trades(store, trades.iloc[start:stop])
            update_bars(store, interval, empty=empty)
        got = stored(store, interval)
    assert_bars_equal(got, reference(trades, interval, empty))


@given(st.data(), intervals, policies)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_trades_after_each_series_last_bar_update_exactly_in_any_arrival_order(
    data: st.DataObject, interval: str, empty: str
) -> None:
    """Each series' new trades are at or after its own last stored bucket, in any order.

    A series that stopped early gets trades older than the other series' last bars, a new
    series starts in the tail, and trades can share timestamps with ones already stored: the
    result is still exactly a full recompute, with opens and closes in arrival order.
    """
    micros = parse_interval(interval).micros
    first = data.draw(trade_frames(interval))
    with store_with(first) as store:
        update_bars(store, interval, empty=empty)
        cuts = {
            (e, s): int((pd.Timestamp(cut) - T0) / pd.Timedelta(microseconds=1))
            for e, s, cut in store.sql(
                "SELECT exchange, symbol, max(ts) AS cut FROM bars GROUP BY ALL"
            ).itertuples(index=False)
        }
        rows = data.draw(
            st.lists(
                st.tuples(
                    st.sampled_from(SERIES),
                    st.integers(0, 3 * micros),
                    st.sampled_from([0, 1]),  # 1: exactly on a stored trade's timestamp
                    st.floats(1.0, 1000.0).map(lambda p: round(p, 2)),
                    st.sampled_from(["buy", "sell"]),
                ),
                max_size=40,
            )
        )
        stored_times = first.groupby(["exchange", "symbol"])["ts"].max()
        later = []
        for series, offset, on_stored, price, side in rows:
            if on_stored and series in stored_times.index and series in cuts:
                at = int((stored_times[series] - T0) / pd.Timedelta(microseconds=1))
            else:  # a series without bars yet must appear in the tail to be picked up
                at = cuts.get(series, min(cuts.values(), default=0)) + offset
            later.append((series, at, price, 1.0, side))
        second = trades_frame(later)
        insert_trades(store, second)
        update_bars(store, interval, empty=empty)
        got = stored(store, interval)
    assert_bars_equal(got, reference(pd.concat([first, second]), interval, empty))


@given(st.data(), refinements, policies, st.floats(0, 1))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_coarse_bars_from_fine_bars_update_incrementally(
    data: st.DataObject, pair: tuple[str, str], empty: str, split: float
) -> None:
    fine, coarse = pair
    trades = data.draw(trade_frames(fine, buckets=200)).sort_values("ts", kind="stable")
    cut = int(split * len(trades))
    with store_with(trades.iloc[:cut]) as store:
        update_bars(store, fine, empty=empty)
        update_bars(store, coarse, from_interval=fine, empty=empty)
        insert_trades(store, trades.iloc[cut:])
        update_bars(store, fine, empty=empty)
        update_bars(store, coarse, from_interval=fine, empty=empty)
        got = stored(store, coarse)
    assert_bars_equal(got, reference(trades, coarse, empty))


@given(st.data(), refinements, policies)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_stored_coarse_bars_from_stored_fine_bars_equal_ticks_to_coarse(
    data: st.DataObject, pair: tuple[str, str], empty: str
) -> None:
    fine, coarse = pair
    trades = data.draw(trade_frames(fine, buckets=200))
    with store_with(trades) as store:
        update_bars(store, fine, empty=empty)
        update_bars(store, coarse, from_interval=fine, empty=empty)
        got = stored(store, coarse)
    assert_bars_equal(got, reference(trades, coarse, empty))


def test_an_incremental_update_recomputes_only_the_tail() -> None:
    trades = trades_frame([(SERIES[0], i * 10_000_000, 100.0, 1.0, "buy") for i in range(30)])
    later = trades_frame([(SERIES[0], 300_000_000 + i, 101.0, 1.0, "sell") for i in range(3)])
    with store_with(trades) as store:
        assert update_bars(store, "1m") == 5
        store.sql("UPDATE bars SET close = -1 WHERE ts = ?", [T0])  # an old bar, marked
        insert_trades(store, later)
        assert update_bars(store, "1m") == 2  # the last stored bucket, and the new one
        assert stored(store, "1m")["close"].tolist() == [-1.0, 100.0, 100.0, 100.0, 100.0, 101.0]
        assert update_bars(store, "1m", full=True) == 6
        assert stored(store, "1m")["close"].iloc[0] == 100.0


def test_a_series_first_seen_in_the_tail_is_computed_whole() -> None:
    """ETH trades that predate the stored BTC bars, but were recorded after the last update."""
    btc = trades_frame([(SERIES[0], i * 60_000_000, 100.0, 1.0, "buy") for i in range(5)])
    eth = trades_frame([(SERIES[1], i * 60_000_000, 50.0 + i, 1.0, "buy") for i in range(6)])
    with store_with(btc) as store:
        update_bars(store, "1m")
        insert_trades(store, eth)
        assert update_bars(store, "1m") == 1 + 6  # BTC's last bucket, all of ETH
        got = stored(store, "1m")
    assert_bars_equal(got, reference(pd.concat([btc, eth]), "1m", "omit"))


def test_each_series_is_recomputed_from_its_own_last_bar() -> None:
    """An illiquid series lags: its tail starts earlier than the others' and is read from there.

    Stored bars before each series' last one are not recomputed (marked ones stay marked);
    a late trade sharing the timestamp of a stored one closes the bar, by arrival order.
    """
    btc = trades_frame([(SERIES[0], i * 10_000_000, 100.0 + i, 1.0, "buy") for i in range(60)])
    eth = trades_frame([(SERIES[1], i * 30_000_000, 50.0 + i, 2.0, "sell") for i in range(6)])
    later = trades_frame(
        [
            (SERIES[1], 150_000_000, 49.0, 1.0, "buy"),  # same ts as ETH's last trade
            (SERIES[1], 370_000_000, 48.0, 1.0, "sell"),  # before BTC's last bar
            (SERIES[0], 590_000_000, 99.0, 1.0, "buy"),
            (SERIES[0], 730_000_000, 98.0, 1.0, "sell"),
        ]
    )
    with store_with(pd.concat([btc, eth])) as store:
        assert update_bars(store, "1m") == 10 + 3
        marked = [
            (SERIES[0], T0 + pd.Timedelta(minutes=8)),
            (SERIES[1], T0 + pd.Timedelta(minutes=1)),
        ]
        for (exchange, symbol), ts in marked:
            store.sql(
                "UPDATE bars SET close = -1 WHERE exchange = ? AND symbol = ? AND ts = ?",
                [exchange, symbol, ts],
            )
        insert_trades(store, later)
        assert update_bars(store, "1m") == 2 + 2  # BTC 9 and 12, ETH 2 and 6
        got = stored(store, "1m")
    expected = reference(pd.concat([btc, eth, later]), "1m", "omit")
    for (exchange, symbol), ts in marked:
        row = (expected["exchange"] == exchange) & (expected["symbol"] == symbol)
        expected.loc[row & (expected["ts"] == ts), "close"] = -1.0
    assert_bars_equal(got, expected)
    eth_bar = got[(got["symbol"] == "ETH-USD") & (got["ts"] == T0 + pd.Timedelta(minutes=2))]
    assert eth_bar[["open", "close", "trades"]].to_numpy().tolist() == [[54.0, 49.0, 3]]


def test_an_update_of_one_symbol_leaves_the_other_series_alone() -> None:
    first = trades_frame(
        [(s, i * 20_000_000, 10.0 + i, 1.0, "buy") for s in SERIES for i in range(9)]
    )
    second = trades_frame(
        [(s, 200_000_000 + i, 20.0, 1.0, "sell") for s in SERIES for i in range(3)]
    )
    with store_with(first) as store:
        update_bars(store, "1m")
        before = stored(store, "1m")
        insert_trades(store, second)
        assert update_bars(store, "1m", symbol="ETH-USD") == 1 + 1
        got = stored(store, "1m")
        eth = got["symbol"] == "ETH-USD"
        assert_bars_equal(
            got[eth],
            reference(pd.concat([first, second]), "1m", "omit").query("symbol == 'ETH-USD'"),
        )
        assert_bars_equal(got[~eth], before[before["symbol"] != "ETH-USD"])
        update_bars(store, "1m")
        assert_bars_equal(stored(store, "1m"), reference(pd.concat([first, second]), "1m", "omit"))


def assert_remembered_last_bars_are_stored(store: Store, interval: str) -> None:
    """What the speed of an update rests on: the process remembers each series' last bar
    right (or nothing), so it need not search for them. A wrong memory is caught and
    searched past, which these tests would not see in the bars, only in the time taken."""
    remembered = _LAST_BARS.get(store, parse_interval(interval))
    if remembered is not None:
        rows = store.sql(
            "SELECT exchange, symbol, max(ts) AS ts FROM bars WHERE interval = ? GROUP BY ALL",
            [interval],
        )
        assert remembered == {(e, s): ts for e, s, ts in rows.itertuples(index=False)}


selections = st.sampled_from(
    [{}, {"symbol": "ETH-USD"}, {"symbol": "BTC-USD"}, {"exchange": "other"}]
)


@given(
    st.data(),
    intervals,
    policies,
    st.lists(st.tuples(st.floats(0, 1), selections, st.booleans()), min_size=1, max_size=4),
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_mix_of_selected_and_full_updates_ends_where_a_full_recompute_does(
    data: st.DataObject,
    interval: str,
    empty: str,
    steps: list[tuple[float, dict[str, str], bool]],
) -> None:
    """Parts of the trades arrive, each followed by an update of some series, full or not.

    Every series trades before the first update, so none is new later (a series whose
    trades predate the stored bars needs ``full=True``, as documented). After each update
    the remembered last bars are the stored ones; a last update of everything gives the bars
    of a full recompute.
    """
    opening = trades_frame([(s, 0, 100.0, 1.0, "buy") for s in SERIES])
    trades = data.draw(trade_frames(interval)).sort_values("ts", kind="stable")
    bounds = [0, *sorted(int(f * len(trades)) for f, *_ in steps), len(trades)]
    parts = [trades.iloc[a:b] for a, b in itertools.pairwise(bounds)]
    with store_with(opening) as store:
        update_bars(store, interval, empty=empty)
        for part, (_, selection, full) in zip(parts, steps, strict=False):
            insert_trades(store, part)
            update_bars(store, interval, empty=empty, full=full, **selection)
            assert_remembered_last_bars_are_stored(store, interval)
        insert_trades(store, parts[-1])
        update_bars(store, interval, empty=empty)
        assert_remembered_last_bars_are_stored(store, interval)
        got = stored(store, interval)
    assert_bars_equal(got, reference(pd.concat([opening, trades]), interval, empty))


def test_updates_after_the_first_remember_the_last_bars_instead_of_searching() -> None:
    trades = trades_frame(
        [(s, i * 20_000_000, 10.0 + i, 1.0, "buy") for s in SERIES for i in range(9)]
    )
    with store_with(trades) as store:
        update_bars(store, "1m")  # a first build: nothing to remember yet
        assert _LAST_BARS.get(store, parse_interval("1m")) is None
        update_bars(store, "1m")  # searches, then remembers
        for step in range(3):
            insert_trades(
                store, trades_frame([(s, 200_000_000 + step, 20.0, 1.0, "sell") for s in SERIES])
            )
            update_bars(store, "1m", symbol=None if step else "ETH-USD")
            assert _LAST_BARS.get(store, parse_interval("1m")) is not None
            assert_remembered_last_bars_are_stored(store, "1m")
        store.close()
        with Store.open(store.path) as reopened:
            assert _LAST_BARS.get(reopened, parse_interval("1m")) is None
            assert update_bars(reopened, "1m") == len(SERIES)  # searched: each last bar again
            assert_remembered_last_bars_are_stored(reopened, "1m")


def test_bars_changed_by_sql_since_the_last_update_are_searched_for_again() -> None:
    """Deleted last bars, bars added after them, a whole interval dropped: each time the
    update notices that the remembered last bars are not the stored ones, searches, and
    ends where a full recompute does."""
    first = trades_frame(
        [(s, i * 20_000_000, 10.0 + i, 1.0, "buy") for s in SERIES for i in range(9)]
    )
    more = [
        trades_frame([(s, at + i, 20.0 + i, 1.0, "sell") for s in SERIES for i in range(3)])
        for at in (200_000_000, 330_000_000, 450_000_000)
    ]
    edits = [
        "DELETE FROM bars WHERE interval = '1m' AND symbol = 'ETH-USD' AND ts >= ?",
        "INSERT INTO bars (exchange, symbol, interval, ts, open, high, low, close, volume) "
        "SELECT exchange, symbol, interval, ts + INTERVAL 1 MINUTE, 1, 1, 1, 1, 1 "
        "FROM bars WHERE interval = '1m' AND ts >= ?",
        "DELETE FROM bars WHERE interval = '1m' AND ts <= ?",
    ]
    with store_with(first) as store:
        update_bars(store, "1m")
        update_bars(store, "1m")
        arrived = [first]
        for trades, edit in zip(more, edits, strict=True):
            [last] = store.sql("SELECT max(ts) AS ts FROM bars")["ts"]
            store.sql(edit, [last])
            insert_trades(store, trades)
            arrived.append(trades)
            update_bars(store, "1m")
            assert_remembered_last_bars_are_stored(store, "1m")
            assert_bars_equal(stored(store, "1m"), reference(pd.concat(arrived), "1m", "omit"))


def test_a_last_bar_whose_trades_were_deleted_is_found_again() -> None:
    """Cleaning drops BTC's trades of its last minute: the next update removes that bar, and
    the one after knows BTC's last bar moved back, so a late BTC trade before ETH's last bar
    is read."""
    btc = trades_frame([(SERIES[0], i * 60_000_000, 100.0 + i, 1.0, "buy") for i in range(5)])
    eth = trades_frame([(SERIES[1], i * 60_000_000, 50.0 + i, 1.0, "sell") for i in range(6)])
    late = trades_frame([(SERIES[0], 210_000_000, 90.0, 2.0, "sell")])  # in BTC's minute 3
    with store_with(pd.concat([btc, eth])) as store:
        update_bars(store, "1m")
        update_bars(store, "1m")
        store.sql(
            "DELETE FROM trades WHERE symbol = 'BTC-USD' AND ts >= ?",
            [T0 + pd.Timedelta(minutes=4)],
        )
        insert_trades(store, trades_frame([(SERIES[1], 330_000_000, 55.5, 1.0, "buy")]))
        update_bars(store, "1m")
        assert_remembered_last_bars_are_stored(store, "1m")
        insert_trades(store, late)
        update_bars(store, "1m")
        got = stored(store, "1m")
        kept = store.sql("SELECT * EXCLUDE (recv_ts, trade_id) FROM trades ORDER BY rowid")
    assert_bars_equal(got, reference(kept, "1m", "omit"))
    assert got.query("symbol == 'BTC-USD'")["close"].tolist() == [100.0, 101.0, 102.0, 90.0]


def test_update_selects_series_and_names_what_exists_when_nothing_matches() -> None:
    trades = trades_frame([(s, 0, 100.0, 1.0, "buy") for s in SERIES])
    with store_with(trades) as store:
        assert update_bars(store, "1m", symbol="ETH-USD") == 1
        assert update_bars(store, "1m", exchange="other") == 1
        assert stored(store, "1m")[["exchange", "symbol"]].to_numpy().tolist() == [
            ["other", "BTC-USD"],
            ["sim", "ETH-USD"],
        ]
        with pytest.raises(
            UsageError,
            match=r"no trades for symbol=DOGE-USD; .*: other BTC-USD, sim BTC-USD, sim ETH-USD",
        ):
            update_bars(store, "1m", symbol="DOGE-USD")
        with pytest.raises(UsageError, match="cannot build 5m bars from 2m"):
            update_bars(store, "5m", from_interval="2m")
        with pytest.raises(UsageError, match="is the interval being built"):
            update_bars(store, "1m", from_interval="60s")


# --- book snapshots → mid/spread ---------------------------------------------------------------


def snapshot_rows() -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for n, (bid, ask, valid) in enumerate([(99.0, 101.0, True), (99.5, 100.0, False)]):
        recv = T0 + pd.Timedelta(seconds=n)
        for side, best, step in (("bid", bid, -0.5), ("ask", ask, 0.5)):
            for level in range(3):
                rows.append(
                    {
                        "exchange": "sim",
                        "symbol": "BTC-USD",
                        "ts": recv - pd.Timedelta(milliseconds=5),
                        "recv_ts": recv,
                        "seq": n,
                        "valid": valid,
                        "side": side,
                        "level": level,
                        "price": best + step * level,
                        "size": 1.0,
                    }
                )
    frame = pd.DataFrame(rows)
    return frame.astype({"ts": "datetime64[us]", "recv_ts": "datetime64[us]"})


def test_mid_and_spread_per_snapshot_from_a_frame_and_from_the_store() -> None:
    snapshots = snapshot_rows()
    series = mid_spread(snapshots)
    assert series[["bid", "ask", "mid", "spread", "valid"]].to_numpy().tolist() == [
        [99.0, 101.0, 100.0, 2.0, True],
        [99.5, 100.0, 99.75, 0.5, False],
    ]
    assert series["ts"].tolist() == snapshots["ts"].unique().tolist()
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "b.duckdb") as store:
        with store.cursor() as cursor:
            cursor.register("rows", snapshots)
            cursor.execute("INSERT INTO book_snapshots BY NAME SELECT * FROM rows")
        pd.testing.assert_frame_equal(mid_spread(store, symbol="BTC-USD"), series)
        assert mid_spread(store, symbol="ETH-USD").empty
