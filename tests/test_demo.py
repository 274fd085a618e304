"""`make demo` runs `workbench demo`: simulator → record → clean → resample → report."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import duckdb

from tests.e2e import ENV


def test_demo_records_and_reports(tmp_path: Path) -> None:
    db = tmp_path / "demo.duckdb"
    out = subprocess.run(
        [sys.executable, "-m", "workbench", "demo", "--seconds", "3", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    for expected in (
        "simulator on ws://127.0.0.1:",
        "trades:",
        "data-quality events:",
        "final book (top 3):",
        "cleaning (raw tables untouched",
        "1s bars (",
        "backtest sma_cross {'fast': 2, 'slow': 4} on BTC-USD 1s bars",
        "synth: wrote ",
        "sweep sma_cross over 12 points (12 trials, vectorized, 2 workers) on ",
        "the event engine on the best point: sharpe ",
        "identical to the sweep's",
        "validation of the sweep's best (workbench validate):",
        "  pass  round trips: ",
        "look-ahead (prefix): prefix test (vectorized) passed",
        "BTC-USD",
        "ETH-USD",
    ):
        assert expected in out.stdout
    assert db.exists()
    summary = next(ln for ln in out.stdout.splitlines() if ln.startswith("sim:"))
    said = {kind: int(n) for n, kind in re.findall(r"(\d+) (reconnects|gaps|resyncs)\b", summary)}
    table = out.stdout.split("data-quality events:\n")[1].split("\n\n")[0].splitlines()[1:]
    listed = {ln.rsplit(None, 1)[0].strip(): int(ln.rsplit(None, 1)[1]) for ln in table}
    # the feed's own counts add up with the rows it wrote (initial snapshots are not resyncs)
    assert said["gaps"] == listed.get("gap", 0)
    assert said["resyncs"] == listed.get("resync", 0)
    assert said["reconnects"] == listed.get("reconnect", 0)
    assert listed["resync (initial)"] == 2  # one first book per symbol
    with duckdb.connect(str(db), read_only=True) as con:
        stored = dict(con.sql("SELECT kind, count(*) FROM quality_events GROUP BY kind").fetchall())
    assert stored["resync"] == listed.get("resync", 0) + 2
    assert stored.get("gap", 0) == said["gaps"]
