"""`make demo` runs `workbench demo`: simulator → record → clean → resample → report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
        "BTC-USD",
        "ETH-USD",
    ):
        assert expected in out.stdout
    assert db.exists()
