"""Store benchmark: columnar ingest vs row-at-a-time INSERT, reader latency, trades with UNIQUE.

1. book_deltas-shaped rows submitted as feed-sized list batches through StoreWriter, timed
   from the first submit to the return of flush(); against the naive baseline of one INSERT
   per row (run on a much smaller N, rate extrapolated), in the same run.
2. The same ingest into a fresh store, paced like live feeds at the 1 M rows/s target and then
   unpaced, while a reader thread with its own cursor polls
   ``SELECT count(*), max(ts) FROM book_deltas``: per-query latency p50/p99, and the same
   query idle at the final size for reference (the target applies to the paced run; unpaced,
   the writer keeps the cores busy and the reader waits for CPU).
3. trades (UNIQUE (exchange, symbol, trade_id), ON CONFLICT DO NOTHING) ingest rate.

Prints one line per measurement and writes the numbers to benchmarks/results/store.json.
Runs in well under 60 s. Usage: python benchmarks/bench_store.py
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from workbench.store import Store

RESULTS = Path(__file__).parent / "results" / "store.json"
T0 = 1_763_712_000_000_000
BATCH_ROWS = 10_000  # ~50 ms of a busy feed
DELTA_ROWS = 3_000_000
BASELINE_ROWS = 3_000
TRADE_ROWS = 1_000_000
INGEST_TARGET = 1_000_000
P99_TARGET_MS = 10.0
READER_QUERY = "SELECT count(*), max(ts) FROM book_deltas"


def delta_batch(start: int) -> dict[str, list[Any]]:
    seqs = range(start, start + BATCH_ROWS)
    return {
        "exchange": ["sim"] * BATCH_ROWS,
        "symbol": ["BTC-USD" if s % 3 else "ETH-USD" for s in seqs],
        "ts": [T0 + 37 * s for s in seqs],
        "recv_ts": [T0 + 37 * s + 450 for s in seqs],
        "seq": list(seqs),
        "side": ["bid" if s % 2 else "ask" for s in seqs],
        "price": [30_000.0 + (s % 200) * 0.5 for s in seqs],
        "size": [(s % 7) * 0.25 for s in seqs],
    }


def trade_batch(start: int) -> dict[str, list[Any]]:
    ids = range(start, start + BATCH_ROWS)
    return {
        "exchange": ["sim"] * BATCH_ROWS,
        "symbol": ["BTC-USD"] * BATCH_ROWS,
        "ts": [T0 + 37 * i for i in ids],
        "recv_ts": [T0 + 37 * i + 450 for i in ids],
        "price": [30_000.0 + (i % 200) * 0.5 for i in ids],
        "size": [0.01 * (i % 50 + 1) for i in ids],
        "side": ["buy" if i % 2 else "sell" for i in ids],
        "trade_id": [str(i) for i in ids],
    }


def ingest(
    store: Store,
    batches: list[dict[str, list[Any]]],
    table: str,
    rows: int,
    pace: float | None = None,
) -> float:
    """Submit ``rows`` rows cycling through prebuilt batches; return rows/s until committed.

    ``pace`` (rows/s) spaces the submissions like a live feed; None submits as fast as
    possible. Reusing batch objects is allowed: the writer never mutates what it is handed.
    """
    writer = store.writer
    started = time.perf_counter()
    for i in range(rows // BATCH_ROWS):
        if pace is not None:
            time.sleep(max(0.0, started + i * BATCH_ROWS / pace - time.perf_counter()))
        writer.submit(table, batches[i % len(batches)])
    writer.flush(timeout=120)
    return rows / (time.perf_counter() - started)


def baseline(store: Store) -> float:
    """One parameterized INSERT per row, all in one transaction (the generous variant)."""
    columns = delta_batch(0)
    rows = list(zip(*columns.values(), strict=True))[:BASELINE_ROWS]
    with store.cursor() as cursor:
        started = time.perf_counter()
        cursor.begin()
        for row in rows:
            cursor.execute(
                "INSERT INTO book_deltas (exchange, symbol, ts, recv_ts, seq, side, price, size) "
                "VALUES "
                "(?, ?, make_timestamp(?), make_timestamp(?), ?, ?, ?, ?)",
                row,
            )
        cursor.commit()
        return len(rows) / (time.perf_counter() - started)


def percentiles(latencies: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(latencies, n=100)
    return {"queries": len(latencies), "p50_ms": cuts[49], "p99_ms": cuts[98]}


def poll_latencies(cursor: Any, done: threading.Event, limit: int | None = None) -> list[float]:
    """Run the reader query until ``done`` (or ``limit`` times), 1 ms apart; latencies in ms."""
    latencies: list[float] = []
    while not done.is_set() and (limit is None or len(latencies) < limit):
        started = time.perf_counter()
        cursor.execute(READER_QUERY).fetchone()
        latencies.append((time.perf_counter() - started) * 1000)
        time.sleep(0.001)
    return latencies


def reader_latency(batches: list[dict[str, list[Any]]], pace: float | None) -> dict[str, Any]:
    """Ingest DELTA_ROWS into a fresh store while another thread polls; then poll idle.

    A fresh store keeps the table size (0 → DELTA_ROWS during the run) the same for every
    run; the idle numbers at the final size separate the query's own cost (it scans ``ts``)
    from what concurrent ingestion adds.
    """
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "bench.duckdb") as store:
        done = threading.Event()
        busy: list[float] = []

        def poll() -> None:
            with store.cursor() as cursor:
                busy.extend(poll_latencies(cursor, done))

        reader = threading.Thread(target=poll, name="bench-reader")
        reader.start()
        try:
            rate = ingest(store, batches, "book_deltas", DELTA_ROWS, pace)
        finally:
            done.set()
            reader.join()
        with store.cursor() as cursor:
            idle = poll_latencies(cursor, threading.Event(), limit=300)
    return {
        **percentiles(busy),
        "ingest_rows_per_s": rate,
        "idle_at_end": percentiles(idle),
    }


def main() -> dict[str, Any]:
    delta_batches = [delta_batch(i * BATCH_ROWS) for i in range(20)]
    trade_batches = [trade_batch(i * BATCH_ROWS) for i in range(TRADE_ROWS // BATCH_ROWS)]
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "bench.duckdb") as store:
        rate = ingest(store, delta_batches, "book_deltas", DELTA_ROWS)
        naive = baseline(store)
    reads = reader_latency(delta_batches, pace=INGEST_TARGET)
    saturated = reader_latency(delta_batches, pace=None)
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "bench.duckdb") as store:
        trades_rate = ingest(store, trade_batches, "trades", TRADE_ROWS)
        assert store.table_counts()["trades"] == TRADE_ROWS

    results = {
        "ingest": {
            "rows": DELTA_ROWS,
            "batch_rows": BATCH_ROWS,
            "rows_per_s": rate,
            "baseline_rows": BASELINE_ROWS,
            "baseline_rows_per_s": naive,
            "ratio": rate / naive,
            "target_rows_per_s": INGEST_TARGET,
        },
        "reader": {
            "query": READER_QUERY,
            **reads,
            "paced_rows_per_s": INGEST_TARGET,
            "target_p99_ms": P99_TARGET_MS,
        },
        "reader_unpaced": saturated,
        "trades": {"rows": TRADE_ROWS, "rows_per_s": trades_rate},
    }
    print(
        f"store ingest: {rate:,.0f} rows/s (baseline {naive:,.0f} rows/s, "
        f"ratio {rate / naive:,.0f}x) target >= {INGEST_TARGET:,}"
    )
    for label, run in (
        (f"ingest paced at {INGEST_TARGET:,} rows/s", reads),
        (f"unpaced ingest ({saturated['ingest_rows_per_s']:,.0f} rows/s)", saturated),
    ):
        idle = run["idle_at_end"]
        print(
            f"store reader during {label}: p50 {run['p50_ms']:.2f} ms, "
            f"p99 {run['p99_ms']:.2f} ms over {run['queries']:,} queries "
            f"(idle at {DELTA_ROWS:,} rows: p99 {idle['p99_ms']:.2f} ms) "
            f"target p99 <= {P99_TARGET_MS:g} ms"
        )
    print(f"store trades ingest (UNIQUE, ON CONFLICT DO NOTHING): {trades_rate:,.0f} rows/s")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
