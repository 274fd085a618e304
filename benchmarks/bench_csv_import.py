"""Peak memory of ``import-csv`` on a ~105 MB / 2 M-row file: chunked against a whole-file read.

Data: 2 M one-minute bars in the plain layout (``timestamp,open,high,low,close,volume``),
epoch seconds, a random-walk close, ~52 bytes a line.

- ours: ``import_csv`` as the CLI runs it, :data:`CHUNK_ROWS` rows at a time.
- baseline: the same code with one chunk as large as the file, i.e. the naive whole-file read
  (every row held as a list of str, then one INSERT of every bar), what import-csv did before,
  under DuckDB's default memory limit as then: one 2 M-row transaction, its UNIQUE index
  included, does not fit the store's 64 MB cap.

Each import runs in a fresh process, so its peak RSS (``ru_maxrss``) is its own; the figure
that matters is the peak over the file's size (well under 4x), and the ratio to the baseline.
The peak includes the interpreter with numpy, pandas, pyarrow and DuckDB loaded (~125 MB).

Prints one line per figure and writes benchmarks/results/csv_import.json.
Usage: python benchmarks/bench_csv_import.py [--rows N]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import line, report

from workbench.analysis.csv_import import CHUNK_ROWS, import_csv
from workbench.store import Store

ROWS = 2_000_000
WRITE_ROWS = 100_000


def make_csv(path: Path, rows: int, seed: int = 3) -> None:
    rng = np.random.default_rng(seed)
    ts = 1_709_251_200 + 60 * np.arange(rows)
    close = 62_000 + np.cumsum(rng.normal(0, 5, rows))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) + rng.random(rows) * 10
    low = np.minimum(open_, close) - rng.random(rows) * 10
    volume = rng.random(rows) * 20
    with path.open("w") as file:
        file.write("timestamp,open,high,low,close,volume\n")
        for start in range(0, rows, WRITE_ROWS):
            part = slice(start, start + WRITE_ROWS)
            file.writelines(
                f"{t},{o:.1f},{h:.1f},{lo:.1f},{c:.1f},{v:.6f}\n"
                for t, o, h, lo, c, v in zip(
                    ts[part],
                    open_[part],
                    high[part],
                    low[part],
                    close[part],
                    volume[part],
                    strict=True,
                )
            )


def child(csv_path: Path, db: Path, chunk_rows: int) -> None:
    """One import in this process; prints its rows, seconds and peak RSS as JSON."""
    started = time.perf_counter()
    with Store.open(db) as store:
        if chunk_rows > CHUNK_ROWS:
            store.sql("RESET memory_limit")
        rows = import_csv(store, csv_path, exchange="bench", symbol="BTC", chunk_rows=chunk_rows)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"rows": rows.rows, "seconds": seconds, "peak_mb": peak_mb}))


def measure(csv_path: Path, db: Path, chunk_rows: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(csv_path), str(db), str(chunk_rows)],
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, float] = json.loads(out.stdout)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument(
        "--child", nargs=3, metavar=("CSV", "DB", "CHUNK_ROWS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), int(args.child[2]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "bars.csv"
        make_csv(csv_path, args.rows)
        file_mb = csv_path.stat().st_size / 2**20
        print(f"file: {args.rows:,} rows, {file_mb:.0f} MB", flush=True)
        ours = measure(csv_path, Path(tmp) / "chunked.duckdb", CHUNK_ROWS)
        naive = measure(csv_path, Path(tmp) / "whole.duckdb", args.rows)
    assert ours["rows"] == naive["rows"] == args.rows, (ours, naive)
    line(
        f"peak RSS, chunks of {CHUNK_ROWS:,} rows",
        ours["peak_mb"],
        "MB",
        baseline=naive["peak_mb"],
        target="< 4x the file",
        higher_is_better=False,
    )
    print(
        f"peak / file size: {ours['peak_mb'] / file_mb:.2f}x (baseline "
        f"{naive['peak_mb'] / file_mb:.2f}x)",
        flush=True,
    )
    line("import time", ours["seconds"], "s", baseline=naive["seconds"], higher_is_better=False)
    report(
        "csv_import",
        {
            "rows": args.rows,
            "file_mb": round(file_mb, 1),
            "chunk_rows": CHUNK_ROWS,
            "peak_mb": round(ours["peak_mb"], 1),
            "baseline_peak_mb": round(naive["peak_mb"], 1),
            "peak_over_file": round(ours["peak_mb"] / file_mb, 2),
            "baseline_peak_over_file": round(naive["peak_mb"] / file_mb, 2),
            "seconds": round(ours["seconds"], 2),
            "baseline_seconds": round(naive["seconds"], 2),
        },
    )


if __name__ == "__main__":
    main()
