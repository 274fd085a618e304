"""`workbench clean` as an operator runs it: a real DuckDB file, a subprocess, exit codes.

The printed report must be the one the database holds afterwards, the fixture's known defects
must come out with the known counts through the CLI's flags too, and every usage mistake is
exit 2 with one line on stderr (a runtime failure such as a locked file is exit 1).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd

from tests.e2e import ENV
from tests.test_clean_rules import NOW, TRADE_COUNTS, fixture
from tests.test_clean_store import RECORDED_US, record_trades
from workbench.store import Store

ROW = re.compile(r"^([a-z_]+) +([\d,]+) +([\d,]+)  ", re.M)
HEADLINE = re.compile(r"^clean (\w+) from (\w+): ([\d,]+) rows in, ([\d,]+) out", re.M)
FIXTURE_FLAGS = [
    "--max-skew", "5", "--tolerance", "1", "--max-gap", "30", "--stale-rows", "20",
    "--window", "50", "--z", "5", "--hampel-window", "10", "--sigmas", "16",
    "--fill", "price=ffill", "--fill", "size=interpolate",
]  # fmt: skip
"""The CLI spelling of tests.test_clean_rules.CONFIG."""


def workbench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbench", "clean", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )


def counts(stdout: str) -> dict[str, int]:
    return {rule: int(rows.replace(",", "")) for rule, rows, _ in ROW.findall(stdout)}


def recorded_store(path: Path) -> None:
    """A file as the recorder leaves it: trades, one book snapshot, a quote, an incident."""
    with Store.open(path) as store:
        record_trades(store)
        with store.cursor() as cursor:
            cursor.execute("UPDATE trades SET price = 0 WHERE trade_id IN ('3', '4')")
            cursor.execute(
                "INSERT INTO book_snapshots BY NAME SELECT * FROM (VALUES "
                "('sim', 'BTC-USD', make_timestamp($t), make_timestamp($t), 1, true, 'bid', 0, "
                "  30000, 1), "
                "('sim', 'BTC-USD', make_timestamp($t), make_timestamp($t), 1, true, 'ask', 0, "
                "  29999, 1)) "
                "AS t(exchange, symbol, ts, recv_ts, seq, valid, side, level, price, size)",
                {"t": RECORDED_US},
            )
            cursor.execute(
                "INSERT INTO quotes (exchange, symbol, ts, recv_ts, bid_price, bid_size, "
                "ask_price, ask_size) VALUES ('sim', 'BTC-USD', make_timestamp($t), "
                "make_timestamp($t), 30000, 1, 30000.5, 2)",
                {"t": RECORDED_US},
            )
            cursor.execute(
                "INSERT INTO quality_events (exchange, symbol, ts, kind, detail) VALUES "
                "('sim', NULL, make_timestamp($t), 'disconnect', '{}')",
                {"t": RECORDED_US + 10_000_000},
            )


def test_clean_reports_every_recorded_table_and_the_file_holds_what_it_printed(
    tmp_path: Path,
) -> None:
    db = tmp_path / "rec.duckdb"
    recorded_store(db)
    out = workbench("--db", str(db), "--now", "2030-01-01T00:00:00")
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    headlines = HEADLINE.findall(out.stdout)
    assert headlines == [
        ("trades", "trades", "500", "498"),
        ("quotes", "quotes", "1", "1"),
        ("book_snapshots", "book_snapshots", "2", "0"),
    ]
    assert "non_positive            2          2" in out.stdout
    assert "quality_window        400          0" in out.stdout  # 10 s on, never resynced
    assert "crossed                 2          2" in out.stdout
    with duckdb.connect(db, read_only=True) as con:
        for kind, _, _, rows_out in headlines:
            assert con.execute(f"SELECT count(*) FROM clean_{kind}").fetchone() == (int(rows_out),)
        flags = con.execute(
            "SELECT source, rule, count(*) FROM clean_flags GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        assert flags == [
            ("book_snapshots", "crossed", 2),
            ("trades", "non_positive", 2),
            ("trades", "quality_window", 400),
        ]
        assert con.execute("SELECT count(*) FROM trades").fetchone() == (500,)


def test_the_known_defects_come_out_exactly_through_the_cli(tmp_path: Path) -> None:
    db = tmp_path / "fixture.duckdb"
    fx = fixture("trades")
    frame, events = fx.frame, fx.events  # noqa: F841 (scanned by DuckDB below)
    with Store.open(db) as store, store.cursor() as cursor:
        cursor.execute("CREATE TABLE vendor_ticks AS SELECT * FROM frame")
        cursor.execute("INSERT INTO quality_events BY NAME SELECT * FROM events")
    out = workbench(
        "--db", str(db), "--table", "trades", "--source", "vendor_ticks",
        "--now", NOW.isoformat(), *FIXTURE_FLAGS,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert counts(out.stdout) == TRADE_COUNTS
    with duckdb.connect(db, read_only=True) as con:
        stored = con.execute(
            "SELECT rule, count(*) FROM clean_flags WHERE source = 'vendor_ticks' GROUP BY rule"
        ).fetchall()
        assert dict(stored) == TRADE_COUNTS
        kept = con.execute("SELECT count(*) FROM clean_vendor_ticks").fetchone()
        assert kept == (len(frame) - 15,)


def test_rule_actions_and_switches_reach_the_rules(tmp_path: Path) -> None:
    db = tmp_path / "rec.duckdb"
    recorded_store(db)
    out = workbench(
        "--db", str(db), "--table", "trades", "--flag", "non_positive",
        "--drop", "quality_window", "--no-zscore", "--no-hampel", "--now", "2030-01-01",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert HEADLINE.findall(out.stdout) == [("trades", "trades", "500", "100")]
    assert "zscore" not in counts(out.stdout)
    assert "hampel" not in counts(out.stdout)


def test_a_missing_database_is_a_usage_error_and_is_not_created(tmp_path: Path) -> None:
    db = tmp_path / "absent.duckdb"
    out = workbench("--db", str(db))
    assert out.returncode == 2
    assert out.stderr == f"workbench clean: error: no database at {db}\n"
    assert not db.exists()


def test_usage_mistakes_exit_2_with_one_line(tmp_path: Path) -> None:
    db = tmp_path / "rec.duckdb"
    recorded_store(db)
    mistakes = {
        ("--table", "trades", "--source", "nope"): "no table 'nope'",
        ("--source", "trades"): "--source needs exactly one --table",
        ("--fill", "price"): "--fill takes COLUMN=POLICY",
        ("--fill", "side=interpolate"): "only prices and sizes can be interpolated",
        ("--drop", "required"): "no rule 'required' takes an action",
        ("--stale-rows", "1"): "stale_rows must be at least 2",
    }
    for args, message in mistakes.items():
        out = workbench("--db", str(db), *args)
        assert out.returncode == 2, (args, out.stderr)
        assert out.stderr.count("\n") == 1 and message in out.stderr, out.stderr
        assert out.stdout == ""


def test_a_database_owned_by_another_process_exits_1(tmp_path: Path) -> None:
    db = tmp_path / "rec.duckdb"
    recorded_store(db)
    with Store.open(db):
        out = workbench("--db", str(db))
    assert out.returncode == 1
    assert "open in another process" in out.stderr
    assert "Traceback" not in out.stderr


def test_raw_tables_are_unchanged_by_the_cli(tmp_path: Path) -> None:
    db = tmp_path / "rec.duckdb"
    recorded_store(db)
    tables = ("trades", "quotes", "book_snapshots", "quality_events")

    def snapshot() -> dict[str, pd.DataFrame]:
        with duckdb.connect(db, read_only=True) as con:
            return {t: con.execute(f"SELECT * FROM {t} ORDER BY rowid").df() for t in tables}

    before = snapshot()
    assert workbench("--db", str(db)).returncode == 0
    after = snapshot()
    for table in tables:
        pd.testing.assert_frame_equal(after[table], before[table])
