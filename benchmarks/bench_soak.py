"""Soak: record 10,000 msgs/s from the simulator for 10 minutes; memory must plateau.

The simulator (``workbench sim``, two symbols at 5,000 msgs/s each) runs in its own process;
the recorder is a :class:`Workbench` feed in this one, writing to a fresh DuckDB file. Every
``--every`` seconds we sample both processes' RSS, DuckDB's own accounting
(``duckdb_memory()``) and the WAL size. Reported: RSS at the start (after ``--warmup`` s, once
the first checkpoints have happened), the middle and the end, and the growth over each half.
The recorder's memory plateaus when the second half grows far less than the first; before
the fix it grew ~0.6 MB/s throughout (and the simulator ~0.5 MB/s).

``--baseline`` runs the same soak a second time with DuckDB's default memory limit (80% of
RAM) in place of the store's, and reports the recorder's second-half growth as a ratio.

Prints one line per sample and per figure; writes benchmarks/results/soak.json.
Usage: python benchmarks/bench_soak.py [--minutes 10] [--baseline]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import line, report, start_sim, stop_sim

from workbench.store.store import MEMORY_LIMIT
from workbench.workbench import Workbench

SYMBOLS = ("BTC-USD", "ETH-USD")
RATE = 10_000


@dataclass(frozen=True)
class Sample:
    at: float
    recorder_mb: float
    sim_mb: float
    duckdb_mb: float
    wal_mb: float
    messages: int


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for text in status:
            if text.startswith("VmRSS:"):
                return int(text.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def soak(tmp: Path, seconds: float, every: float, default_limit: bool) -> list[Sample]:
    db = tmp / ("baseline.duckdb" if default_limit else "soak.duckdb")
    wal = Path(f"{db}.wal")
    sim, port = start_sim(
        "--symbols", ",".join(SYMBOLS), "--rate", str(RATE // len(SYMBOLS)), "--seed", "5"
    )
    samples: list[Sample] = []
    try:
        wb = Workbench.open(db)
        if default_limit:
            wb.sql("RESET memory_limit")
        feed = wb.start_feed(
            "sim", SYMBOLS, ws_url=f"ws://127.0.0.1:{port}/ws", rest_url=f"http://127.0.0.1:{port}"
        )
        start = time.monotonic()
        try:
            while (now := time.monotonic() - start) < seconds:
                time.sleep(min(every, seconds - now))
                duck = wb.sql("SELECT sum(memory_usage_bytes) AS b FROM duckdb_memory()")["b"]
                sample = Sample(
                    time.monotonic() - start,
                    rss_mb(os.getpid()),
                    rss_mb(sim.pid),
                    float(duck.iloc[0]) / 2**20,
                    wal.stat().st_size / 2**20 if wal.exists() else 0.0,
                    feed.messages,
                )
                samples.append(sample)
                print(
                    f"  t={sample.at:5.0f}s recorder {sample.recorder_mb:6.1f} MB  "
                    f"sim {sample.sim_mb:6.1f} MB  duckdb {sample.duckdb_mb:5.1f} MB  "
                    f"wal {sample.wal_mb:5.1f} MB  {sample.messages:,} msgs",
                    flush=True,
                )
        finally:
            feed.stop()
            status = feed.status()
            wb.close()
        if status.gaps or status.quarantined:
            raise RuntimeError(f"the soak lost data: {status}")
    finally:
        stop_sim(sim)
    return samples


def at(samples: list[Sample], seconds: float) -> Sample:
    return min(samples, key=lambda s: abs(s.at - seconds))


def summary(samples: list[Sample], warmup: float, label: str) -> dict[str, Any]:
    start, end = at(samples, warmup), samples[-1]
    middle = at(samples, (start.at + end.at) / 2)
    rate = (end.messages - start.messages) / (end.at - start.at)
    figures: dict[str, Any] = {"msgs_per_sec": round(rate)}
    for name in ("recorder", "sim"):
        values = [getattr(s, f"{name}_mb") for s in (start, middle, end)]
        first, second = values[1] - values[0], values[2] - values[1]
        print(
            f"{label}{name} RSS at {start.at:.0f} / {middle.at:.0f} / {end.at:.0f} s: "
            f"{values[0]:.1f} / {values[1]:.1f} / {values[2]:.1f} MB "
            f"(first half {first:+.1f} MB, second half {second:+.1f} MB)",
            flush=True,
        )
        figures[name] = {
            "rss_mb": [round(v, 1) for v in values],
            "at_s": [round(s.at) for s in (start, middle, end)],
            "first_half_mb": round(first, 1),
            "second_half_mb": round(second, 1),
            "second_half_mb_per_s": round(second / (end.at - middle.at), 4),
        }
    figures["duckdb_mb"] = [round(s.duckdb_mb, 1) for s in (start, middle, end)]
    print(f"{label}recorded {rate:,.0f} msgs/s; duckdb_memory() {figures['duckdb_mb']} MB")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="soak length (default 10)")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=30.0, help="'start' is this late (s)")
    parser.add_argument("--baseline", action="store_true", help="again with DuckDB's default")
    args = parser.parse_args()
    seconds = args.minutes * 60
    print(f"soak: {RATE:,} msgs/s for {seconds:.0f} s, memory_limit {MEMORY_LIMIT}", flush=True)
    figures: dict[str, Any] = {"minutes": args.minutes, "memory_limit": MEMORY_LIMIT}
    with tempfile.TemporaryDirectory() as tmp:
        ours = summary(soak(Path(tmp), seconds, args.every, False), args.warmup, "")
        figures.update(ours)
        if args.baseline:
            print("baseline: DuckDB's default memory_limit", flush=True)
            base = summary(soak(Path(tmp), seconds, args.every, True), args.warmup, "baseline ")
            figures["baseline"] = base
            line(
                "recorder RSS growth over the second half",
                max(ours["recorder"]["second_half_mb_per_s"], 1e-4),
                "MB/s",
                baseline=base["recorder"]["second_half_mb_per_s"],
                higher_is_better=False,
            )
    report("soak", figures)


if __name__ == "__main__":
    main()
