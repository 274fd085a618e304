"""`kill -9` of a recorder mid-run leaves a database that opens with every committed row."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.e2e import query, sim_process, start_record, table_counts


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
