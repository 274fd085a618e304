"""Cleaning inside DuckDB (workbench.analysis.clean) agrees exactly with the pure rules.

Every test uses a real DuckDB file. The acceptance fixture is loaded into a table without the
recorder's UNIQUE constraint (``trades`` itself refuses duplicate trade ids, so the duplicate
rules could never fire there) and into ``quality_events``; both paths must then produce the
same counts, the same flagged rows, the same clean rows, the same windows and examples.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.test_clean_rules import (
    CONFIG,
    NOW,
    QUOTE_COUNTS,
    SNAPSHOT_CONFIG,
    SNAPSHOT_COUNTS,
    TRADE_COUNTS,
    Fixture,
    fixture,
    flagged,
    snapshot_fixture,
)
from workbench.analysis.clean import clean_table
from workbench.core.clean import CleanConfig, CleanReport, CleanResult, Hampel, ZScore, clean_frame
from workbench.errors import UsageError
from workbench.store import Store

T0_US = 1_709_251_200_000_000  # 2024-03-01 00:00:00 UTC, the fixture's start
RECORDED_US = T0_US + 2 * 86_400_000_000  # clear of the fixture's quality windows


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "clean.duckdb") as s:
        yield s


def load(store: Store, fx: Fixture, table: str) -> None:
    frame, events = fx.frame, fx.events  # noqa: F841 (DuckDB scans the local DataFrames)
    with store.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {table} AS SELECT * FROM frame")
        cursor.execute(
            "INSERT INTO quality_events BY NAME "
            "SELECT exchange, symbol, ts, kind, detail FROM events"
        )


def both(
    store: Store, fx: Fixture, config: CleanConfig, table: str
) -> tuple[CleanResult, CleanReport]:
    pure = clean_frame(fx.frame, fx.kind, config, now=NOW, quality_events=fx.events)
    stored = clean_table(store, fx.kind, config, source=table, now=NOW.to_pydatetime())
    return pure, stored


def stored_flags(store: Store, source: str) -> pd.DataFrame:
    return store.sql(
        "SELECT row_id, exchange, symbol, ts, rule, action FROM clean_flags WHERE source = ?",
        [source],
    )


def assert_same(store: Store, pure: CleanResult, stored: CleanReport, table: str) -> None:
    """Counts, flags (with actions), clean rows, windows and examples are identical."""
    pd.testing.assert_frame_equal(stored.counts, pure.report.counts)
    pd.testing.assert_frame_equal(stored.windows, pure.report.windows)
    pd.testing.assert_frame_equal(stored.examples, pure.report.examples, check_dtype=False)
    key = ["rule", "row_id"]
    flags = stored_flags(store, table).sort_values(key, ignore_index=True)
    expected = pure.flags.sort_values(key, ignore_index=True)
    pd.testing.assert_frame_equal(flags, expected, check_dtype=False)
    clean = store.sql(f"SELECT * FROM clean_{table}")
    pd.testing.assert_frame_equal(clean, pure.clean, check_dtype=False)
    assert (stored.rows_in, stored.rows_out) == (pure.report.rows_in, pure.report.rows_out)


@pytest.mark.parametrize(("kind", "counts"), [("trades", TRADE_COUNTS), ("quotes", QUOTE_COUNTS)])
def test_duckdb_and_pandas_find_exactly_the_known_defects(
    store: Store, kind: str, counts: dict[str, int]
) -> None:
    fx = fixture(kind)
    load(store, fx, f"fixture_{kind}")
    pure, stored = both(store, fx, CONFIG, f"fixture_{kind}")
    assert {r: stored.count(r) for r in stored.rules} == {r: counts.get(r, 0) for r in stored.rules}
    assert flagged(stored_flags(store, f"fixture_{kind}")) == fx.expected
    assert_same(store, pure, stored, f"fixture_{kind}")


def test_book_snapshots_agree_on_the_known_defects(store: Store) -> None:
    fx = snapshot_fixture()
    load(store, fx, "fixture_books")
    pure, stored = both(store, fx, SNAPSHOT_CONFIG, "fixture_books")
    assert {r: stored.count(r) for r in stored.rules} == SNAPSHOT_COUNTS
    assert_same(store, pure, stored, "fixture_books")


def test_actions_that_drop_flagged_rules_agree_too(store: Store) -> None:
    fx = fixture("trades")
    load(store, fx, "fixture_trades")
    config = replace(
        CONFIG,
        actions={"zscore": "drop", "stale": "drop", "quality_window": "drop", "duplicate": "flag"},
    )
    pure, stored = both(store, fx, config, "fixture_trades")
    assert_same(store, pure, stored, "fixture_trades")
    kept = set(store.sql("SELECT row_id FROM clean_fixture_trades")["row_id"])
    assert not (fx.expected["zscore"] | fx.expected["stale"]) & kept
    assert fx.expected["duplicate"] <= kept


def test_a_noisy_random_series_cleans_identically_on_both_paths(store: Store) -> None:
    """No hand-placed defects: random walks with random spikes, NULLs, repeats, copies and
    reordering, so the rules interact; the two implementations must still agree row by row."""
    rng = np.random.default_rng(20240301)
    n = 6000
    symbol = rng.choice(["BTC-USD", "ETH-USD", "SOL-USD"], n)
    ts = T0_US + np.cumsum(rng.integers(1, 400_000, n))
    ts += 120_000_000 * np.cumsum(rng.random(n) < 0.002)
    ts[rng.random(n) < 0.01] -= 3_000_000
    ts[rng.random(n) < 0.001] += 2 * 86_400_000_000
    price = 100 + np.cumsum(rng.normal(0, 0.05, n)).round(2)
    price[rng.random(n) < 0.01] *= rng.choice([0.9, 1.1])
    repeat = rng.random(n) < 0.3
    frame = pd.DataFrame(
        {
            "exchange": "sim",
            "symbol": symbol,
            "ts": pd.to_datetime(ts, unit="us"),
            "recv_ts": pd.to_datetime(ts + rng.integers(0, 7_000_000, n), unit="us"),
            "price": np.where(repeat, np.roll(price, 1), price),
            "size": np.where(repeat, 0.5, rng.integers(1, 20, n) / 10),
            "side": rng.choice(["buy", "sell"], n),
            "trade_id": rng.integers(0, n * 2, n).astype(str),
        }
    )
    for column in ("price", "size", "side", "recv_ts", "ts", "trade_id"):
        frame.loc[rng.random(n) < 0.01, column] = None
    frame.loc[rng.random(n) < 0.003, "price"] = 0.0
    frame = pd.concat([frame, frame.sample(40, random_state=1)], ignore_index=True)
    events = pd.DataFrame(
        {
            "exchange": "sim",
            "symbol": [None, "BTC-USD", "BTC-USD", "ETH-USD"],
            "ts": pd.to_datetime(T0_US + np.array([60, 300, 420, 500]) * 1_000_000, unit="us"),
            "kind": ["disconnect", "gap", "resync", "resync"],
            "detail": "{}",
        }
    )
    fx = Fixture("trades", frame, events)
    load(store, fx, "noisy")
    config = CleanConfig(
        stale_rows=3,
        max_gap=timedelta(seconds=60),
        zscore=ZScore(window=20, threshold=3.0),
        hampel=Hampel(half_window=5, n_sigmas=3.0),
        fill={"price": "interpolate", "size": "ffill", "side": "ffill"},
        actions={"hampel": "drop"},
    )
    pure, stored = both(store, fx, config, "noisy")
    assert_same(store, pure, stored, "noisy")
    assert all(stored.count(r) > 0 for r in stored.rules), stored.summary()


def test_raw_tables_are_never_modified(store: Store) -> None:
    fx = fixture("trades")
    load(store, fx, "fixture_trades")
    record_trades(store)
    before = {
        t: store.sql(f"SELECT * FROM {t} ORDER BY rowid")
        for t in ("fixture_trades", "trades", "quality_events")
    }
    clean_table(store, "trades", CONFIG, source="fixture_trades", now=NOW.to_pydatetime())
    clean_table(store, "trades", CONFIG, now=NOW.to_pydatetime())
    for table, rows in before.items():
        pd.testing.assert_frame_equal(store.sql(f"SELECT * FROM {table} ORDER BY rowid"), rows)


def record_trades(store: Store, n: int = 500) -> None:
    """Trades the way the recorder stores them: through the writer into ``trades``."""
    i = range(n)
    store.writer.submit(
        "trades",
        {
            "exchange": ["sim"] * n,
            "symbol": ["BTC-USD"] * n,
            "ts": [RECORDED_US + x * 100_000 for x in i],
            "recv_ts": [RECORDED_US + x * 100_000 + 1_000 for x in i],
            "price": [30_000.0 + (x * 7) % 11 - 5 for x in i],
            "size": [0.01 * (1 + (x * 5) % 13) for x in i],
            "side": ["buy"] * n,
            "trade_id": [str(x) for x in i],
        },
    )
    store.flush()


def test_the_recorder_tables_clean_by_default_and_empty_ones_report_zero(store: Store) -> None:
    record_trades(store)
    report = clean_table(store)
    assert (report.kind, report.source, report.rows_in, report.rows_out) == (
        "trades",
        "trades",
        500,
        500,
    )
    assert report.counts["rows"].sum() == 0
    assert store.sql("SELECT count(*) AS n FROM clean_trades")["n"].item() == 500
    for kind in ("quotes", "book_snapshots"):
        empty = clean_table(store, kind)
        assert (empty.rows_in, empty.rows_out, empty.counts["rows"].sum()) == (0, 0, 0)
        assert store.sql(f"SELECT count(*) AS n FROM clean_{kind}")["n"].item() == 0


def test_future_is_judged_against_the_current_time_by_default(store: Store) -> None:
    record_trades(store)
    with store.cursor() as cursor:
        cursor.execute("UPDATE trades SET ts = now()::TIMESTAMP + INTERVAL 1 DAY WHERE rowid < 3")
    assert clean_table(store).count("future") == 3


def test_a_rerun_replaces_its_own_flags_and_leaves_other_sources_alone(store: Store) -> None:
    fx = fixture("trades")
    load(store, fx, "fixture_trades")
    record_trades(store)
    with store.cursor() as cursor:
        cursor.execute("UPDATE trades SET price = -1 WHERE rowid = 7")
    clean_table(store)
    first = clean_table(store, "trades", CONFIG, source="fixture_trades", now=NOW.to_pydatetime())
    again = clean_table(store, "trades", CONFIG, source="fixture_trades", now=NOW.to_pydatetime())
    pd.testing.assert_frame_equal(again.counts, first.counts)
    per_source = store.sql("SELECT source, count(*) AS n FROM clean_flags GROUP BY ALL ORDER BY 1")
    assert per_source.to_dict("list") == {
        "source": ["fixture_trades", "trades"],
        "n": [int(first.counts["rows"].sum()), 1],
    }
    windows = store.sql("SELECT count(*) AS n FROM clean_windows WHERE source = 'fixture_trades'")
    assert windows["n"].item() == len(first.windows)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("nope", "no table 'nope'"),
        ("bad name", "table names are letters"),
        ("instruments", "lacks the trades columns"),
        ("trades_view", "a view has no rowid"),
    ],
)
def test_a_source_it_cannot_clean_is_a_usage_error(store: Store, source: str, message: str) -> None:
    with store.cursor() as cursor:
        cursor.execute("CREATE VIEW trades_view AS SELECT * FROM trades")
    with pytest.raises(UsageError, match=message):
        clean_table(store, "trades", source=source)


def test_an_unknown_kind_is_a_usage_error(store: Store) -> None:
    with pytest.raises(UsageError, match="cannot clean 'bars'"):
        clean_table(store, "bars")


def test_cleaning_while_the_recorder_writes_sees_one_consistent_snapshot(store: Store) -> None:
    record_trades(store)
    stop = threading.Event()

    def keep_recording() -> None:
        batch = 0
        while not stop.is_set():
            batch += 1
            base = RECORDED_US + batch * 60_000_000
            store.writer.submit(
                "trades",
                {
                    "exchange": ["sim"] * 100,
                    "symbol": ["ETH-USD"] * 100,
                    "ts": [base + x * 1_000 for x in range(100)],
                    "recv_ts": [base + x * 1_000 + 500 for x in range(100)],
                    "price": [2_000.0 + x % 7 for x in range(100)],
                    "size": [1.0 + x % 3 for x in range(100)],
                    "side": ["sell"] * 100,
                    "trade_id": [f"{batch}-{x}" for x in range(100)],
                },
            )
            time.sleep(0.005)

    writer = threading.Thread(target=keep_recording)
    writer.start()
    try:
        reports = [clean_table(store) for _ in range(3)]
    finally:
        stop.set()
        writer.join()
    store.flush()
    total = store.sql("SELECT count(*) AS n FROM trades")["n"].item()
    for report in reports:
        assert 500 <= report.rows_in <= total
        assert report.rows_out == report.rows_in  # nothing here deserves a drop
    assert store.sql("SELECT count(*) AS n FROM clean_trades")["n"].item() == reports[-1].rows_out
