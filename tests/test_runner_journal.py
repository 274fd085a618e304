"""The runner's intent log: intents durable before they are sent, a kill -9 loses only what
was not flushed, fills replay idempotently, a journal held by another runner is refused."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

import workbench
from workbench.core.risk import RiskDecision
from workbench.errors import BadStoreError, StoreError, UsageError
from workbench.events import Fill, Order, Side
from workbench.runner.journal import (
    SCHEMA_VERSION,
    TABLES,
    DuplicateOrderError,
    Journal,
    JournalLockedError,
)
from workbench.store.store import MEMORY_LIMIT

SOURCE_ROOT = Path(workbench.__file__).parents[1]
ENV = {**os.environ, "PYTHONPATH": str(SOURCE_ROOT)}
RUN = {"strategy": "sma", "venue": "sim", "symbols": ["BTC-USD"], "artifact": "a/sma.json"}
T0 = 1_767_225_600_000_000
SAME_CONFIG = {"memory_limit": MEMORY_LIMIT}
"""What a second connection in the journal's process must be opened with."""


def order(n: int, size: float | None = 0.5, target: float | None = None) -> Order:
    return Order(f"sma-{n}", "BTC-USD", "buy", "market", T0 + n, size=size, target=target)


def fill(client_order_id: str, side: Side = "buy", size: float = 0.5) -> Fill:
    return Fill(client_order_id, "BTC-USD", side, T0, 100.0, size, 0.01, "taker")


def run_child(script: str, path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


def wait_ready(child: subprocess.Popen[str]) -> None:
    assert child.stdout is not None
    line = child.stdout.readline()
    if line != "ready\n":
        child.kill()
        _, stderr = child.communicate(timeout=30)
        pytest.fail(f"the child did not get ready: {line!r} {stderr}")


def test_a_new_file_gets_every_table_and_the_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "runner" / "journal.duckdb"
    with Journal.open(path, run=RUN) as journal:
        assert journal.run == 1
        meta = journal.sql("SELECT key, value FROM meta ORDER BY key")
    with duckdb.connect(path, read_only=True) as con:
        columns = con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() "
            "WHERE schema_name = 'main' AND NOT internal ORDER BY table_name, column_index"
        ).fetchall()
    found: dict[str, list[str]] = {}
    for table, column in columns:
        found.setdefault(table, []).append(column)
    assert found == {table: [c for c, _ in cols] for table, cols in TABLES.items()}
    assert dict(zip(meta["key"], meta["value"], strict=True)) == {
        "format": "workbench-runner-journal",
        "schema_version": str(SCHEMA_VERSION),
    }


def test_each_open_records_a_run_and_close_stamps_it(tmp_path: Path) -> None:
    path = tmp_path / "j.duckdb"
    with Journal.open(path, run={**RUN, "api_key": "hunter2", "db": tmp_path}):
        pass
    journal = Journal.open(path, run=RUN)
    journal.close(exit_code=3)
    with pytest.raises(RuntimeError), Journal.open(path, run=RUN):
        raise RuntimeError("the run failed")
    with duckdb.connect(path, read_only=True) as con:
        runs = con.execute("SELECT * FROM runs ORDER BY run").df()
    assert runs["run"].tolist() == [1, 2, 3]
    assert runs["pid"].tolist() == [os.getpid()] * 3
    assert runs["exit_code"].tolist() == [0, 3, 1]
    assert (runs["stopped_us"] >= runs["started_us"]).all()
    assert (runs["workbench_version"] == workbench.__version__).all()
    first = runs["config"][0]
    assert '"strategy": "sma"' in first and '"symbols": ["BTC-USD"]' in first
    assert '"api_key": "***"' in first and "hunter2" not in first
    assert f'"db": "{tmp_path}"' in first


def test_an_intent_is_committed_before_intent_returns(tmp_path: Path) -> None:
    path = tmp_path / "j.duckdb"
    with Journal.open(path, run=RUN) as journal:
        journal.intent(order(1))
        journal.fill(fill("sma-1"))  # pending: not committed yet
        # A second connection in this process sees only what was committed.
        with duckdb.connect(path, config=SAME_CONFIG) as other:
            assert other.execute("SELECT client_order_id, status FROM orders").fetchall() == [
                ("sma-1", "intent")
            ]
            assert other.execute("SELECT count(*) FROM fills").fetchall() == [(0,)]
        journal.flush()
        with duckdb.connect(path, config=SAME_CONFIG) as other:
            assert other.execute("SELECT count(*) FROM fills").fetchall() == [(1,)]


