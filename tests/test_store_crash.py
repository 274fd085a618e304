"""kill -9 in the middle of ingestion loses nothing that was reported committed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import workbench.store
from workbench.store import Store

HELPER = Path(__file__).parent / "helpers" / "crash_writer.py"
SOURCE_ROOT = Path(workbench.store.__file__).parents[2]


def test_every_reported_commit_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "crash.duckdb"
    child = subprocess.Popen(
        [sys.executable, str(HELPER), str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SOURCE_ROOT)},
    )
    reported = 0
    commits = 0
    try:
        assert child.stdout is not None
        for line in child.stdout:
            reported = int(line.removeprefix("committed "))
            commits += 1
            if commits == 20:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        _, stderr = child.communicate(timeout=30)
    assert commits == 20, stderr
    assert child.returncode == -signal.SIGKILL

    with Store.open(path) as store:
        stored = store.table_counts()["trades"]
        ids = store.sql("SELECT CAST(trade_id AS BIGINT) AS id, price FROM trades ORDER BY id")
    assert stored >= reported > 0
    assert ids["id"].tolist() == list(range(stored))
    assert (ids["price"] == ids["id"].astype(float)).all()
