"""`kill -9` of a recorder mid-run leaves a database that opens with every committed row."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from tests.e2e import query, run_record, sim_process, start_record, table_counts


def test_sigkill_keeps_every_committed_row(tmp_path: Path) -> None:
    db = tmp_path / "crash.duckdb"
    with sim_process("--seed", "5", "--rate", "400") as (_, port):
        proc = start_record(port, db, "--progress")
        assert proc.stdout is not None
        last: dict[str, int] = {}
        commits = 0
        for line in proc.stdout:
            if line.startswith("committed "):
                last = table_counts(line, "committed ", " ")
                commits += 1
                if commits >= 15 and last.get("trades", 0) > 20:
                    break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert last, "the recorder never reported a commit"
    for table, committed in last.items():
        (count,) = query(db, f"SELECT count(*) FROM {table}")[0]
        assert count >= committed, table
    dupes = query(db, "SELECT count(*) - count(DISTINCT (symbol, trade_id)) FROM trades")[0][0]
    assert dupes == 0


def test_a_restart_after_sigkill_marks_the_outage_and_backfills_its_trades(
    tmp_path: Path,
) -> None:
    db = tmp_path / "restart.duckdb"
    with sim_process("--seed", "6", "--rate", "200") as (_, port):
        proc = start_record(port, db, "--progress")
        assert proc.stdout is not None
        for line in proc.stdout:
            if (
                line.startswith("committed ")
                and table_counts(line, "committed ", " ").get("trades", 0) > 40
            ):
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        last = dict(query(db, "SELECT symbol, epoch_us(max(recv_ts)) FROM trades GROUP BY 1"))
        before = dict(
            query(db, "SELECT symbol, max(CAST(trade_id AS BIGINT)) FROM trades GROUP BY 1")
        )
        time.sleep(1.0)  # the outage on purpose: the simulator trades on, nothing records
        done = run_record(port, db, "--duration", "3")
    assert done.returncode == 0, done.stderr
    gaps = query(
        db,
        "SELECT symbol, detail FROM quality_events WHERE kind = 'recording_gap' ORDER BY symbol",
    )
    assert [symbol for symbol, _ in gaps] == ["BTC-USD", "ETH-USD"]
    for symbol, text in gaps:
        detail = json.loads(text)
        assert detail["last_trade_id"] == before[symbol]
        assert detail["to_us"] > detail["from_us"] >= last[symbol] - 1_000_000
        assert detail["seconds"] > 0
    # every trade of the outage was fetched over REST: ids are complete and unique
    for symbol, low, high, count, distinct in query(
        db,
        "SELECT symbol, min(CAST(trade_id AS BIGINT)), max(CAST(trade_id AS BIGINT)), "
        "count(*), count(DISTINCT trade_id) FROM trades GROUP BY 1",
    ):
        assert count == distinct == high - low + 1, symbol
        assert high > before[symbol]
    backfills = query(db, "SELECT count(*) FROM quality_events WHERE kind = 'backfill'")
    assert backfills[0][0] >= 2
