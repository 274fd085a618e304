"""CSV import: real export layouts load as bars; a malformed row stops it with FILE:LINE: why."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.analysis.bars import update_bars
from workbench.analysis.csv_import import (
    ImportedBars,
    _validate,
    _write,
    import_csv,
    read_ohlcv_csv,
)
from workbench.errors import StoreError, UsageError
from workbench.store import Store

HOURS = 48
START = pd.Timestamp("2024-03-01 00:00:00")
CDD_HEADER = "unix,date,symbol,open,high,low,close,Volume BTC,Volume USDT,tradecount"


def cdd_rows() -> list[str]:
    """Hourly CryptoDataDownload rows, newest first, epoch in milliseconds."""
    rows = []
    for h in reversed(range(HOURS)):
        ts = START + pd.Timedelta(hours=h)
        o = 62_000 + 10 * h
        c = o + (15 if h % 2 else -12)
        hi, lo = max(o, c) + 20.5, min(o, c) - 18.25
        base = 100 + h * 1.5
        vwap = (o + c) / 2
        rows.append(
            f"{ts.value // 1_000_000},{ts:%Y-%m-%d %H:%M:%S},BTC/USDT,{o:.2f},{hi:.2f},{lo:.2f},"
            f"{c:.2f},{base:.8f},{base * vwap:.8f},{1000 + h}"
        )
    return rows


def write(tmp_path: Path, lines: list[str], name: str = "Binance_BTCUSDT_1h.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def cdd_file(tmp_path: Path) -> Path:
    return write(tmp_path, ["https://www.CryptoDataDownload.com", CDD_HEADER, *cdd_rows()])


def test_a_cryptodatadownload_hourly_file_reads_as_ascending_hourly_bars(tmp_path: Path) -> None:
    bars = read_ohlcv_csv(cdd_file(tmp_path))
    assert len(bars) == HOURS
    assert (bars["interval"] == "1h").all()
    assert bars["ts"].tolist() == [START + pd.Timedelta(hours=h) for h in range(HOURS)]
    first = bars.iloc[0]
    assert (first["open"], first["close"], first["trades"]) == (62_000.0, 61_988.0, 1000)
    assert first["vwap"] == pytest.approx((62_000 + 61_988) / 2, rel=1e-12)
    assert first["volume"] == 100.0
    assert bars[["buy_volume", "sell_volume"]].isna().all().all()


def test_import_stores_the_bars_and_a_reimport_replaces_them(tmp_path: Path) -> None:
    path = cdd_file(tmp_path)
    with Store.open(tmp_path / "w.duckdb") as store:
        imported = import_csv(store, path, exchange="binance", symbol="BTCUSDT")
        import_csv(store, path, exchange="binance", symbol="BTCUSDT")
        rows = store.sql("SELECT * FROM bars ORDER BY ts")
    assert len(rows) == HOURS == imported.rows
    assert imported == ImportedBars(HOURS, "1h", START, START + pd.Timedelta(hours=HOURS - 1))
    assert set(rows["exchange"]) == {"binance"} and set(rows["symbol"]) == {"BTCUSDT"}
    assert (rows["interval"] == "1h").all()
    np.testing.assert_array_equal(rows["close"], read_ohlcv_csv(path)["close"])
    assert rows["trades"].tolist() == list(range(1000, 1000 + HOURS))


def test_imported_hourly_bars_resample_to_four_hour_bars(tmp_path: Path) -> None:
    with Store.open(tmp_path / "w.duckdb") as store:
        import_csv(store, cdd_file(tmp_path), exchange="binance", symbol="BTCUSDT")
        assert update_bars(store, "4h", from_interval="1h") == HOURS // 4
        first = store.sql("SELECT * FROM bars WHERE interval = '4h' ORDER BY ts").iloc[0]
        hourly = store.sql("SELECT * FROM bars WHERE interval = '1h' ORDER BY ts").iloc[:4]
    assert first["ts"] == START
    assert (first["open"], first["close"]) == (hourly["open"].iloc[0], hourly["close"].iloc[-1])
    assert (first["high"], first["low"]) == (hourly["high"].max(), hourly["low"].min())
    assert first["volume"] == pytest.approx(hourly["volume"].sum())
    assert first["trades"] == hourly["trades"].sum()


def test_a_plain_file_with_iso_times_or_epoch_seconds(tmp_path: Path) -> None:
    iso = write(
        tmp_path,
        [
            "timestamp,open,high,low,close,volume",
            "2024-03-01T00:00:00Z,10,12,9,11,5",
            "2024-03-01 00:01:00,11,11.5,10.5,11,0",
            "",
            "2024-03-01T01:02:00+01:00,11,13,11,12,7.5",
        ],
        "plain.csv",
    )
    bars = read_ohlcv_csv(iso)
    assert bars["interval"].tolist() == ["1m"] * 3
    assert bars["ts"].tolist() == [START + pd.Timedelta(minutes=m) for m in range(3)]
    assert bars["vwap"].isna().all() and bars["trades"].isna().all()
    epoch = write(
        tmp_path,
        ["Timestamp,Open,High,Low,Close,Volume", "1709251200,10,12,9,11,5", "1709254800,1,1,1,1,0"],
        "epoch.csv",
    )
    assert read_ohlcv_csv(epoch)["ts"].tolist() == [START, START + pd.Timedelta(hours=1)]


def test_epoch_units_are_told_apart_row_by_row(tmp_path: Path) -> None:
    seconds, millis, micros = 1709251200, 1709254800_000, 1709258400_000_000
    path = write(
        tmp_path,
        ["unix,open,high,low,close,volume"] + [f"{t},1,1,1,1,1" for t in (seconds, millis, micros)],
    )
    assert read_ohlcv_csv(path)["ts"].tolist() == [START + pd.Timedelta(hours=h) for h in range(3)]


def test_an_explicit_interval_must_fit_every_row(tmp_path: Path) -> None:
    path = cdd_file(tmp_path)
    assert (read_ohlcv_csv(path, interval="30m")["interval"] == "30m").all()
    with pytest.raises(UsageError, match=r":3: 2024-03-02 23:00:00 is not the start of a 1d bar"):
        read_ohlcv_csv(path, interval="1d")


def corrupt(line: int, row: str) -> list[str]:
    """The CDD file with data row ``line`` (its line number in the file) replaced."""
    lines = ["https://www.CryptoDataDownload.com", CDD_HEADER, *cdd_rows()]
    lines[line - 1] = row
    return lines


GOOD = "1709424000000,2024-03-03 00:00:00,BTC/USDT,62000,62100,61900,62050,10,620250,100"


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            corrupt(5, GOOD.replace(",62050,", ",abc,")),
            r":5: close 'abc' is not a finite number$",
        ),
        (corrupt(4, GOOD.replace(",62050,", ",,")), r":4: close is missing$"),
        (corrupt(7, GOOD + ",extra"), r":7: expected 10 fields \(unix,date,.*\), got 11$"),
        (corrupt(6, GOOD.replace(",62100,", ",61990,")), r":6: high 61990 is below max"),
        (corrupt(6, GOOD.replace(",61900,", ",62010,")), r":6: low 62010 is above min"),
        (corrupt(8, GOOD.replace(",10,620250,", ",-10,-620250,")), r":8: volume -10 is negative"),
        (corrupt(8, GOOD.replace("62000,", "0,", 1)), r":8: prices must be > 0"),
        (corrupt(9, GOOD.replace(",100", ",1.5")), r":9: trade count 1.5 is not a whole number"),
        (
            corrupt(9, GOOD.replace(",10,620250,", ",620250,10,")),
            r":9: quote/base volume gives a VWAP of .*: the first volume column must be",
        ),
        (
            corrupt(3, GOOD.replace("1709424000000", "yesterday")),
            r":3: unix 'yesterday' is neither a Unix time nor an ISO 8601 date$",
        ),
        (
            [*corrupt(3, GOOD), GOOD.replace("1709424000000", "1709424000")],
            r":51: duplicate bar 2024-03-03 00:00:00 \(also on line 3\)$",
        ),
        (
            corrupt(4, GOOD.replace("1709424000000", "1709424030000")),
            r":4: 2024-03-03 00:00:30 is not the start of a 1h bar",
        ),
        (
            [*corrupt(10, GOOD.replace(",62050,", ",x,")), GOOD.replace(",62100,", ",y,")],
            r":10: close 'x' is not a finite number \(1 more malformed row\)$",
        ),
        (["some,unrelated,header", "1,2,3"], r": no header line"),
        (["https://example.com", CDD_HEADER], r": no data rows after the header$"),
        (["time,open,high,low,close", "1,1,1,1,1"], r": the header has no volume"),
    ],
)
def test_malformed_files_name_the_file_line_and_problem(
    tmp_path: Path, lines: list[str], message: str
) -> None:
    path = write(tmp_path, lines)
    with pytest.raises(UsageError, match=rf"^{path}{message}"):
        read_ohlcv_csv(path)


def test_a_malformed_file_writes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, corrupt(40, GOOD.replace(",62050,", ",abc,")))
    with Store.open(tmp_path / "w.duckdb") as store:
        with pytest.raises(UsageError, match=":40: close 'abc'"):
            import_csv(store, path, exchange="binance", symbol="BTCUSDT")
        assert store.table_counts()["bars"] == 0


def test_a_file_of_many_chunks_imports_whole_and_a_bad_row_in_a_late_chunk_writes_nothing(
    tmp_path: Path,
) -> None:
    # 48 rows read 5 at a time: ten chunks, newest first, so the grid, duplicate and interval
    # checks span chunks, and the stored bars must equal the one-chunk read.
    path = cdd_file(tmp_path)
    whole = read_ohlcv_csv(path, chunk_rows=1_000)
    pd.testing.assert_frame_equal(read_ohlcv_csv(path, chunk_rows=5), whole)
    with Store.open(tmp_path / "w.duckdb") as store:
        assert import_csv(store, path, exchange="b", symbol="s", chunk_rows=5).rows == HOURS
        stored = store.sql("SELECT * EXCLUDE (exchange, symbol) FROM bars ORDER BY ts")
    pd.testing.assert_frame_equal(stored, whole, check_dtype=False)

    # Line 44 is in the ninth chunk (lines 43-47); the rows before it are good, and the
    # policy is still all or nothing.
    bad = write(tmp_path, corrupt(44, GOOD.replace(",62050,", ",abc,")), "late.csv")
    with Store.open(tmp_path / "late.duckdb") as store:
        with pytest.raises(UsageError, match=rf"^{bad}:44: close 'abc' is not a finite number$"):
            import_csv(store, bad, exchange="b", symbol="s", chunk_rows=5)
        assert store.table_counts()["bars"] == 0

    # Errors in several chunks: the earliest line, and every other bad row counted.
    lines = corrupt(12, GOOD.replace(",62050,", ",x,"))
    lines[45] = lines[45].replace(",BTC/USDT,", ",BTC/USDT,,")
    many = write(tmp_path, lines, "many.csv")
    with pytest.raises(UsageError, match=rf"^{many}:12: close 'x' .* \(1 more malformed row\)$"):
        read_ohlcv_csv(many, chunk_rows=5)
    # A repeated bar across chunks names both lines.
    repeated = write(tmp_path, [*corrupt(3, GOOD), GOOD], "repeated.csv")
    with pytest.raises(UsageError, match=r":51: duplicate bar .* \(also on line 3\)$"):
        read_ohlcv_csv(repeated, chunk_rows=5)


@pytest.mark.parametrize("time", ["1e300", "-1e300", "1e30", "-90000000000"])
def test_a_number_too_large_for_a_time_names_its_line_without_numpy_warnings(
    tmp_path: Path, time: str
) -> None:
    # Two rows, no --interval: the bad time once overflowed into the spacing and gave
    # "rows are 9223372036854775807 µs apart" with no line, after a numpy RuntimeWarning.
    path = write(
        tmp_path,
        ["timestamp,open,high,low,close,volume", "1709251200,1,1,1,1,1", f"{time},1,1,1,1,1"],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(
            UsageError,
            match=rf"^{path}:3: timestamp '{time}' is out of range: as a Unix time it is not "
            r"within the years 1 to 9999$",
        ):
            read_ohlcv_csv(path)


def test_a_write_that_fails_midway_says_how_many_bars_are_stored(tmp_path: Path) -> None:
    path = cdd_file(tmp_path)
    db = tmp_path / "w.duckdb"
    Store.open(db).close()
    stored = r"\(0 of 48 bars are stored; import the file again\)"
    with Store.open(db, read_only=True) as store, pytest.raises(StoreError, match=stored):
        import_csv(store, path, exchange="b", symbol="s", chunk_rows=5)
    # A file edited between the check and the write: the chunks before the change are stored.
    plan = _validate(path, None, 5)
    path.write_text(path.read_text().replace(",62370.00,", ",x,"))
    with Store.open(tmp_path / "edited.duckdb") as store:
        with pytest.raises(UsageError, match=r"the file changed during the import; 10 of 48 bars"):
            _write(store, plan, "b", "s")
        assert store.table_counts()["bars"] == 10


def test_missing_or_undecodable_files_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        read_ohlcv_csv(tmp_path / "nope.csv")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"timestamp,open,high,low,close,volume\n\xff\xfe,1,1,1,1,1\n")
    with pytest.raises(UsageError, match="not UTF-8 text"):
        read_ohlcv_csv(binary)
    with pytest.raises(UsageError, match="pass --interval"):
        read_ohlcv_csv(write(tmp_path, ["timestamp,open,high,low,close,volume", "0,1,1,1,1,1"]))