def test_kill_9_keeps_every_intent_and_loses_only_unflushed_rows(tmp_path: Path) -> None:
    path = tmp_path / "j.duckdb"
    child = run_child(
        f"""
        import sys, time
        from workbench.events import Fill, Order, Side
        from workbench.runner.journal import Journal

        def fill(coid):
            return Fill(coid, "BTC-USD", "buy", {T0}, 100.0, 0.5, 0.01, "taker")

        journal = Journal.open(sys.argv[1], run={{"strategy": "sma"}})
        for n in (1, 2, 3):
            journal.intent(Order(f"sma-{{n}}", "BTC-USD", "buy", "market", {T0} + n, size=0.5))
        journal.fill(fill("sma-1"))
        journal.flush()
        journal.fill(fill("sma-2"))  # committed by the next intent
        journal.intent(Order("sma-4", "BTC-USD", "sell", "limit", {T0} + 4, size=1.0, price=9.5))
        journal.fill(fill("sma-3"))  # never flushed
        journal.order_status("sma-1", "filled", updated_us={T0} + 9, filled=0.5)
        journal.pnl(ts={T0}, equity=1.0, cash=1.0, position=0.0, price=1.0, fees_paid=0.0)
        print("ready", flush=True)
        time.sleep(60)
        """,
        path,
    )
    try:
        wait_ready(child)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL

    with Journal.open(path, run=RUN) as journal:
        orders = journal.orders()
        assert orders["client_order_id"].tolist() == ["sma-1", "sma-2", "sma-3", "sma-4"]
        assert orders["status"].tolist() == ["intent"] * 4
        assert journal.fills()["fill_id"].tolist() == ["sma-1#1", "sma-2#1"]
        assert journal.sql("SELECT count(*) AS n FROM pnl")["n"].tolist() == [0]
        runs = journal.sql("SELECT run, stopped_us IS NULL AS crashed FROM runs ORDER BY run")
        assert runs["run"].tolist() == [1, 2]
        assert bool(runs["crashed"][0])  # run 1 never stopped
        # Reconciliation replays the broker's fills: only the lost one is new.
        replayed = [journal.fill(fill(coid), n=1).new for coid in ("sma-1", "sma-2", "sma-3")]
        assert replayed == [False, False, True]
        assert journal.last_order_number("sma") == 4


def test_a_duplicate_client_order_id_is_refused_and_pending_writes_survive(
    tmp_path: Path,
) -> None:
    with Journal.open(tmp_path / "j.duckdb", run=RUN) as journal:
        journal.intent(order(1))
        journal.fill(fill("sma-1"))
        with pytest.raises(DuplicateOrderError, match="sma-1 is journaled already"):
            journal.intent(order(1, size=2.0))
        journal.flush()
        assert journal.orders()["size"].tolist() == [0.5]
        assert journal.fills()["fill_id"].tolist() == ["sma-1#1"]


