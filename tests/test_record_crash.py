"""`kill -9` of a recorder mid-run leaves a database that opens with every committed row."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tests.e2e import ENV, query, record_cmd, sim_process


def parse_progress(line: str) -> dict[str, int]:
    # "committed book_deltas=812 trades=90 ..."
    return {k: int(v) for k, v in (item.split("=") for item in line.split()[1:])}


def test_sigkill_keeps_every_committed_row(tmp_path: Path) -> None:
    db = tmp_path / "crash.duckdb"
    with sim_process("--seed", "5", "--rate", "400") as (_, port):
        proc = subprocess.Popen(
            record_cmd(port, db, "--progress"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        assert proc.stdout is not None
        last: dict[str, int] = {}
        commits = 0
        for line in proc.stdout:
            if line.startswith("committed "):
                last = parse_progress(line)
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
