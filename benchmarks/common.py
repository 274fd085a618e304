"""Shared by the benchmark scripts: a result line format and a JSON record per benchmark.

Every figure is printed next to the naive baseline measured in the same run, as a ratio:
these machines are shared and noisy, so absolute times drift but ratios hold.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb

RESULTS = Path(__file__).resolve().parent / "results"


def report(name: str, figures: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    record = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "python": platform.python_version(),
        **figures,
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=2))


def line(
    label: str,
    value: float,
    unit: str,
    *,
    baseline: float | None = None,
    target: str = "",
    higher_is_better: bool = True,
) -> str:
    text = f"{label}: {value:,.3f} {unit}" if value < 100 else f"{label}: {value:,.0f} {unit}"
    if baseline is not None:
        ratio = value / baseline if higher_is_better else baseline / value
        text += f" (baseline {baseline:,.3f} {unit}, {ratio:,.1f}x better)"
    if target:
        text += f"  target {target}"
    print(text, flush=True)
    return text


def naive_store(path: Path) -> duckdb.DuckDBPyConnection:
    """The tutorial baselines' database: two plain tables, filled one INSERT per row."""
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE trades (symbol VARCHAR, ts BIGINT, price DOUBLE, size DOUBLE,"
        " side VARCHAR, trade_id BIGINT)"
    )
    con.execute(
        "CREATE TABLE book_deltas (symbol VARCHAR, ts BIGINT, seq BIGINT,"
        " side VARCHAR, price DOUBLE, size DOUBLE)"
    )
    return con


def start_sim(*flags: str) -> tuple[subprocess.Popen[str], int]:
    """``workbench sim --port 0 FLAGS`` in its own process (so it does not share our GIL);
    returns it and the port it bound, read from its first line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "sim", "--port", "0", *flags],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    return proc, int(first.split("ws://127.0.0.1:")[1].split("/")[0])


def stop_sim(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(timeout=10)