def test_the_same_fill_twice_is_journaled_once(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.duckdb", run=RUN) as journal:
        journal.intent(order(1))
        assert journal.fill(fill("sma-1"), n=1) == ("sma-1#1", True)
        assert journal.fill(fill("sma-1"), n=1) == ("sma-1#1", False)
        assert journal.fill(fill("sma-1", size=0.2)) == ("sma-1#2", True)  # the next one
        assert journal.fill(fill("sma-1", size=0.2), n=2).new is False
        assert journal.fills()["size"].tolist() == [0.5, 0.2]
        with pytest.raises(UsageError, match="from 1"):
            journal.fill(fill("sma-1"), n=0)


def test_positions_from_fills_sum_buys_and_sells_per_symbol(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.duckdb", run=RUN) as journal:
        journal.fill(fill("sma-1", "buy", 1.5))
        journal.fill(fill("sma-2", "sell", 0.5))
        journal.fill(fill("sma-3", "sell", 2.0))
        journal.fill(Fill("sma-4", "ETH-USD", "buy", T0, 10.0, 3.0, 0.0, "maker"))
        journal.fill(Fill("sma-5", "SOL-USD", "buy", T0, 10.0, 1.0, 0.0, "maker"))
        journal.fill(Fill("sma-6", "SOL-USD", "sell", T0, 11.0, 1.0, 0.0, "maker"))
        assert journal.positions_from_fills() == {"BTC-USD": -1.0, "ETH-USD": 3.0, "SOL-USD": 0.0}


def test_positions_keep_one_current_row_per_symbol(tmp_path: Path) -> None:
    path = tmp_path / "j.duckdb"
    with Journal.open(path, run=RUN) as journal:
        journal.position("BTC-USD", position=1.0, cash=900.0, updated_us=T0)
        journal.position("BTC-USD", position=0.5, cash=950.0, updated_us=T0 + 1)
        journal.position("ETH-USD", position=2.0, cash=950.0, updated_us=T0 + 2)
    with Journal.open(path, run=RUN) as journal:
        positions = journal.positions()
    assert positions.to_dict("records") == [
        {"symbol": "BTC-USD", "position": 0.5, "cash": 950.0, "updated_us": T0 + 1},
        {"symbol": "ETH-USD", "position": 2.0, "cash": 950.0, "updated_us": T0 + 2},
    ]


def test_the_latest_checkpoint_comes_back_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "j.duckdb"
    with Journal.open(path, run=RUN) as journal:
        assert journal.last_checkpoint() is None
        journal.checkpoint(pickle.dumps({"bars": 1}), ts=T0)
        journal.intent(order(1))
        journal.fill(fill("sma-1"))
        saved = journal.checkpoint(pickle.dumps({"bars": 2, "ema": [1.5]}), ts=T0 + 60)
    with Journal.open(path, run=RUN) as journal:
        latest = journal.last_checkpoint()
    assert latest == saved
    assert latest is not None
    assert (latest.id, latest.ts, latest.run, latest.order_count, latest.fill_count) == (
        2,
        T0 + 60,
        1,
        1,
        1,
    )
    assert pickle.loads(latest.state) == {"bars": 2, "ema": [1.5]}


def test_open_orders_rebuild_the_orders_as_submitted(tmp_path: Path) -> None:
    path = tmp_path / "j.duckdb"
    submitted = [
        order(1),
        order(2, size=None, target=-0.5),
        Order("sma-3", "BTC-USD", "sell", "limit", T0 + 3, size=0.1, price=101.5, tif="post_only"),
        Order("sma-4", "BTC-USD", "buy", "stop", T0 + 4, size=0.2, price=99.0),
        Order("sma-5", "BTC-USD", "buy", "limit", T0 + 5, size=0.3, price=98.0, tif="ioc"),
    ]
    with Journal.open(path, run=RUN) as journal:
        for each in submitted:
            journal.intent(each)
        journal.order_status("sma-1", "filled", updated_us=T0 + 9, filled=0.5, average_price=100.0)
        journal.order_status("sma-3", "open", updated_us=T0 + 9)
        journal.order_status("sma-3", "open", updated_us=T0 + 10, filled=0.05, average_price=101.5)
        journal.order_status("sma-5", "cancelled", updated_us=T0 + 9, reason="IOC")
        with pytest.raises(UsageError, match="no order sma-9"):
            journal.order_status("sma-9", "open", updated_us=T0)
        with pytest.raises(UsageError, match="not 'done'"):
            journal.order_status("sma-2", "done", updated_us=T0)
    with Journal.open(path, run=RUN) as journal:
        records = journal.open_orders()
        assert journal.order_count() == 5
    assert [r.order for r in records] == [submitted[1], submitted[2], submitted[3]]
    assert [r.status for r in records] == ["intent", "open", "intent"]
    assert records[1].filled == 0.05
    assert records[1].average_price == 101.5


def test_the_last_order_number_is_the_highest_of_the_strategy(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.duckdb", run=RUN) as journal:
        assert journal.last_order_number("sma") == 0
        for coid in ("sma-1", "sma-2", "sma-10", "sma-x-40", "other-50"):
            journal.intent(Order(coid, "BTC-USD", "buy", "market", T0, size=1.0))
        assert journal.last_order_number("sma") == 10
        assert journal.last_order_number("other") == 50
        assert journal.order_count() == 5


def test_risk_decisions_are_journaled_with_their_detail_as_json(tmp_path: Path) -> None:
    refused = RiskDecision(
        T0,
        "sma-1",
        "order_notional",
        False,
        "notional 2000 above 1000",
        {"notional": 2000.0},
        symbol="BTC-USD",
    )
    minimal = {
        "time_us": T0 + 1,
        "client_order_id": "",
        "rule": "daily_loss",
        "accepted": False,
        "reason": "paused",
    }
    with Journal.open(tmp_path / "j.duckdb", run=RUN) as journal:
        journal.risk(refused.as_row())
        journal.risk({**minimal, "detail": {"loss": 0.03}})
        with pytest.raises(UsageError, match=r"unknown \['extra'\]"):
            journal.risk({**minimal, "extra": 1})
        with pytest.raises(UsageError, match="not JSON"):
            journal.risk({**minimal, "detail": "{"})
        rows = journal.sql(
            "SELECT rule, accepted, symbol, coalesce(detail ->> '$.notional', '') AS notional, "
            "coalesce(detail ->> '$.loss', '') AS loss, run FROM risk_decisions ORDER BY time_us"
        )
    assert rows.to_dict("records") == [
        {
            "rule": "order_notional",
            "accepted": False,
            "symbol": "BTC-USD",
            "notional": "2000.0",
            "loss": "",
            "run": 1,
        },
        {
            "rule": "daily_loss",
            "accepted": False,
            "symbol": "",
            "notional": "",
            "loss": "0.03",
            "run": 1,
        },
    ]


def test_pnl_marks_are_journaled_on_flush(tmp_path: Path) -> None:
    path = tmp_path / "j.duckdb"
    with Journal.open(path, run=RUN) as journal:
        for i in range(3):
            journal.pnl(
                ts=T0 + i,
                equity=1000.0 + i,
                cash=900.0,
                position=1.0,
                price=100.0 + i,
                fees_paid=0.5,
            )
    with Journal.open(path, run=RUN) as journal:
        marks = journal.sql("SELECT ts, equity, run FROM pnl ORDER BY ts")
    assert marks.to_dict("list") == {
        "ts": [T0, T0 + 1, T0 + 2],
        "equity": [1000.0, 1001.0, 1002.0],
        "run": [1, 1, 1],
    }


def test_a_journal_held_by_another_runner_is_refused_and_left_untouched(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.duckdb"
    child = run_child(
        f"""
        import sys
        from workbench.events import Order
        from workbench.runner.journal import Journal

        with Journal.open(sys.argv[1], run={{"strategy": "sma"}}) as journal:
            journal.intent(Order("sma-1", "BTC-USD", "buy", "market", {T0}, size=0.5))
            print("ready", flush=True)
            sys.stdin.readline()
        """,
        path,
    )
    try:
        wait_ready(child)
        with pytest.raises(JournalLockedError) as caught:
            Journal.open(path, run=RUN)
    finally:
        child.communicate("\n", timeout=30)
    assert child.returncode == 0
    error = caught.value
    assert isinstance(error, StoreError)
    assert error.path == path and error.pid == child.pid
    assert str(path) in str(error)
    assert f"held by process {child.pid}, probably another runner" in str(error)
    assert "Nothing was written" in str(error)

    with Journal.open(path, run=RUN) as journal:
        assert journal.run == 2  # the refused open recorded no run
        assert journal.orders()["client_order_id"].tolist() == ["sma-1"]


def test_a_second_open_in_the_same_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.duckdb"
    with (
        Journal.open(path, run=RUN),
        pytest.raises(StoreError, match="already open in this process"),
    ):
        Journal.open(path, run=RUN)
    with Journal.open(path, run=RUN) as journal:
        assert journal.run == 2


def test_a_foreign_duckdb_file_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    with duckdb.connect(path) as con:
        con.execute("CREATE TABLE orders (id INTEGER, note VARCHAR)")
        con.execute("INSERT INTO orders VALUES (1, 'theirs')")
    before = path.read_bytes()
    with pytest.raises(BadStoreError, match=r"not a runner journal \(it has tables orders\)"):
        Journal.open(path, run=RUN)
    assert path.read_bytes() == before
    with duckdb.connect(path) as con:
        assert con.execute("SELECT * FROM orders").fetchall() == [(1, "theirs")]


def test_a_journal_with_a_table_of_another_shape_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.duckdb"
    Journal.open(path, run=RUN).close()
    with duckdb.connect(path) as con:
        con.execute("DROP TABLE fills")
        con.execute("CREATE TABLE fills (fill_id VARCHAR, qty INTEGER)")
    with pytest.raises(BadStoreError, match="table fills has other columns"):
        Journal.open(path, run=RUN)
    with duckdb.connect(path) as con:
        con.execute("DROP TABLE fills")
    with pytest.raises(BadStoreError, match="lost its table fills"):
        Journal.open(path, run=RUN)


def test_a_journal_of_another_version_or_no_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.duckdb"
    Journal.open(path, run=RUN).close()
    with duckdb.connect(path) as con:
        con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(BadStoreError, match="schema version 99; this workbench reads version 1"):
        Journal.open(path, run=RUN)
    text = tmp_path / "notes.duckdb"
    text.write_text("not a database\n" * 400)
    with pytest.raises(BadStoreError, match="not a DuckDB database"):
        Journal.open(text, run=RUN)
    assert text.read_text() == "not a database\n" * 400


def test_a_closed_journal_refuses_writes(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "j.duckdb", run=RUN)
    journal.close()
    journal.close()  # idempotent
    with pytest.raises(StoreError, match="is closed"):
        journal.intent(order(1))
